"""The task resolver: one TaskSpec per --env_name / --dataset_path, and its reward rule."""

import numpy as np
import pytest

from tper_jit.tasks.resolve import RewardRule, resolve


@pytest.mark.parametrize("name, path, simulator, loader, shift", [
    ("lift", None, "mjx", "generated-npz", -1.0),
    ("cube-double-singletask-task2", None, "mjx", "generated-npz", 0.0),
    ("lift", "data/lift.hdf5", "mjx", "robomimic-hdf5", -1.0),  # the generator's hdf5
    ("cube-single-play-singletask-task1-v0", None, "ogbench-host", "ogbench-npz", 0.0),
    ("puzzle-3x3-play-singletask-task4-v0", "x.npz", "ogbench-host", "ogbench-npz", 0.0),
    ("cube-double-play-v0", None, "none", "ogbench-npz", 0.0),  # no singletask: no env
    ("antmaze-large-navigate-singletask-v0", None, "none", "ogbench-npz", 0.0),
    ("lift-ph-image", None, "none", "robomimic-hdf5", -1.0),
])
def test_kinds(name, path, simulator, loader, shift):
    task = resolve(name, path, robosuite_ok=False)
    assert (task.simulator, task.loader, task.rewards.shift) == (simulator, loader, shift)
    assert task.has_env == (simulator != "none")
    assert task.on_host == simulator.endswith("-host")
    assert (task.note is None) == task.has_env


def test_robosuite_names_need_the_extra():
    with_extra = resolve("square-mh-low", robosuite_ok=True)
    without = resolve("square-mh-low", robosuite_ok=False)
    assert with_extra.simulator == "robosuite-host" and with_extra.rewards.shift == -1.0
    assert without.simulator == "none" and "robosuite" in without.note


def test_sparse_reaches_the_rule_of_every_kind():
    for name in ("lift", "cube-single-play-singletask-task1-v0", "square-mh-low"):
        assert resolve(name, sparse=True, robosuite_ok=False).rewards.sparse
        assert not resolve(name, robosuite_ok=False).rewards.sparse


def test_reward_rule_by_hand():
    r = np.asarray([-3.0, -1.0, 0.0, 1.0], np.float32)
    np.testing.assert_array_equal(RewardRule()(r), r)
    np.testing.assert_array_equal(RewardRule(-1.0)(r), [-4, -2, -1, 0])
    np.testing.assert_array_equal(RewardRule(0.0, True)(r), [-1, -1, 0, -1])
    np.testing.assert_array_equal(RewardRule(-1.0, True)(r), [-1, -1, -1, 0])  # robomimic
    assert RewardRule(-1.0, True)(r).dtype == np.float32
