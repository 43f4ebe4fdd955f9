"""puzzle-4x4 (lights-out push buttons, singular toggle matrix): GF(2) solver on random
solvable boards, solvable evaluation tasks and play resets, reset/step/vmap through the
oracle rollout, better-tier oracle success (16 episodes; all tiers in the slow test)."""

import itertools

import jax
import numpy as np
import pytest

from envs_mjx import generate, registry
from envs_mjx.oracles.pick_place import TIERS
from envs_mjx.tasks.puzzle import (
    gf2_solver,
    min_weight_solution,
    null_space,
    reachable,
    task_presses,
    task_start,
    toggle_matrix,
)

ENV = "puzzle-4x4-singletask-task5"
T4 = toggle_matrix(4)


@pytest.fixture(scope="module")
def better_episodes():
    return generate.generate_episodes(ENV, 16, seed=0, batch=16, mix=(1.0, 0.0, 0.0),
                                      progress=False)


def test_gf2_solver_4x4_random_boards():
    s, ns = gf2_solver(T4), null_space(T4)
    assert ns.shape == (4, 16) and not (ns @ T4 % 2).any()  # rank 12
    # 3x3: the solver is the true inverse
    np.testing.assert_array_equal(toggle_matrix(3) @ gf2_solver(toggle_matrix(3)) % 2,
                                  np.eye(9, dtype=int))
    rng = np.random.default_rng(0)
    for _ in range(200):
        board = rng.integers(0, 2, 16) @ T4 % 2  # solvable by construction
        x = board @ s % 2
        np.testing.assert_array_equal(x @ T4 % 2, board)
        xm = min_weight_solution(T4, board)
        np.testing.assert_array_equal(xm @ T4 % 2, board)
        assert xm.sum() <= x.sum()
    # brute force over all 2^16 press vectors: the reachable set has 2^12 boards, and the
    # minimum-weight solution is the true minimum
    presses = np.array(list(itertools.product((0, 1), repeat=16)), np.int32)
    boards = presses @ T4 % 2
    codes = boards @ (1 << np.arange(16))
    assert len(np.unique(codes)) == 2 ** 12
    best = np.full(2 ** 16, 99)
    np.minimum.at(best, codes, presses.sum(1))
    for c in rng.choice(np.unique(codes), 50, replace=False):
        board = (c >> np.arange(16)) & 1
        assert reachable(T4, board)
        assert min_weight_solution(T4, board).sum() == best[c]
    unreachable = np.setdiff1d(np.arange(2 ** 16), codes)[:20]
    assert not any(reachable(T4, (c >> np.arange(16)) & 1) for c in unreachable)


def test_4x4_tasks_solvable_and_play_resets():
    for t in range(1, 6):
        start = task_start(t, 4).astype(int)
        assert reachable(T4, start)
        x = min_weight_solution(T4, start)
        np.testing.assert_array_equal(x @ T4 % 2, start)
        assert x.sum() == len(task_presses(t, 4))
    env = registry.make("puzzle-4x4")
    assert env.name == "puzzle-4x4" and env.observation_size == 41
    st = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), 32))
    assert st.obs.shape == (32, 41)
    diff = np.asarray(st.info["lights"] ^ st.info["goal_lights"]).astype(int)
    assert all(reachable(T4, d) for d in diff)
    assert len({tuple(g) for g in np.asarray(st.info["goal_lights"])}) > 1


def _check_episodes(eps, env, task):
    start = task_start(task, 4)
    for e in eps:
        lights = e["obs"][:, -16:].astype(int)
        np.testing.assert_array_equal(lights[0], start)
        for flip in np.abs(np.diff(lights, axis=0)):
            assert flip.sum() == 0 or any((flip == row).all() for row in T4)
        np.testing.assert_array_equal(e["rewards"], -lights[1:].sum(1))
        np.testing.assert_array_equal(e["success"], lights.sum(1) == 0)


@pytest.mark.slow  # an oracle compile of its own (~1 min); 3x3 covers the buttons oracle in CI
def test_4x4_reset_step_vmap_and_better_tier(better_episodes):
    eps, env = better_episodes
    assert env.name == ENV and env.episode_length == 500
    assert len(eps) == 16 and {e["tier"] for e in eps} == {0}
    assert all(e["obs"].shape[1] == 41 for e in eps)
    _check_episodes(eps, env, 5)
    rate = np.mean([e["success"].any() for e in eps])
    assert rate >= 0.8, rate


@pytest.mark.slow
def test_4x4_oracle_tiers():
    eps, env = generate.generate_episodes("puzzle-4x4-singletask-task4", 192, seed=1, batch=96,
                                          progress=False)
    _check_episodes(eps, env, 4)
    succ = np.array([e["success"].any() for e in eps])
    tier = np.array([e["tier"] for e in eps])
    rate = {name: succ[tier == k].mean() for k, name in enumerate(TIERS)}
    assert rate["better"] >= 0.9 and rate["okay"] >= 0.6, rate
    assert rate["worse"] <= rate["better"] - 0.15, rate
