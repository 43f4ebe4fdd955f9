"""Tests of the reference T-PER baseline sampler (tper_jit.bench.reference_tper)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from tper_jit.bench.reference_tper import ReferenceTPERSampler

LENGTHS = (1, 3, 5, 8, 12, 4, 20, 2)


def make_buffer(lengths=LENGTHS, seed: int = 0):
    """Episodes of the given lengths back to back; returns (rewards, terminals, successes)."""
    rng = np.random.default_rng(seed)
    n_steps = int(sum(lengths))
    terminals = np.zeros(n_steps, dtype=bool)
    terminals[np.cumsum(lengths) - 1] = True
    successes = np.zeros(n_steps, dtype=bool)
    successes[np.cumsum(lengths)[::2] - 1] = True  # every other episode succeeds
    return rng.standard_normal(n_steps), terminals, successes


def test_boundaries_and_rescan():
    rewards, terminals, successes = make_buffer()
    smp = ReferenceTPERSampler(rewards, terminals, successes, horizon=5)
    ends = np.cumsum(LENGTHS) - 1
    assert smp.traj_bounds == [(int(e - n + 1), int(e)) for e, n in zip(ends, LENGTHS,
                                                                        strict=True)]
    assert smp.traj_success == [i % 2 == 0 for i in range(len(LENGTHS))]
    # Grow in place: only finished episodes count after the rescan.
    smp2 = ReferenceTPERSampler(rewards, terminals, successes, horizon=5, size=int(ends[2]) + 3)
    assert smp2.num_trajectories == 3
    smp2.on_episode_end(int(ends[3]) + 1)
    assert smp2.num_trajectories == 4 and smp2.traj_bounds[-1] == (int(ends[2]) + 1, int(ends[3]))


@pytest.mark.parametrize("horizon", [1, 5, 30])
def test_starts_within_bounds(horizon):
    rewards, terminals, successes = make_buffer()
    smp = ReferenceTPERSampler(rewards, terminals, successes, horizon=horizon, seed=1)
    ids, starts = smp.sample(2000)
    assert ids.shape == starts.shape == (2000,)
    bounds = np.array(smp.traj_bounds)
    b, e = bounds[ids, 0], bounds[ids, 1]
    hi = np.maximum(b, e - horizon + 1)
    assert np.all(starts >= b) and np.all(starts <= hi)
    # Every allowed start of the longest trajectory shows up.
    longest = int(np.argmax(LENGTHS))
    seen = set(starts[ids == longest].tolist())
    assert seen == set(range(int(b[ids == longest][0]), int(hi[ids == longest][0]) + 1))


@pytest.mark.parametrize("metric", ["td_error_rank", "success_binary", "avg_reward"])
def test_frequencies_follow_p(metric):
    rewards, terminals, successes = make_buffer()
    smp = ReferenceTPERSampler(rewards, terminals, successes, horizon=3, metric=metric, seed=0)
    n = smp.num_trajectories
    smp.update_td(np.arange(n), np.linspace(0.1, 2.0, n)[::-1])
    p = smp.probabilities()
    assert p.shape == (n,) and p.sum() == pytest.approx(1.0) and np.all(p >= 0.05 / n)
    draws = 40_000
    ids, _ = smp.sample(draws)
    counts = np.bincount(ids, minlength=n)
    assert chisquare(counts, draws * p).pvalue > 1e-3


def test_rank_probabilities_by_hand():
    rewards, terminals, successes = make_buffer(lengths=(2, 2, 2))
    smp = ReferenceTPERSampler(rewards, terminals, successes, horizon=1, alpha_rank=0.7,
                               eps=0.05)
    smp.update_td(np.array([0, 1, 2]), np.array([0.5, 3.0, -1.0]))  # |δ| ranks: 1 → 0, 2 → 1
    w = np.array([3.0, 1.0, 2.0]) ** -0.7
    np.testing.assert_allclose(smp.probabilities(), 0.95 * w / w.sum() + 0.05 / 3)


def test_update_td_touches_only_given():
    rewards, terminals, successes = make_buffer()
    smp = ReferenceTPERSampler(rewards, terminals, successes, horizon=3, ema_beta=0.9)
    smp.update_td(np.array([0, 1, 3]), np.array([1.0, 2.0, 3.0]))
    before = dict(smp.td_ema)
    smp.update_td(np.array([1, 6, 1]), np.array([-4.0, 0.5, 2.0]))
    changed = {t for t in set(before) | set(smp.td_ema) if before.get(t) != smp.td_ema.get(t)}
    assert changed == {1, 6}
    assert smp.td_ema[6] == 0.5  # first visit sets μ
    assert smp.td_ema[1] == pytest.approx(0.9 * (0.9 * 2.0 + 0.1 * 4.0) + 0.1 * 2.0)
    assert smp.td_ema[0] == 1.0 and smp.td_ema[3] == 3.0


def test_bad_inputs():
    rewards, terminals, successes = make_buffer()
    with pytest.raises(ValueError, match="horizon"):
        ReferenceTPERSampler(rewards, terminals, successes, horizon=0)
    with pytest.raises(ValueError, match="metric"):
        ReferenceTPERSampler(rewards, terminals, successes, horizon=2, metric="uniform_ish")
    with pytest.raises(ValueError, match="rewards/terminals/successes"):
        ReferenceTPERSampler(rewards[:-1], terminals, successes, horizon=2)
    with pytest.raises(ValueError, match="terminals: expected at least one"):
        ReferenceTPERSampler(rewards, np.zeros_like(terminals), successes, horizon=2)
    smp = ReferenceTPERSampler(rewards, terminals, successes, horizon=2)
    with pytest.raises(ValueError, match="traj_ids"):
        smp.update_td(np.array([0, 99]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="batch_size"):
        smp.sample(0)
