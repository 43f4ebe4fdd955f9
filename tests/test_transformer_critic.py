"""Transformer action-sequence critic (ALGORITHM §9): causality, the loss against a numpy
float64 hand computation, training under jit, and the gather of intermediate observations.

Network outputs come from applying the flax modules; the target and loss maths are redone
independently in numpy.  One tiny model (d_model 16, 2 heads, 2 layers) and one compiled
``update`` serve the whole module.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tper_jit.agents import acfql, networks
from tper_jit.agents import transformer_critic as tcritic
from tper_jit.replay import gather, gather_seq, store
from tper_jit.replay.gather import ChunkBatch

B, D, A, H = 6, 3, 2, 3
K = H * A
TINY = acfql.ACFQLConfig(
    hidden_dims=(16, 16), horizon_length=H, alpha=10.0, lr=1e-3, discount=0.9, q_agg="min",
    critic="transformer", critic_d_model=16, critic_num_heads=2, critic_num_layers=2)
TOL = dict(rtol=2e-4, atol=2e-5)
KEY = jax.random.PRNGKey(3)

_update = jax.jit(acfql.update)


def f64(x):
    return np.asarray(x, np.float64)


@pytest.fixture(scope="module")
def state():
    """A tiny agent whose target critic differs from its critic (so the test can tell them
    apart)."""
    st = jax.jit(acfql.init, static_argnums=(1, 2, 3))(jax.random.PRNGKey(0), D, A, TINY)
    rng = np.random.default_rng(1)
    target = jax.tree.map(lambda x: jnp.asarray(x + 0.05 * rng.normal(size=x.shape), x.dtype),
                          jax.device_get(st.target_critic))
    return st.replace(target_critic=target)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    valid = np.ones((B, H), np.float32)
    valid[1, 2:] = 0  # the episode ends after two steps
    valid[2, 1:] = 0  # ... after one
    masks = np.ones((B, H), np.float32)
    masks[3, 1:] = 0  # terminated at step t+1: no bootstrap from s_{t+2}, s_{t+3}
    masks[4, 2] = 0
    return ChunkBatch(
        observations=jnp.asarray(rng.normal(size=(B, D)), jnp.float32),
        actions=jnp.asarray(rng.uniform(-1, 1, (B, H, A)), jnp.float32),
        rewards=jnp.asarray(np.cumsum(rng.normal(size=(B, H)), 1), jnp.float32),
        masks=jnp.asarray(masks), terminals=jnp.asarray(1.0 - masks), valid=jnp.asarray(valid),
        next_observations=jnp.asarray(rng.normal(size=(B, D)), jnp.float32),
        next_actions=jnp.zeros((B, H, A)), next_actions_valid=jnp.zeros(B),
        successes=jnp.zeros((B, H)), episode_ids=jnp.zeros(B, jnp.int32),
        starts=jnp.zeros(B, jnp.int32),
        seq_observations=jnp.asarray(rng.normal(size=(B, H, D)), jnp.float32))


@jax.jit
def _apply_critic(params, obs, actions):
    return acfql.make_networks(TINY, A).critic.apply({"params": params}, obs, actions)


def apply_critic(params, obs, actions=None):
    """The critic module's output ``(E, ..., T)`` as float64 (jit: cheaper than eager ops)."""
    return f64(_apply_critic(params, obs, actions))


# --------------------------------------------------------------------------- the network


def test_causality_and_value_ignores_actions(state, batch):
    """out_j reads a_{t:t+j} only: perturbing a_{t+k} leaves out_0..out_k alone and moves
    out_{k+1}; V(s) (state token alone) equals out_0."""
    params = state.params["critic"]
    obs = np.asarray(batch.observations)
    acts = np.asarray(batch.actions)
    variants = [acts]
    for k in range(H):  # variant k+1 perturbs step k
        v = acts.copy()
        v[:, k] += 0.7
        variants.append(v)
    stacked = np.stack(variants).reshape(H + 1, B, K)  # leading dims are batch dims
    out = apply_critic(params, np.broadcast_to(obs, (H + 1, B, D)), stacked)  # (E, H+1, B, T)
    assert out.shape == (TINY.num_qs, H + 1, B, H + 1)
    base = out[:, 0]
    for k in range(H):
        pert = out[:, k + 1]
        np.testing.assert_allclose(pert[..., :k + 1], base[..., :k + 1], rtol=0, atol=1e-6)
        assert np.abs(pert[..., k + 1] - base[..., k + 1]).min() > 1e-4, k
    all_changed = apply_critic(params, obs, np.asarray(batch.actions).reshape(B, K) * -1 + 0.3)
    np.testing.assert_allclose(all_changed[..., 0], base[..., 0], rtol=0, atol=1e-6)
    v = apply_critic(params, obs)
    assert v.shape == (TINY.num_qs, B, 1)
    np.testing.assert_allclose(v[..., 0], base[..., 0], rtol=0, atol=1e-6)
    # independently initialised ensemble members
    assert not np.allclose(base[0], base[1])


