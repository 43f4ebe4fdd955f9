"""OGBench npz loader: files made by ogbench's own env + scripted oracle, checked against
``ogbench.load_dataset`` / ``ogbench.make_env_and_datasets``; shards; bad inputs; sparse/clip."""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings

import numpy as np
import pytest

from tper_jit.data import (
    SingletaskTargets,
    count_ogbench_rows,
    iter_ogbench_shards,
    list_ogbench_shards,
    load_dataset,
    load_ogbench,
    load_ogbench_dir,
    load_ogbench_npz,
    make_singletask_targets,
    parse_ogbench_env_name,
    relabel,
    singletask_targets,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ogbench = pytest.importorskip("ogbench")
gymnasium = pytest.importorskip("gymnasium")

EP_LEN = 60  # rows per episode (ogbench's own files use 1001)
N_EPS = 4
TASK_NAME = "cube-single-play-singletask-task1-v0"


def _collect(num_episodes: int, ep_len: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Episodes of cube-single with ogbench's Markov oracle, in the ogbench npz schema."""
    from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gymnasium.make("cube-single-v0", terminate_at_goal=False, mode="data_collection",
                             max_episode_steps=ep_len + 10)
    oracle = CubeMarkovOracle(env=env, min_norm=0.4)
    rng = np.random.default_rng(seed)
    data: dict[str, list] = {k: [] for k in ("observations", "actions", "terminals", "qpos",
                                             "qvel")}
    for ep in range(num_episodes):
        ob, info = env.reset(seed=seed + ep)
        oracle.reset(ob, info)
        for t in range(ep_len):
            action = oracle.select_action(ob, info)
            action = np.clip(action + 0.1 * rng.normal(size=action.shape), -1, 1)
            next_ob, _, _, _, info = env.step(action)
            data["observations"].append(ob)
            data["actions"].append(action)
            data["terminals"].append(t == ep_len - 1)
            data["qpos"].append(info["prev_qpos"])
            data["qvel"].append(info["prev_qvel"])
            ob = next_ob
    env.close()
    out = {k: np.asarray(v) for k, v in data.items()}
    out["observations"] = out["observations"].astype(np.float32)
    out["actions"] = out["actions"].astype(np.float32)
    out["terminals"] = out["terminals"].astype(bool)
    return out


@pytest.fixture(scope="module")
def targets() -> SingletaskTargets:
    return make_singletask_targets(TASK_NAME)


@pytest.fixture(scope="module")
def raw(targets) -> dict[str, np.ndarray]:
    data = _collect(N_EPS, EP_LEN)
    # Put the cube on task 1's target in a few rows (within and beyond the 0.04 tolerance) so the
    # singletask relabelling has both outcomes to agree on.
    target = targets.cube_xyzs[0]
    for row, off in ((5, 0.0), (6, 0.03), (7, 0.05), (EP_LEN + 9, 0.01)):
        data["qpos"][row, 14:17] = target + np.array([off, 0.0, 0.0])
    return data


@pytest.fixture(scope="module")
def files(raw, tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("ogb")
    path = str(d / "cube-single-play-v0.npz")
    np.savez_compressed(path, **raw)
    shutil.copy(path, str(d / "cube-single-play-v0-val.npz"))  # make_env_and_datasets opens it
    shard_dir = d / "shards"
    shard_dir.mkdir()
    bounds = [0, EP_LEN, 3 * EP_LEN, N_EPS * EP_LEN]  # 1, 2, 1 episodes
    for i in range(3):
        np.savez(str(shard_dir / f"cube-single-play-100m-v0-{i:03d}.npz"),
                 **{k: v[bounds[i]:bounds[i + 1]] for k, v in raw.items()})
    np.savez(str(shard_dir / "cube-single-play-100m-v0-val.npz"),
             **{k: v[:EP_LEN] for k, v in raw.items()})
    return {"path": path, "dir": str(d), "shards": str(shard_dir)}


def _write(tmp_path, name: str = "x.npz", **arrays) -> str:
    p = str(tmp_path / name)
    np.savez(p, **arrays)
    return p


def _tiny(n_eps: int = 2, ep_len: int = 4, obs_dim: int = 3, act_dim: int = 2):
    n = n_eps * ep_len
    rng = np.random.default_rng(0)
    return dict(observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
                actions=rng.uniform(-0.5, 0.5, size=(n, act_dim)).astype(np.float32),
                terminals=np.tile(np.arange(ep_len) == ep_len - 1, n_eps))


def test_matches_ogbench_load_dataset(files, raw):
    ref = ogbench.load_dataset(files["path"])
    ds = load_ogbench_npz(files["path"], env_name="cube-single-play-v0", clip=False)
    assert len(ds) == len(raw["terminals"]) - N_EPS == len(ref["observations"])
    np.testing.assert_array_equal(ds.observations, ref["observations"])
    np.testing.assert_array_equal(ds.next_observations, ref["next_observations"])
    np.testing.assert_array_equal(ds.actions, ref["actions"])
    np.testing.assert_array_equal(ds.terminals, ref["terminals"])
    assert ds.num_episodes == N_EPS and ds.obs_dim == 28 and ds.action_dim == 5
    # Goal-conditioned name: no reward information, bootstrapping everywhere.
    assert not ds.rewards.any() and ds.masks.all() and not ds.successes.any()
    with open(files["path"], "rb") as f:
        assert ds.content_hash == "sha256:" + hashlib.sha256(f.read()).hexdigest()
    assert ds.meta.sources == (os.path.abspath(files["path"]),)
    assert count_ogbench_rows(files["path"]) == len(ds)
    # Within an episode, next obs is the following row; episodes end on terminals.
    ends = np.flatnonzero(ds.terminals)
    np.testing.assert_array_equal(ends, np.arange(1, N_EPS + 1) * (EP_LEN - 1) - 1)
    inner = np.setdiff1d(np.arange(len(ds) - 1), ends)
    np.testing.assert_array_equal(ds.next_observations[inner], ds.observations[inner + 1])


def test_singletask_relabel_matches_make_env_and_datasets(files):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, ref, _ = ogbench.make_env_and_datasets(TASK_NAME, dataset_path=files["path"])
    ds = load_ogbench(TASK_NAME, dataset_path=files["path"])
    np.testing.assert_array_equal(ds.rewards, ref["rewards"])
    np.testing.assert_array_equal(ds.masks, ref["masks"])
    np.testing.assert_array_equal(ds.successes, 1.0 - ref["masks"])
    np.testing.assert_array_equal(ds.next_observations, ref["next_observations"])
    # rows 5, 6 (0 and 3 cm off target) and EP_LEN + 9 → row EP_LEN + 8 after the drop: solved
    assert set(np.flatnonzero(ds.successes)) >= {5, 6, EP_LEN + 8}
    assert ds.successes[7] == 0 and ds.rewards[7] == -1.0
    assert set(np.unique(ds.rewards)) <= {-1.0, 0.0}
    assert ds.meta.options_dict()["relabel"] == "cube"
    # the dispatcher gives the same thing
    np.testing.assert_array_equal(load_dataset(TASK_NAME, dataset_path=files["path"]).rewards,
                                  ds.rewards)


@pytest.mark.parametrize("env_id", ["scene-singletask-task2-v0", "puzzle-3x3-singletask-task1-v0"])
def test_relabel_scene_puzzle_match_ogbench(env_id):
    from ogbench.relabel_utils import relabel_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gymnasium.make(env_id)
    targets = singletask_targets(env_id, env)
    u = env.unwrapped
    rng = np.random.default_rng(1)
    n = 64
    qpos = rng.normal(scale=0.02, size=(n, u._model.nq))
    buttons = rng.integers(0, 2, size=(n, u._num_buttons))
    buttons[::3] = targets.button_states  # some rows have every button right
    if targets.family == "scene":
        for r in range(0, n, 2):  # and some have the cube, drawer and window right
            qpos[r, 14:17] = targets.cube_xyzs[0]
            d = 14 + 7 * targets.num_cubes + targets.num_buttons
            qpos[r, d], qpos[r, d + 1] = targets.drawer_pos, targets.window_pos
    ref = {"qpos": qpos, "button_states": buttons}
    relabel_dataset(env_id, env, ref)
    env.close()
    rewards, masks, successes = relabel(targets, qpos, buttons)
    np.testing.assert_array_equal(rewards, ref["rewards"])
    np.testing.assert_array_equal(masks, ref["masks"])
    assert successes.any() and not successes.all()


def test_relabel_by_hand():
    t = SingletaskTargets("cube", cube_xyzs=np.array([[0.5, 0.0, 0.02], [0.4, 0.1, 0.02]]),
                          num_cubes=2)
    qpos = np.zeros((3, 28))
    qpos[0, 14:17], qpos[0, 21:24] = [0.5, 0.0, 0.02], [0.4, 0.1, 0.05]  # both (3 cm)
    qpos[1, 14:17], qpos[1, 21:24] = [0.5, 0.0, 0.02], [0.4, 0.2, 0.02]  # first only
    r, m, s = relabel(t, qpos)
    np.testing.assert_array_equal(r, [0.0, -1.0, -2.0])
    np.testing.assert_array_equal(m, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(s, [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="needs `button_states`"):
        relabel(SingletaskTargets("puzzle", button_states=np.zeros(9)), qpos)


def test_parse_ogbench_env_name():
    p = parse_ogbench_env_name("cube-double-play-singletask-task2-v0")
    assert (p.env_id, p.dataset_name, p.singletask, p.task_id) == (
        "cube-double-singletask-task2-v0", "cube-double-play-v0", True, 2)
    p = parse_ogbench_env_name("puzzle-3x3-play-singletask-v0")
    assert (p.env_id, p.dataset_name, p.task_id) == ("puzzle-3x3-singletask-v0",
                                                     "puzzle-3x3-play-v0", None)
    p = parse_ogbench_env_name("cube-single-play-v0")
    assert (p.env_id, p.singletask) == ("cube-single-v0", False)
    with pytest.raises(ValueError, match="not an OGBench dataset name"):
        parse_ogbench_env_name("square-mh-low")


def test_shard_directory_streaming(files, targets):
    shards = list_ogbench_shards(files["shards"])
    assert [os.path.basename(s) for s in shards] == [
        f"cube-single-play-100m-v0-{i:03d}.npz" for i in range(3)]  # -val excluded
    parts = iter_ogbench_shards(files["shards"], env_name=TASK_NAME, targets=targets)
    assert not isinstance(parts, list | tuple)  # a generator: one shard at a time
    parts = list(parts)
    assert [p.num_episodes for p in parts] == [1, 2, 1]
    whole = load_ogbench_npz(files["path"], env_name=TASK_NAME, targets=targets)
    cat = load_ogbench_dir(files["shards"], env_name=TASK_NAME, targets=targets)
    for k in ("observations", "next_observations", "actions", "rewards", "terminals", "masks",
              "successes"):
        np.testing.assert_array_equal(getattr(cat, k), getattr(whole, k))
        np.testing.assert_array_equal(np.concatenate([getattr(p, k) for p in parts]),
                                      getattr(whole, k))
    assert cat.num_episodes == N_EPS and cat.meta.sources == tuple(shards)
    assert cat.content_hash.startswith("sha256:") and cat.content_hash != whole.content_hash
    assert cat.content_hash == load_ogbench_dir(files["shards"]).content_hash
    two = load_ogbench_dir(files["shards"], max_shards=2)
    assert len(two) == 3 * (EP_LEN - 1) and two.num_episodes == 3
    via_name = load_ogbench(TASK_NAME, dataset_dir=files["shards"], targets=targets)
    np.testing.assert_array_equal(via_name.rewards, whole.rewards)


def test_store_build_accepts(files, targets):
    from tper_jit.replay.store import build

    ds = load_ogbench(TASK_NAME, dataset_path=files["path"], targets=targets)
    store = build(**ds.store_arrays())
    assert store.num_offline_episodes == ds.num_episodes
    assert store.obs_dim == ds.obs_dim


def test_sparse_and_clipping_by_hand(tmp_path):
    arr = _tiny(n_eps=1, ep_len=4)
    arr["actions"][0] = [1.5, -1.0]
    arr["actions"][1] = [0.99999999, -2.0]
    arr["qpos"] = np.zeros((4, 21))
    target = [0.5, 0.0, 0.02]
    arr["qpos"][1, 14:17] = target
    p = _write(tmp_path, **arr)
    t = SingletaskTargets("cube", cube_xyzs=np.array([target]), num_cubes=1)
    ds = load_ogbench_npz(p, targets=t)
    eps = 1e-5
    np.testing.assert_allclose(ds.actions[0], [1 - eps, -1 + eps], rtol=0, atol=1e-7)
    np.testing.assert_allclose(ds.actions[1], [1 - eps, -1 + eps], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(ds.actions[2], arr["actions"][2])
    np.testing.assert_array_equal(ds.rewards, [-1.0, 0.0, -1.0])
    np.testing.assert_array_equal(ds.masks, [1.0, 0.0, 1.0])
    sp = load_ogbench_npz(p, targets=t, sparse=True, clip=False)
    np.testing.assert_array_equal(sp.rewards, [-1.0, 0.0, -1.0])
    np.testing.assert_array_equal(sp.actions[0], [1.5, -1.0])
    # sparse on multi-subtask rewards: −2 → −1
    t2 = SingletaskTargets("cube", cube_xyzs=np.array([target, target]), num_cubes=2)
    arr["qpos"] = np.zeros((4, 28))
    arr["qpos"][2, 14:17] = target
    p2 = _write(tmp_path, "two.npz", **arr)
    np.testing.assert_array_equal(load_ogbench_npz(p2, targets=t2).rewards, [-2.0, -2.0, -1.0])
    np.testing.assert_array_equal(load_ogbench_npz(p2, targets=t2, sparse=True).rewards,
                                  [-1.0, -1.0, -1.0])


def test_bad_inputs(tmp_path):
    good = _tiny()
    with pytest.raises(FileNotFoundError, match="nope.npz: OGBench dataset file not found"):
        load_ogbench_npz(tmp_path / "nope.npz")
    p = _write(tmp_path, "a.npz", observations=good["observations"],
               terminals=good["terminals"])
    with pytest.raises(ValueError, match=r"a\.npz: missing key 'actions'"):
        load_ogbench_npz(p)
    p = _write(tmp_path, "b.npz", **{**good, "actions": good["actions"][:-1]})
    with pytest.raises(ValueError, match=r"b\.npz: `actions` has 7 rows but `observations` has 8"):
        load_ogbench_npz(p)
    p = _write(tmp_path, "c.npz", **{**good, "actions": good["actions"][:, 0]})
    with pytest.raises(ValueError, match=r"c\.npz: `actions` must have 2 dims"):
        load_ogbench_npz(p)
    bad = good["observations"].copy()
    bad[5, 1] = np.nan
    p = _write(tmp_path, "d.npz", **{**good, "observations": bad})
    with pytest.raises(ValueError, match=r"d\.npz: `observations` contains NaN or inf.*row 5"):
        load_ogbench_npz(p)
    p = _write(tmp_path, "e.npz", observations=np.zeros((0, 3), np.float32),
               actions=np.zeros((0, 2), np.float32), terminals=np.zeros(0, bool))
    with pytest.raises(ValueError, match=r"e\.npz: the dataset is empty"):
        load_ogbench_npz(p)
    p = _write(tmp_path, "f.npz", **good)
    with pytest.raises(ValueError, match=r"f\.npz: observation dim 3 does not match .* dim 28"):
        load_ogbench_npz(p, env_name="cube-single-play-v0", expected_obs_dim=28)
    p = _write(tmp_path, "g.npz", **{**good, "terminals": np.zeros(8, bool)})
    with pytest.raises(ValueError, match=r"g\.npz: the last episode is unfinished"):
        load_ogbench_npz(p)
    with pytest.raises(ValueError, match=r"f\.npz: missing key 'qpos'"):
        load_ogbench_npz(tmp_path / "f.npz", targets=SingletaskTargets("cube", num_cubes=1))
    (tmp_path / "h.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"h\.npz: not a readable npz file"):
        load_ogbench_npz(tmp_path / "h.npz")
    with pytest.raises(FileNotFoundError, match="dataset directory not found"):
        load_ogbench_dir(tmp_path / "missing_dir")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no .npz shards"):
        list(iter_ogbench_shards(empty))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    np.savez(str(mixed / "s-000.npz"), **good)
    np.savez(str(mixed / "s-001.npz"), **_tiny(obs_dim=4))
    with pytest.raises(ValueError, match=r"s-001\.npz: \(obs, action\) dims \(4, 2\) differ"):
        load_ogbench_dir(mixed)
