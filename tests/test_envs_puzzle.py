"""puzzle-3x3 (lights-out push buttons): GF(2) solver, oracle tiers on 64 episodes each,
lights / reward bookkeeping along oracle episodes, files."""

import numpy as np
import ogbench
import pytest

from envs_mjx import generate
from envs_mjx.oracles.buttons import STRATEGIES
from envs_mjx.oracles.pick_place import TIERS
from envs_mjx.tasks.puzzle import TASK_PRESSES, TOGGLE, TOGGLE_INV, task_start

ENV = "puzzle-3x3-singletask-task3"


@pytest.fixture(scope="module")
def episodes():
    return generate.generate_episodes(ENV, 192, seed=0, batch=96, progress=False)


def test_gf2_solver_and_tasks():
    np.testing.assert_array_equal(TOGGLE @ TOGGLE_INV % 2, np.eye(9, dtype=int))
    assert TOGGLE[4].sum() == 5 and TOGGLE[0].sum() == 3
    for t, presses in enumerate(TASK_PRESSES, start=1):
        sol = task_start(t).astype(int) @ TOGGLE_INV % 2
        assert set(np.flatnonzero(sol)) == set(presses)


def test_puzzle_oracle_tiers(episodes):
    eps, env = episodes
    succ = np.array([e["success"].any() for e in eps])
    tier = np.array([e["tier"] for e in eps])
    rate = {name: succ[tier == k].mean() for k, name in enumerate(TIERS)}
    assert all((tier == k).sum() >= 64 for k in range(3))
    assert rate["better"] >= 0.9 and rate["okay"] >= 0.7, rate
    assert rate["worse"] <= rate["better"] - 0.2, rate
    assert {e["strategy"] for e in eps} == set(range(len(STRATEGIES)))


def test_lights_toggle_and_reward_bookkeeping(episodes):
    eps, env = episodes
    start = task_start(3)
    for e in eps[:60]:
        lights = e["obs"][:, -9:].astype(int)
        np.testing.assert_array_equal(lights[0], start)
        # each step flips nothing or exactly one button's toggle pattern
        for flip in np.abs(np.diff(lights, axis=0)):
            assert flip.sum() == 0 or any((flip == row).all() for row in TOGGLE)
        # reward = lights equal to the goal (all off) minus 9; success = all off
        np.testing.assert_array_equal(e["rewards"], -lights[1:].sum(1))
        np.testing.assert_array_equal(e["success"], lights.sum(1) == 0)
        if e["success"].any() and e["fail_mode"] == 0:
            presses = (np.abs(np.diff(lights, axis=0)).sum(1) > 0).sum()
            assert presses == len(TASK_PRESSES[2])


def test_puzzle_files(episodes, tmp_path):
    eps, env = episodes
    paths = generate.write_all(str(tmp_path), "puzzle", eps, env, 0.1, seed=0)
    ds = ogbench.load_dataset(paths["npz"])
    assert ds["observations"].shape[1] == env.observation_size == 27
    assert (tmp_path / "puzzle-trajectories.png").stat().st_size > 10_000