def test_critic_choice_and_parameter_shapes(state):
    assert isinstance(acfql.make_networks(TINY, A).critic, tcritic.TransformerCritic)
    mlp = dataclasses.replace(TINY, critic="mlp")
    assert isinstance(acfql.make_networks(mlp, A).critic, networks.Critic)
    p = state.params["critic"]["ensemble"]
    assert p["pos_embedding"].shape == (TINY.num_qs, H + 1, 16)
    assert p["embed_obs"]["kernel"].shape == (TINY.num_qs, D, 16)
    assert p["embed_action"]["kernel"].shape == (TINY.num_qs, A, 16)
    assert p["block_1"]["mlp_in"]["kernel"].shape == (TINY.num_qs, 16, 4 * 16)
    assert "block_2" not in p


# --------------------------------------------------------------------------- the loss


def hand_losses(state, batch, key, weights):
    """(critic loss, td_abs, actor q) of §9 in numpy float64 from module outputs."""
    cfg = state.config
    nets = acfql.make_networks(cfg, A)
    keys = acfql.split_update_key(key)
    p, tgt = state.params, state.target_critic
    obs = np.asarray(batch.observations)
    pi = acfql.sample_actions(nets, p, batch.observations, keys.next_actions, cfg)
    g0 = apply_critic(tgt, obs, pi)[..., -1].min(0)  # q_agg = min
    # V̄(s_{t+j}) read as out_0 of a full pass with arbitrary actions (causality makes it so)
    dummy = np.random.default_rng(5).uniform(-1, 1, (B, H, K))
    v_next = apply_critic(tgt, np.asarray(batch.seq_observations), dummy)[..., 0].min(0)
    r, m, valid = f64(batch.rewards), f64(batch.masks), f64(batch.valid)
    g = np.zeros((B, H))
    for j in range(1, H + 1):
        g[:, j - 1] = r[:, j - 1] + cfg.discount ** j * m[:, j - 1] * v_next[:, j - 1]
    out = apply_critic(p["critic"], obs, np.asarray(batch.actions).reshape(B, K))
    per = (out[..., 0] - g0) ** 2  # (E, B)
    for j in range(1, H + 1):
        per = per + valid[:, j - 1] * (out[..., j] - g[:, j - 1]) ** 2
    loss = np.mean(per * f64(weights))
    td = np.abs(out[..., H].min(0) - g[:, H - 1])
    z = jax.random.normal(keys.distill_noise, (B, K))
    mu = np.clip(f64(nets.actor_onestep.apply({"params": p["actor_onestep"]},
                                              batch.observations, z)), -1, 1)
    actor_q = apply_critic(p["critic"], obs, mu)[..., -1].mean()
    return loss, td, actor_q


@pytest.fixture(scope="module")
def first_update(state, batch):
    weights = jnp.linspace(0.5, 2.0, B)
    return weights, _update(state, batch, KEY, weights)


def test_loss_and_td_abs_by_hand(state, batch, first_update):
    weights, (_, m, td) = first_update
    loss, td_hand, actor_q = hand_losses(state, batch, KEY, weights)
    np.testing.assert_allclose(m["critic/critic_loss"], loss, **TOL)
    np.testing.assert_allclose(m["critic/v_loss"] + m["critic/q_seq_loss"], loss, **TOL)
    assert td.shape == (B,)
    np.testing.assert_allclose(td, td_hand, **TOL)
    valid = np.asarray(batch.valid)[:, -1]
    np.testing.assert_allclose(m["critic/td_error_mean"], (td_hand * valid).sum() / valid.sum(),
                               **TOL)
    # the actor maximises the whole-chunk value Q_H (last token)
    np.testing.assert_allclose(m["actor/q"], actor_q, **TOL)


def test_invalid_and_terminated_steps_carry_no_target(state, batch, first_update):
    """Garbage in invalid steps (rewards, states) and in states after a termination (m = 0)
    leaves the loss unchanged."""
    weights, (_, m, _) = first_update
    valid, masks = np.asarray(batch.valid), np.asarray(batch.masks)
    dead = (valid == 0) | (masks == 0)  # (B, H)
    seq = np.where(dead[..., None], 1e3, np.asarray(batch.seq_observations))
    rew = np.where(valid == 0, 1e3, np.asarray(batch.rewards))
    b2 = batch.replace(seq_observations=jnp.asarray(seq, jnp.float32),
                       rewards=jnp.asarray(rew, jnp.float32))
    _, m2, _ = _update(state, b2, KEY, weights)
    np.testing.assert_allclose(m2["critic/critic_loss"], m["critic/critic_loss"], **TOL)


