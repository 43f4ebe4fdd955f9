"""Sample statistics used for logging are what they claim to be."""

import jax.numpy as jnp
import numpy as np

from tper_jit.replay import priorities, sample_stats, samplers, store


def test_priority_and_cluster_stats_by_hand():
    lengths = [5, 3, 9]
    rew, term = [], []
    for ln in lengths:
        rew.append(np.zeros(ln, np.float32))
        t = np.zeros(ln, np.float32)
        t[-1] = 1
        term.append(t)
    rew, term = np.concatenate(rew), np.concatenate(term)
    succ = np.zeros_like(rew)
    succ[4] = 1  # episode 0 succeeds
    obs = np.zeros((len(rew), 1), np.float32)
    st = store.build(obs, obs, rew, term, obs, successes=succ, cluster_ids=np.array([0, 1, 1]))
    cfg = samplers.SamplerConfig(kind="tper", horizon=2)
    state = samplers.init_replay(st, cfg)
    s = samplers.Sample(episode_ids=jnp.array([0, 2, 2, 1]), starts=jnp.array([4, 0, 8, 1]),
                        probs=jnp.ones(4))
    out = sample_stats.priority_sample_stats(state, s)
    np.testing.assert_allclose(float(out["ptr/sample_online/success_share"]), 0.25)
    np.testing.assert_allclose(float(out["ptr/sample_online/start_rel_mean"]),
                               np.mean([4 / 4, 0 / 8, 8 / 8, 1 / 2]))
    assert float(out["ptr/sample_online/unique_episodes"]) == 3
    p = np.asarray(priorities.slot_probabilities(state.priorities))[[0, 2, 2, 1]]
    np.testing.assert_allclose(float(out["ptr/sample_online/priority_mean"]), p.mean(),
                               rtol=1e-6)
    counts = sample_stats.cluster_counts(state, s, 2)
    np.testing.assert_array_equal(np.asarray(counts), [1, 3])
