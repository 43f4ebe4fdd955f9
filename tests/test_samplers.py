"""Every sampler's empirical law over >= 10^5 draws against its target (fixed seeds)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from tper_jit.replay import priorities, samplers, store

H = 3
DRAWS, BATCH = 100_000, 1000
LENGTHS = [2, 5, 9, 4, 7, 12, 3, 6]  # offline episodes (one shorter than H)
CLUSTERS = np.array([0, 0, 0, 0, 0, 1, 1, 2])  # unbalanced on purpose


def _build(online_episodes=((4, 1.0), (6, 2.0))):
    rew, term = [], []
    for i, ln in enumerate(LENGTHS):
        rew.append(np.full(ln, float(i), np.float32))
        t = np.zeros(ln, np.float32)
        t[-1] = 1
        term.append(t)
    rew, term = np.concatenate(rew), np.concatenate(term)
    n = len(rew)
    obs = np.arange(n, dtype=np.float32)[:, None]
    st = store.build(obs, np.zeros((n, 1), np.float32), rew, term, obs, cluster_ids=CLUSTERS,
                     num_streams=1, rows_per_stream=32, episodes_per_stream=4,
                     max_episode_length=16)
    for ln, r in online_episodes:
        for i in range(ln):
            st = store.add_step(st, jnp.zeros((1, 1)), jnp.zeros((1, 1)), jnp.full((1,), r),
                                jnp.zeros(1, bool), jnp.array([i == ln - 1]), jnp.zeros((1, 1)),
                                jnp.zeros(1))
    return st


@pytest.fixture(scope="module")
def base_store():
    return _build()


def _draw(cfg, state, seed=0):
    sample = samplers.make_sampler(cfg)
    keys = jax.random.split(jax.random.PRNGKey(seed), DRAWS // BATCH)
    out = jax.jit(jax.vmap(lambda k: sample(state, k, BATCH)))(keys)
    return jax.tree.map(lambda a: np.asarray(a).reshape(-1), out)


def _pairs(st, rule, p_ep, h=H):
    """Target law over (slot, start) pairs: p(ep) · p(start | ep)."""
    lengths = np.asarray(st.episodes.length)
    law = {}
    for ep, pe in enumerate(p_ep):
        if pe == 0:
            continue
        ln = lengths[ep]
        n = ln if rule == "all" else max(1, ln - h + 1)
        for s in range(n):
            law[(ep, s)] = pe / n
    return law


def _chi2(out, law):
    keys = list(law)
    idx = {k: i for i, k in enumerate(keys)}
    counts = np.zeros(len(keys))
    for e, s in zip(out.episode_ids, out.starts, strict=True):
        counts[idx[(int(e), int(s))]] += 1  # KeyError = a pair outside the support
    expected = np.array([law[k] for k in keys]) * len(out.episode_ids)
    _, pval = stats.chisquare(counts, expected)
    probs = np.array([law[(int(e), int(s))] for e, s in zip(out.episode_ids[:500],
                                                              out.starts[:500], strict=True)])
    np.testing.assert_allclose(out.probs[:500], probs, rtol=1e-4)
    return pval


def test_transition_uniform(base_store):
    state = samplers.init_replay(base_store, samplers.SamplerConfig(kind="transition",
                                                                    horizon=H))
    lengths = np.asarray(base_store.episodes.length, float)
    valid = np.asarray(base_store.episodes.valid)
    p_ep = np.where(valid, lengths, 0) / (lengths * valid).sum()
    assert _chi2(_draw(state_cfg := samplers.SamplerConfig(kind="transition", horizon=H), state),
                 _pairs(base_store, "all", p_ep)) > 1e-3
    del state_cfg


@pytest.mark.parametrize("tail", [False, True])
def test_trajectory_uniform(base_store, tail):
    cfg = samplers.SamplerConfig(kind="trajectory", horizon=H, allow_tail_starts=tail)
    state = samplers.init_replay(base_store, cfg)
    fin = np.asarray(base_store.episodes.finished & base_store.episodes.valid, float)
    law = _pairs(base_store, "all" if tail else "head", fin / fin.sum())
    assert _chi2(_draw(cfg, state), law) > 1e-3


def test_cluster_balanced_gives_each_cluster_one_kth(base_store):
    cfg = samplers.SamplerConfig(kind="cluster", horizon=H)
    state = samplers.init_replay(base_store, cfg)
    out = _draw(cfg, state)
    assert out.episode_ids.max() < len(LENGTHS)  # offline episodes only
    cluster_of = CLUSTERS[out.episode_ids]
    frac = np.bincount(cluster_of, minlength=3) / len(cluster_of)
    np.testing.assert_allclose(frac, [1 / 3] * 3, atol=0.006)
    counts = np.bincount(CLUSTERS)
    p_ep = np.zeros(base_store.num_slots)
    p_ep[: len(LENGTHS)] = 1.0 / (3 * counts[CLUSTERS])
    assert _chi2(out, _pairs(base_store, "head", p_ep)) > 1e-3


def test_tper_warmup_is_transition_uniform_then_priorities(base_store):
    tper = priorities.TPERConfig(metric="avg_reward", warmup_steps=100)
    cfg = samplers.SamplerConfig(kind="tper", horizon=H, tper=tper)
    state = samplers.init_replay(base_store, cfg)
    lengths = np.asarray(base_store.episodes.length, float)
    valid = np.asarray(base_store.episodes.valid)
    p_rows = np.where(valid, lengths, 0) / (lengths * valid).sum()
    assert _chi2(_draw(cfg, state.replace(online_step=jnp.int32(99))),
                 _pairs(base_store, "all", p_rows)) > 1e-3
    # after warmup: rank law over offline + finished online episodes by mean reward
    t = base_store.episodes
    incl = np.asarray(t.valid & t.finished)
    score = np.asarray(t.ret_mean)[incl]
    r = stats.rankdata(-score, method="average") - 1
    w = (r + 1) ** -0.7
    p = np.zeros(base_store.num_slots)
    p[incl] = 0.95 * w / w.sum() + 0.05 / incl.sum()
    assert _chi2(_draw(cfg, state.replace(online_step=jnp.int32(100))),
                 _pairs(base_store, "head", p)) > 1e-3


def test_tied_scores_get_equal_probability():
    st = _build(online_episodes=())
    tper = priorities.TPERConfig(metric="uniform", warmup_steps=0)
    cfg = samplers.SamplerConfig(kind="tper", horizon=H, tper=tper)
    out = _draw(cfg, samplers.init_replay(st, cfg))
    freq = np.bincount(out.episode_ids, minlength=len(LENGTHS)) / DRAWS
    np.testing.assert_allclose(freq, 1 / len(LENGTHS), atol=0.005)
    _, pval = stats.chisquare(np.bincount(out.episode_ids))
    assert pval > 1e-3


def test_mixture_fraction_and_within_source_uniform(base_store):
    cfg = samplers.SamplerConfig(kind="mixture", horizon=H, offline_fraction=0.5)
    state = samplers.init_replay(base_store, cfg)
    out = _draw(cfg, state)
    n_off = len(LENGTHS)
    is_off = out.episode_ids < n_off
    assert is_off.mean() == 0.5  # exact by construction: half of every batch
    lengths = np.asarray(base_store.episodes.length, float)
    valid = np.asarray(base_store.episodes.valid)
    rows_off, rows_on = lengths[:n_off].sum(), (lengths[n_off:] * valid[n_off:]).sum()
    p_ep = np.where(np.arange(len(lengths)) < n_off, 0.5 * lengths / rows_off,
                    0.5 * lengths * valid / rows_on)
    assert _chi2(out, _pairs(base_store, "all", p_ep)) > 1e-3
    # without online data every draw is offline
    off_only = samplers.init_replay(_build(online_episodes=()), cfg)
    assert (_draw(cfg, off_only).episode_ids < n_off).all()


def test_backward_start_rules(base_store):
    for mode in ("last", "sweep"):
        tper = priorities.TPERConfig(metric="uniform", warmup_steps=0, backward=mode)
        cfg = samplers.SamplerConfig(kind="tper", horizon=H, tper=tper)
        state = samplers.init_replay(base_store, cfg)
        out = samplers.make_sampler(cfg)(state, jax.random.PRNGKey(0), 256)
        ln = np.asarray(base_store.episodes.length)[np.asarray(out.episode_ids)]
        np.testing.assert_array_equal(np.asarray(out.starts), np.maximum(0, ln - H))
    # sweep: after v visits the start moves back v chunks (wrapping to the last chunk)
    st = base_store
    ep = 5  # length 12 → chunks start at 9, 6, 3, 0, then 9 again
    got = []
    for _ in range(5):
        s, _ = samplers.draw_starts(st, jax.random.PRNGKey(0), jnp.array([ep]), H, "sweep")
        got.append(int(s[0]))
        st = priorities.update_mu(st, jnp.array([ep]), jnp.array([1.0]), 0.9)
    assert got == [9, 6, 3, 0, 9]


def test_importance_weights():
    probs = jnp.array([0.1, 0.05, 0.025])
    w = np.asarray(samplers.importance_weights(probs, 20.0, 1.0))
    np.testing.assert_allclose(w, [0.25, 0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(samplers.importance_weights(probs, 20.0, 0.0)), 1.0)