def test_update_lowers_critic_loss_under_jit(state, batch):
    ones = jnp.ones(B)
    _, m0, _ = _update(state, batch, KEY, ones)
    st = state
    for i in range(50):
        st, m, td = _update(st, batch, jax.random.fold_in(KEY, i), ones)
        assert td.shape == (B,) and np.all(np.isfinite(td))
    _, m1, _ = _update(st, batch, KEY, ones)
    assert m1["critic/critic_loss"] < 0.5 * m0["critic/critic_loss"], (
        m0["critic/critic_loss"], m1["critic/critic_loss"])
    assert int(st.step) == 50


def test_missing_seq_observations_is_named(state, batch):
    with pytest.raises(ValueError, match="seq_observations"):
        jax.eval_shape(acfql.update, state, batch.replace(seq_observations=None), KEY)


def test_best_of_n_scores_with_q_h(state, batch):
    cfg = dataclasses.replace(TINY, actor_type="best-of-n", actor_num_samples=4)
    st = state.replace(config=cfg)
    nets = acfql.make_networks(cfg, A)
    out = np.asarray(jax.jit(acfql.act)(st, batch.observations, KEY))
    noises = jax.random.normal(KEY, (B, 4, K))
    obs_n = jnp.broadcast_to(batch.observations[:, None], (B, 4, D))
    cands = np.asarray(acfql.flow_actions(nets, st.params["actor_bc_flow"], obs_n, noises,
                                          cfg.flow_steps))
    scores = apply_critic(st.params["critic"], np.asarray(obs_n), cands)[..., -1].min(0)
    np.testing.assert_allclose(out, cands[np.arange(B), scores.argmax(-1)], rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("field,value", [
    ("critic", "tranformer"), ("critic_num_heads", 3), ("critic_d_model", 0),
    ("action_chunking", False), ("use_weighted_target", True),
])
def test_bad_config_names_the_flag(field, value):
    with pytest.raises(ValueError, match=rf"--agent\.{field}\b"):
        dataclasses.replace(TINY, **{field: value})


# --------------------------------------------------------------------------- the gather

GH = 3


def tiny_dataset():
    """Episode A rows 0-3 (terminated), B rows 4-5 (truncated, shorter than H), C rows 6-8
    (trailing); observation row i = (i, −i), next observation = observation + 100."""
    obs = np.stack([np.arange(9), -np.arange(9)], 1).astype(np.float32)
    return dict(observations=obs, actions=(np.arange(9, dtype=np.float32) / 10)[:, None],
                rewards=np.arange(1, 10, dtype=np.float32),
                terminals=np.array([0, 0, 0, 1, 0, 1, 0, 0, 0], np.float32),
                masks=np.array([1, 1, 1, 0, 1, 1, 1, 1, 1], np.float32),
                next_observations=obs + 100)


def nobs(i):
    return [100 + i, 100 - i]


@pytest.mark.parametrize("ep,start,rows,valid", [
    (0, 0, [0, 1, 2], [1, 1, 1]),
    (0, 2, [2, 3, 3], [1, 1, 0]),  # terminates at row 3, then padded
    (1, 0, [4, 5, 5], [1, 1, 0]),  # truncated 2-row episode, never reads episode C
    (2, 1, [7, 8, 8], [1, 1, 0]),  # trailing episode: the end of the data
])
def test_seq_observations_offline_by_hand(ep, start, rows, valid):
    st = store.build(**tiny_dataset())
    c = gather.gather_chunks(st, jnp.array([ep]), jnp.array([start]), GH, 0.5)
    c = gather_seq.add_seq_observations(st, c)
    np.testing.assert_allclose(c.seq_observations[0], [nobs(i) for i in rows])
    np.testing.assert_allclose(c.valid[0], valid)
    # the last state is the one the MLP critic bootstraps from
    np.testing.assert_allclose(c.seq_observations[0, -1], c.next_observations[0])


def test_seq_observations_across_the_online_ring_wrap():
    st = store.build(**tiny_dataset(), num_streams=1, rows_per_stream=6, episodes_per_stream=4,
                     max_episode_length=4)
    add = jax.jit(lambda st, v, done: store.add_step(
        st, jnp.full((1, 2), v), jnp.full((1, 1), v / 10), jnp.full((1,), v),
        jnp.zeros((1,), bool), jnp.full((1,), done), jnp.full((1, 2), v + 100), jnp.zeros((1,))))
    for ep_base in (10.0, 20.0):  # the second episode (ring rows 4, 5, 0, 1) wraps
        for i in range(4):
            st = add(st, ep_base + i, i == 3)
    seq = gather_seq.gather_seq_observations(st, jnp.array([4, 4]), jnp.array([0, 2]), GH)
    np.testing.assert_allclose(seq[0], [[120, 120], [121, 121], [122, 122]])
    np.testing.assert_allclose(seq[1], [[122, 122], [123, 123], [123, 123]])  # padded
