"""lift (robomimic-like, sparse reward): oracle tiers on 64 episodes each, files, registry."""

import h5py
import numpy as np
import ogbench
import pytest

from envs_mjx import generate, registry
from envs_mjx.oracles.pick_place import STRATEGIES, TIERS
from envs_mjx.tasks.lift import LIFT_HEIGHT

BATCH = 96


@pytest.fixture(scope="module")
def episodes():
    return generate.generate_episodes("lift", 192, seed=0, batch=BATCH, progress=False)


# lift is cube-single's MJCF with the pick-and-place oracle stopped after the lift; its
# tiers and files (two minutes of oracle rollouts) are in the slow tier, cube-single's in CI
@pytest.mark.slow
def test_lift_oracle_tiers(episodes):
    eps, env = episodes
    succ = np.array([e["success"].any() for e in eps])
    tier = np.array([e["tier"] for e in eps])
    rate = {name: succ[tier == k].mean() for k, name in enumerate(TIERS)}
    assert all((tier == k).sum() >= 64 for k in range(3))
    assert rate["better"] >= 0.9 and rate["okay"] >= 0.75, rate
    assert rate["worse"] <= rate["better"] - 0.1, rate
    assert {e["strategy"] for e in eps} == set(range(len(STRATEGIES)))
    for e in eps:
        assert np.isfinite(e["obs"]).all()
        # sparse {0, 1}: reward 1 exactly on the step that lifts the cube, episode ends there
        np.testing.assert_array_equal(e["rewards"], e["success"][1:].astype(np.float32))
        if e["success"].any():
            assert e["rewards"][-1] == 1 and e["rewards"][:-1].sum() == 0
            assert e["qpos"][-1, 8] > LIFT_HEIGHT and e["terminated"][-1]
        else:
            assert len(e["actions"]) == env.episode_length and e["truncated"][-1]


@pytest.mark.slow
def test_lift_files(episodes, tmp_path):
    eps, env = episodes
    paths = generate.write_all(str(tmp_path), "lift", eps, env, 0.1, seed=0, plot=False)
    ds = ogbench.load_dataset(paths["npz"])
    assert ds["observations"].shape[1] == env.observation_size == 19
    raw = np.load(paths["npz"])
    assert set(np.unique(raw["rewards"])) <= {0.0, 1.0}
    with h5py.File(paths["hdf5"], "r") as f:
        g = f["data/demo_0"]
        assert g["rewards"][:].sum() == float(eps[0]["success"].any())
        assert len(f["mask/better"]) + len(f["mask/okay"]) + len(f["mask/worse"]) == len(eps)


def test_registry_and_shared_model():
    lift = registry.make("lift")
    cube = registry.make("cube-single-singletask-task3")
    # identical MJCF: the cube-single MJX-vs-C parity test covers lift's physics too
    assert lift.xml == cube.xml and lift.oracle_lift_only and not cube.oracle_lift_only
    assert cube.name == "cube-single-singletask-task3" and cube.episode_length == 200
    with pytest.raises(ValueError, match="unknown env name"):
        registry.make("cube-triple")
