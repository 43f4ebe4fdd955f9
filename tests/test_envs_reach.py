"""reach (the suite's fastest task): oracle tiers and strategies, observation layout, the
sparse reward convention and the files ``tper-generate`` writes."""

import numpy as np
import ogbench
import pytest

from envs_mjx import generate, registry
from envs_mjx.oracles.pick_place import TIERS
from envs_mjx.oracles.reach import FAIL_MODES, STRATEGIES
from envs_mjx.tasks.reach import GOAL_HI, GOAL_LO, SUCCESS_RADIUS


@pytest.fixture(scope="module")
def episodes():
    return generate.generate_episodes("reach", 192, seed=0, batch=96, progress=False)


def test_reach_oracle_tiers_and_strategies(episodes):
    eps, env = episodes
    succ = np.array([e["success"].any() for e in eps])
    tier = np.array([e["tier"] for e in eps])
    rate = {name: succ[tier == k].mean() for k, name in enumerate(TIERS)}
    assert all((tier == k).sum() >= 64 for k in range(3))
    assert rate["better"] >= 0.9, rate
    assert rate["worse"] <= rate["better"] - 0.1, rate
    assert {e["strategy"] for e in eps} == set(range(len(STRATEGIES)))
    failed = np.array([e["fail_mode"] for e in eps]) > 0
    assert failed.any() and succ[failed].mean() < succ[~failed].mean()
    # the "over" route climbs above the others: the highest ee point per strategy
    top = np.array([e["qpos"][:, 2].max() for e in eps])
    strat = np.array([e["strategy"] for e in eps])
    assert top[strat == STRATEGIES.index("over")].mean() > top[strat == 0].mean() + 0.05
    assert len(FAIL_MODES) == 3


def test_reach_observation_reward_and_termination(episodes):
    eps, env = episodes
    for e in eps:
        obs = e["obs"]
        assert obs.shape[1] == env.observation_size == 15 and np.isfinite(obs).all()
        goal = obs[:, 9:12]
        np.testing.assert_allclose(goal, goal[:1].repeat(len(goal), 0))  # fixed per episode
        assert np.all(goal[0] >= np.array(GOAL_LO)) and np.all(goal[0] <= np.array(GOAL_HI))
        np.testing.assert_allclose(obs[:, 12:15], goal - e["qpos"][:, :3], atol=1e-5)
        dist = np.linalg.norm(obs[:, 12:15], axis=1)
        np.testing.assert_array_equal(e["success"], dist <= SUCCESS_RADIUS + 1e-6)
        # sparse {0, 1}: reward 1 exactly on the step that reaches the goal; it ends there
        np.testing.assert_array_equal(e["rewards"], e["success"][1:].astype(np.float32))
        if e["success"].any():
            assert e["rewards"][-1] == 1 and e["rewards"][:-1].sum() == 0
            assert e["terminated"][-1]
        else:
            assert len(e["actions"]) == env.episode_length == 50 and e["truncated"][-1]


def test_reach_files(episodes, tmp_path):
    eps, env = episodes
    paths = generate.write_all(str(tmp_path), "reach", eps, env, 0.1, seed=0, plot=True)
    ds = ogbench.load_dataset(paths["npz"])
    assert ds["observations"].shape[1] == 15
    assert set(np.unique(np.load(paths["npz"])["rewards"])) <= {0.0, 1.0}
    assert (tmp_path / "reach-trajectories.png").stat().st_size > 1000
    assert registry.make("reach").mj_model.ngeom == 5  # table, palm, pusher, two fingers
