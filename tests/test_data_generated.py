"""Generated (envs_mjx-schema) npz files load with stored rewards, like ogbench's reader."""

import numpy as np
import pytest

from tper_jit.data.generated_npz import load_generated_npz


def _write(path, episodes):
    cols = {k: [] for k in ("observations", "actions", "terminals", "rewards", "masks",
                            "successes")}
    for obs, rew, term_last in episodes:
        n = len(rew)
        cols["observations"].append(obs)
        cols["actions"].append(np.concatenate([np.full((n, 2), 0.5), np.zeros((1, 2))]))
        t = np.zeros(n + 1, bool)
        t[-1] = True
        cols["terminals"].append(t)
        cols["rewards"].append(np.append(rew, 0.0))
        m = np.ones(n + 1)
        m[n - 1] = 0.0 if term_last else 1.0
        cols["masks"].append(m)
        cols["successes"].append(np.append(np.zeros(n), 1.0 if term_last else 0.0))
    np.savez(path, **{k: np.concatenate(v) for k, v in cols.items()})


def test_transitions_rewards_and_success(tmp_path):
    ep1 = (np.arange(4, dtype=np.float32)[:, None].repeat(3, 1), np.array([-1, -1, 0.0]), True)
    ep2 = (10 + np.arange(3, dtype=np.float32)[:, None].repeat(3, 1), np.array([0, 0.0]), False)
    _write(tmp_path / "d.npz", [ep1, ep2])
    ds = load_generated_npz(tmp_path / "d.npz", env_name="lift", reward_shift=-1.0)
    assert len(ds) == 5 and ds.num_episodes == 2
    np.testing.assert_allclose(ds.observations[:, 0], [0, 1, 2, 10, 11])
    np.testing.assert_allclose(ds.next_observations[:, 0], [1, 2, 3, 11, 12])
    np.testing.assert_allclose(ds.rewards, [-2, -2, -1, -1, -1])
    np.testing.assert_allclose(ds.terminals, [0, 0, 1, 0, 1])
    np.testing.assert_allclose(ds.masks, [1, 1, 0, 1, 1])
    np.testing.assert_allclose(ds.successes, [0, 0, 1, 0, 0])
    assert ds.actions.max() == pytest.approx(0.5)


def test_missing_stored_rewards_is_one_clear_error(tmp_path):
    np.savez(tmp_path / "x.npz", observations=np.zeros((3, 2)), actions=np.zeros((3, 1)),
             terminals=np.array([0, 0, 1], bool))
    with pytest.raises(ValueError, match="x.npz: missing key 'rewards'"):
        load_generated_npz(tmp_path / "x.npz")
