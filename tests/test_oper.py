"""OPER (ALGORITHM §7): weights by hand, normalisation, OPER-A on a two-tier dataset, sampler
law (chi-square at 10^5 draws), per-term reweighting, weight files.  Fixed seeds."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from tper_jit.agents import acfql
from tper_jit.data.common import make_dataset
from tper_jit.oper import advantage, reweight, weights
from tper_jit.oper.config import OPERConfig
from tper_jit.replay import gather, samplers, store
from tper_jit.replay.oper_tree import valid_start_rows

H = 3
DRAWS, BATCH = 100_000, 1000


def flat_dataset(rewards_per_episode, obs=None, actions=None, terminate=True, content_hash=None):
    """A FlatDataset from a list of per-episode reward lists (D = 2, A = 1)."""
    rew = np.concatenate([np.asarray(r, np.float32) for r in rewards_per_episode])
    term = np.concatenate([np.eye(len(r), dtype=np.float32)[-1] for r in rewards_per_episode])
    n = len(rew)
    obs = np.stack([np.arange(n), np.zeros(n)], 1).astype(np.float32) if obs is None else obs
    actions = np.zeros((n, 1), np.float32) if actions is None else actions
    nxt = np.concatenate([obs[1:], obs[-1:]])
    masks = 1.0 - term if terminate else np.ones(n, np.float32)
    return make_dataset("synthetic", observations=obs, actions=actions, rewards=rew,
                        terminals=term, masks=masks, next_observations=nxt,
                        successes=np.zeros(n), sources=("synthetic",), env_name="synthetic",
                        content_hash=content_hash, options={})


# --------------------------------------------------------------------------- OPER-R / normalise


def test_oper_r_weights_by_hand():
    rew = np.array([1, 2, 0, 0, 0, 5, -1, 1], np.float32)  # returns 3, 0, 5, 0
    term = np.array([0, 1, 0, 0, 1, 1, 0, 1], np.float32)
    w = weights.oper_r_weights(rew, term, base_prob=0.1)
    np.testing.assert_allclose(w, [0.7, 0.7, 0.1, 0.1, 0.1, 1.1, 0.1, 0.1])
    np.testing.assert_allclose(weights.oper_r_weights(rew, term), [.6, .6, 0, 0, 0, 1, 0, 0])
    # equal returns: the normalised part vanishes
    np.testing.assert_allclose(weights.oper_r_weights(np.ones(4), np.array([0, 1, 0, 1])), 0.0)


def test_normalisation_mean_one_std_then_floor():
    # 9 zeros and one 1: N·p = [0]*9 + [10] (std 3) → 1 + (x − 1)·2/3 = [1/3]*9 + [7]:
    # mean 1, std 2, all above the floor 0.1, so p is exactly x/N.
    w = np.array([0.0] * 9 + [1.0]) + 4.0  # the shift is removed by v = w − min w
    p = weights.normalize_priorities(w, std=2.0, eps=0.1)
    x = len(p) * p
    np.testing.assert_allclose(x, [1 / 3] * 9 + [7.0], rtol=1e-12)
    np.testing.assert_allclose([x.mean(), x.std()], [1.0, 2.0], rtol=1e-12)
    # a case where the floor binds, by hand
    w = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    n = 5
    x = n * w / w.sum()  # [0, 0.3125, 0.625, 0.9375, 3.125], std 1.1075
    x = 1 + (x - 1) * 2.0 / x.std()  # [-0.806, -0.241, 0.323, 0.887, 4.837]
    assert (x < 0.1).sum() == 2  # two values are floored
    p = np.maximum(x / n, 0.1 / n)
    p = p / p.sum()
    got = weights.normalize_priorities(w, std=2.0, eps=0.1)
    np.testing.assert_allclose(got, p, rtol=1e-12)
    assert got.sum() == pytest.approx(1.0, abs=1e-12)
    assert got.min() == pytest.approx(got[0]) and got[0] == pytest.approx(got[1])
    # degenerate weights are uniform; N·p are the reweighting factors
    np.testing.assert_allclose(weights.normalize_priorities(np.full(4, 3.0)), 0.25)
    np.testing.assert_allclose(weights.loss_weights_from_probs(got), n * got, rtol=1e-6)


def test_n_step_targets_stop_at_episode_ends():
    rew = np.array([1, 2, 3, 4, 5], np.float64)
    term = np.array([0, 0, 1, 0, 1])
    masks = np.array([1, 1, 0, 1, 1])  # episode 1 terminates, episode 2 is truncated
    ret, disc, boot = advantage.n_step_targets(rew, masks, term, n=2, discount=0.5)
    np.testing.assert_allclose(ret, [1 + 0.5 * 2, 2 + 0.5 * 3, 3, 4 + 0.5 * 5, 5])
    np.testing.assert_allclose(disc, [0.25, 0.0, 0.0, 0.25, 0.5])
    np.testing.assert_array_equal(boot, [1, 2, 2, 4, 4])


# --------------------------------------------------------------------------- OPER-A


@pytest.fixture(scope="module")
def two_tier():
    """40 episodes of 6 steps over the same states; even episodes earn 1 per step, odd 0."""
    length, episodes = 6, 40
    rng = np.random.default_rng(0)
    good = np.arange(episodes) % 2 == 0
    t = np.tile(np.arange(length) / length, episodes)
    obs = np.stack([t, 0.1 * rng.normal(size=t.shape)], 1).astype(np.float32)
    actions = np.repeat(np.where(good, 0.5, -0.5), length)[:, None].astype(np.float32)
    ds = flat_dataset([np.full(length, float(g)) for g in good], obs=obs, actions=actions,
                      content_hash="sha256:test")
    return ds, np.repeat(good, length)


SMALL_A = OPERConfig(iter=2, n_step=3, first_eval_steps=300, bc_eval_steps=100, num_seeds=2,
                     batch_size=64, hidden_dims=(64, 64), lr=1e-3, discount=0.9, tau=0.05,
                     adv_batch=64)


def test_oper_a_prefers_the_better_tier(two_tier):
    ds, good = two_tier
    w = advantage.compute_oper_a_weights(ds, jax.random.PRNGKey(0), SMALL_A)
    assert w.shape == (len(ds),) and np.all(np.isfinite(w)) and np.all(w >= 0)
    assert w.mean() == pytest.approx(1.0, rel=1e-4)  # every round keeps Σ w = N
    assert w[good].mean() > 4 * w[~good].mean()
    p = weights.normalize_priorities(w)
    assert p[good].sum() > 0.7


def test_reweight_round_formula():
    w = jnp.array([1.0, 2.0, 0.5, 0.5])  # Σ w = N, as every round keeps it
    adv = jnp.array([0.0, 1.0, 3.0, -1.0])
    u = np.array([1.0, 2.0, 4.0, 0.0])
    ut = 4 * u / u.sum()
    want = 4 * np.asarray(w) * ut / (np.asarray(w) * ut).sum()
    np.testing.assert_allclose(advantage.reweight(w, adv), want, rtol=1e-6)
    np.testing.assert_allclose(advantage.reweight(w, jnp.ones(4)), w)  # constant A: unchanged


def test_weight_file_roundtrip_and_wrong_length(tmp_path, two_tier):
    ds, _ = two_tier
    w = np.linspace(0.5, 1.5, len(ds))
    path = advantage.save_weights(tmp_path / "w.npz", w, ds, SMALL_A)
    np.testing.assert_allclose(advantage.load_weights(path, ds), w, rtol=1e-6)
    with np.load(path) as f:
        assert int(f["iter"]) == SMALL_A.iter and int(f["n_step"]) == SMALL_A.n_step
        assert str(f["content_hash"]) == "sha256:test"
    other = flat_dataset([[0.0] * 5])  # 5 rows
    with pytest.raises(ValueError, match=r"w\.npz.*240 OPER-A weights.*5 transitions"):
        advantage.load_weights(path, other)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        advantage.load_weights(tmp_path / "missing.npz", ds)
    rehashed = dataclasses.replace(ds, meta=dataclasses.replace(ds.meta, content_hash="x"))
    with pytest.raises(ValueError, match="computed on dataset"):
        advantage.load_weights(path, rehashed)
    # the trainer path: OPER-A priorities from weight_path
    cfg = OPERConfig(resample=True, bc_eval=True, weight_path=str(path))
    np.testing.assert_allclose(reweight.dataset_priorities(ds, cfg),
                               weights.normalize_priorities(w.astype(np.float32)), rtol=1e-9)


# --------------------------------------------------------------------------- sampler law


LENGTHS = [2, 5, 9, 4, 7, 12, 3, 6]


@pytest.fixture(scope="module")
def oper_store():
    rew = np.concatenate([np.full(ln, float(i % 3)) for i, ln in enumerate(LENGTHS)])
    term = np.concatenate([np.eye(ln)[-1] for ln in LENGTHS])
    n = len(rew)
    obs = np.arange(n, dtype=np.float32)[:, None]
    return store.build(obs, np.zeros((n, 1), np.float32), rew, term, obs, num_streams=1,
                       rows_per_stream=16, episodes_per_stream=2, max_episode_length=16)


def _draw(cfg, state):
    sample = samplers.make_sampler(cfg)
    keys = jax.random.split(jax.random.PRNGKey(1), DRAWS // BATCH)
    out = jax.jit(jax.vmap(lambda k: sample(state, k, BATCH)))(keys)
    return jax.tree.map(lambda a: np.asarray(a).reshape(-1), out)


def _pair_law(st, probs, tail):
    """Exact law over (episode, start): ∝ p_row on valid starts."""
    valid = valid_start_rows(st, H, "all" if tail else "head")
    leaf = probs * valid
    starts = np.asarray(st.episodes.start[: len(LENGTHS)])
    law = {}
    for ep, (s0, ln) in enumerate(zip(starts, LENGTHS, strict=True)):
        for s in range(ln):
            if leaf[s0 + s] > 0:
                law[(ep, s)] = leaf[s0 + s] / leaf.sum()
    return law


@pytest.mark.parametrize("kind,tail", [("R", False), ("A", True), ("A", False)])
def test_oper_sampler_matches_priorities(oper_store, kind, tail):
    st = oper_store
    rew = np.asarray(st.offline.rewards)
    term = np.asarray(st.offline.terminals)
    if kind == "R":
        raw = weights.oper_r_weights(rew, term, base_prob=0.05)
    else:  # per-transition weights, some exactly zero before the floor
        raw = np.random.default_rng(3).exponential(size=len(rew)) * (np.arange(len(rew)) % 4)
    p = weights.normalize_priorities(raw, std=2.0, eps=0.1)
    cfg = samplers.SamplerConfig(kind="oper", horizon=H, allow_tail_starts=tail)
    out = _draw(cfg, samplers.init_replay(st, cfg, oper_probs=p))
    law = _pair_law(st, p, tail)
    keys = list(law)
    index = {k: i for i, k in enumerate(keys)}
    counts = np.zeros(len(keys))
    for e, s in zip(out.episode_ids, out.starts, strict=True):
        counts[index[(int(e), int(s))]] += 1  # KeyError = a draw outside the support
    expected = np.array([law[k] for k in keys]) * DRAWS
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    want = np.array([law[(int(e), int(s))] for e, s in zip(out.episode_ids[:500],
                                                           out.starts[:500], strict=True)])
    np.testing.assert_allclose(out.probs[:500], want, rtol=1e-4)
    if kind == "R":  # trajectory-constant: episode mass = p_τ · #valid starts
        n_valid = np.maximum(1, np.array(LENGTHS) - H + 1)
        p_ep = p[np.asarray(st.episodes.start[: len(LENGTHS)])] * n_valid
        freq = np.bincount(out.episode_ids, minlength=len(LENGTHS)) / DRAWS
        np.testing.assert_allclose(freq, p_ep / p_ep.sum(), atol=0.006)


def test_oper_sampler_needs_priorities(oper_store):
    with pytest.raises(ValueError, match="oper_probs"):
        samplers.init_replay(oper_store, samplers.SamplerConfig(kind="oper", horizon=H))
    with pytest.raises(ValueError, match="one entry per offline row"):
        samplers.init_replay(oper_store, samplers.SamplerConfig(kind="oper", horizon=H),
                             oper_probs=np.ones(3))


# --------------------------------------------------------------------------- reweighting

B, D, A = 8, 2, 1
AGENT = acfql.ACFQLConfig(hidden_dims=(16, 16), horizon_length=H, alpha=10.0)
TERMS = ("critic/critic_loss", "actor/q_loss", "actor/bc_flow_loss", "actor/distill_loss")
FIELD_OF = dict(zip(TERMS, acfql.LossWeights._fields, strict=True))


@pytest.fixture(scope="module")
def agent_batch(oper_store):
    cfg = samplers.SamplerConfig(kind="transition", horizon=H)
    p = weights.normalize_priorities(np.arange(oper_store.num_offline_rows) % 5)
    replay = samplers.init_replay(oper_store, cfg, oper_probs=p)
    s = jax.jit(lambda r, k: samplers.make_sampler(cfg)(r, k, B))(replay, jax.random.PRNGKey(2))
    batch = jax.jit(gather.gather_chunks, static_argnums=3)(replay.store, s.episode_ids,
                                                            s.starts, H, AGENT.discount)
    batch = batch.replace(observations=jnp.tile(batch.observations, (1, D)),
                          next_observations=jnp.tile(batch.next_observations, (1, D)))
    state = jax.jit(acfql.init, static_argnums=(1, 2, 3))(jax.random.PRNGKey(0), D, A, AGENT)
    state = state.replace(target_critic=jax.tree.map(lambda x: x * 0.9, state.target_critic))
    return state, batch, replay, s, p


KEY = jax.random.PRNGKey(5)
ONES = jnp.ones(B)


@jax.jit
def _metrics(state, batch, lw, actor_batch):
    """The four loss terms before a step; always full LossWeights and an actor batch, so this
    compiles once (weights of one are exactly the unweighted terms: x·1 = x)."""
    _, (m, _) = acfql.total_loss(state.params, state.target_critic, batch, KEY, state.config,
                                 state.action_dim, lw, actor_batch)
    return {k: m[k] for k in TERMS}


def _full(**fields):
    return acfql.LossWeights(**{f: fields.get(f, ONES) for f in acfql.LossWeights._fields})


def test_reweighting_multiplies_exactly_the_switched_terms(agent_batch):
    state, batch, *_ = agent_batch
    plain = _metrics(state, batch, _full(), batch)
    # per-sample unweighted terms: every term weighted by B·e_b gives term_b
    per = jax.jit(jax.vmap(lambda w: _metrics(state, batch, acfql.LossWeights(w, w, w, w),
                                              batch)))(B * jnp.eye(B))
    for k in TERMS:  # the per-sample terms add up to the unweighted losses
        np.testing.assert_allclose(per[k].mean(), plain[k], rtol=1e-5, atol=1e-6)
    w = jnp.where(jnp.arange(B) % 2 == 0, 0.0, jnp.linspace(0.5, 2.5, B))  # zero on half
    for on in [(), ("critic",), ("actor_q",), ("bc",), ("critic", "actor_q", "bc", "distill")]:
        got = _metrics(state, batch, _full(**{f: w for f in on}), batch)
        for k in TERMS:
            if FIELD_OF[k] in on:
                want = float((w * per[k]).mean())
                assert abs(float(got[k]) - float(plain[k])) > 1e-6  # the term did change
            else:
                want = float(plain[k])
            np.testing.assert_allclose(got[k], want, rtol=1e-5, atol=1e-6, err_msg=f"{on} {k}")


def test_loss_weights_from_config_and_two_sampler(agent_batch):
    state, batch, replay, s, p = agent_batch
    n = replay.store.num_offline_rows
    rows = np.asarray(replay.store.episodes.start)[np.asarray(s.episode_ids)] + np.asarray(
        s.starts)
    factors = (n * p[rows]).astype(np.float32)
    assert reweight.loss_weights(OPERConfig(resample=True), replay, s) is None
    lw = reweight.loss_weights(OPERConfig(reweight=True, reweight_eval=False), replay, s)
    assert lw.critic is None and lw.distill is None
    np.testing.assert_allclose(lw.actor_q, factors, rtol=1e-5)
    np.testing.assert_allclose(lw.bc, factors, rtol=1e-5)
    lw = reweight.loss_weights(OPERConfig(reweight=True), replay, s)
    np.testing.assert_allclose(lw.critic, factors, rtol=1e-5)
    assert lw.distill is None
    assert reweight.sampler_kinds(OPERConfig(resample=True)) == ("oper", None)
    assert reweight.sampler_kinds(OPERConfig(resample=True, two_sampler=True)) == (
        "transition", "oper")
    assert reweight.sampler_kinds(OPERConfig(reweight=True)) == ("transition", None)
    # two_sampler: the actor terms read actor_batch, the critic keeps its own batch
    other = batch.replace(observations=batch.observations[::-1],
                          actions=batch.actions[::-1], valid=batch.valid[::-1])
    both = _metrics(state, batch, _full(), other)
    plain = _metrics(state, batch, _full(), batch)
    swapped = _metrics(state, other, _full(), other)
    np.testing.assert_allclose(both["critic/critic_loss"], plain["critic/critic_loss"])
    for k in TERMS[1:]:
        np.testing.assert_allclose(both[k], swapped[k], rtol=1e-6)
        assert not np.allclose(both[k], plain[k])
    # update with the config's weights (distill None) and an actor batch: its metrics (taken
    # before the step) equal the terms with a weight of one in place of None
    _, m, td = jax.jit(acfql.update)(state, batch, KEY, lw, other)
    want = _metrics(state, batch, lw._replace(distill=ONES), other)
    assert td.shape == (B,)
    for k in TERMS:
        np.testing.assert_allclose(m[k], want[k], rtol=1e-5, atol=1e-6)


def test_config_checks_name_the_flag():
    with pytest.raises(ValueError, match="--oper.std"):
        OPERConfig(std=0.0)
    with pytest.raises(ValueError, match="--oper.weight_path"):
        OPERConfig(resample=True, bc_eval=True)
    with pytest.raises(ValueError, match="--oper.two_sampler"):
        OPERConfig(two_sampler=True)
    assert OPERConfig(reweight=True).enabled and OPERConfig(bc_eval=True).kind == "A"
