"""The replay core as it is used by the trainer: under jit, inside lax.scan, vmapped over seeds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tper_jit.replay import gather, priorities, samplers, store

H, B, SEEDS, STEPS = 3, 32, 3, 20


@pytest.fixture(scope="module")
def replay():
    rng = np.random.default_rng(0)
    n = 400
    term = (rng.uniform(size=n) < 0.05).astype(np.float32)
    obs = rng.normal(size=(n, 4)).astype(np.float32)
    st = store.build(obs, rng.uniform(-1, 1, (n, 2)).astype(np.float32),
                     rng.normal(size=n).astype(np.float32), term, obs,
                     cluster_ids=None, num_streams=2, rows_per_stream=40,
                     episodes_per_stream=6, max_episode_length=10)
    tper = priorities.TPERConfig(metric="td_error_rank", warmup_steps=5)
    cfg = samplers.SamplerConfig(kind="tper", horizon=H, tper=tper)
    return samplers.init_replay(st, cfg), cfg


def _step(cfg):
    sample = samplers.make_sampler(cfg)

    def step(state: samplers.ReplayState, key):
        k_env, k_sample = jax.random.split(key)
        st = state.store
        # one env step per stream; episodes end at random (truncation)
        obs = jax.random.normal(k_env, (2, 4))
        done = jax.random.uniform(k_env, (2,)) < 0.2
        st = store.add_step(st, obs, jnp.zeros((2, 2)), obs[:, 0], jnp.zeros(2, bool), done,
                            obs, jnp.zeros(2))
        state = state.replace(store=st, online_step=state.online_step + 1)
        prio, st = priorities.sync(state.priorities, state.store, cfg.tper)
        state = state.replace(store=st, priorities=prio)
        s = sample(state, k_sample, B)
        batch = gather.gather_chunks(state.store, s.episode_ids, s.starts, H, 0.99)
        t = state.store.episodes
        live = t.valid[s.episode_ids] & (s.starts < t.length[s.episode_ids])
        td = jnp.abs(batch.rewards[:, -1])  # stands in for the critic's per-sample |δ|
        prio, st = priorities.update_priorities(state.priorities, state.store, s.episode_ids,
                                                td, cfg.tper)
        return state.replace(store=st, priorities=prio), (s.episode_ids, live)

    return step


def test_scan_equals_python_loop(replay):
    state, cfg = replay
    step = jax.jit(_step(cfg))
    keys = jax.random.split(jax.random.PRNGKey(1), STEPS)
    s_loop, ids_loop = state, []
    for k in keys:
        s_loop, (ids, _) = step(s_loop, k)
        ids_loop.append(ids)
    s_scan, (ids_scan, live) = jax.jit(lambda s, ks: jax.lax.scan(_step(cfg), s, ks))(state,
                                                                                       keys)
    assert np.asarray(live).all()  # never a chunk from an overwritten or unwritten row
    np.testing.assert_array_equal(np.stack(ids_loop), np.asarray(ids_scan))
    for a, b in zip(jax.tree.leaves(s_loop), jax.tree.leaves(s_scan), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_vmap_over_seeds_draws_different_batches(replay):
    state, cfg = replay
    batched = jax.tree.map(lambda a: jnp.broadcast_to(a, (SEEDS,) + a.shape), state)
    keys = jax.vmap(lambda s: jax.random.split(jax.random.fold_in(jax.random.PRNGKey(0), s),
                                               STEPS))(jnp.arange(SEEDS))
    run = jax.jit(jax.vmap(lambda s, ks: jax.lax.scan(_step(cfg), s, ks)))
    final, (ids, live) = run(batched, keys)
    assert np.asarray(live).all()
    ids = np.asarray(ids)  # (S, T, B)
    assert ids.shape == (SEEDS, STEPS, B)
    for a in range(SEEDS):
        for b in range(a + 1, SEEDS):
            assert not np.array_equal(ids[a], ids[b])
    mu = np.asarray(final.store.episodes.mu)
    assert not np.allclose(mu[0], mu[1])
    # seed 1 of the vmapped run equals a single run with seed 1's keys
    _, (ids1, _) = jax.jit(lambda s, ks: jax.lax.scan(_step(cfg), s, ks))(state, keys[1])
    np.testing.assert_array_equal(np.asarray(ids1), ids[1])
