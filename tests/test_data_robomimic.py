"""robomimic hdf5 loader: files written with h5py in the documented layout round-trip; filter
keys; both name spellings get the −1 shift; every bad input raises its message; sparse/clip."""

from __future__ import annotations

import hashlib
import json
import os

import h5py
import numpy as np
import pytest

from tper_jit.data import (
    DEFAULT_LOW_DIM_KEYS,
    ROBOMIMIC_EPISODE_LIMITS,
    default_robomimic_path,
    episode_limit,
    is_robomimic_env,
    load_dataset,
    load_robomimic,
    load_robomimic_hdf5,
    parse_robomimic_env_name,
)

WIDTHS = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "object": 10,
          "robot0_joint_pos": 7}
ACT_DIM = 7
N_DEMOS = 12  # demo_10, demo_11 test the numeric order
FILTERS = {"better": [0, 3, 10], "okay": [1, 4, 7, 11], "worse": [2, 5, 6, 8, 9]}


def _make_demos(seed: int = 0) -> dict[int, dict]:
    rng = np.random.default_rng(seed)
    demos = {}
    for i in range(N_DEMOS):
        t = int(rng.integers(3, 8))
        success = i % 4 != 2  # demos 2, 6, 10 fail: no reward, no done
        rewards = np.zeros(t)
        rewards[-1] = float(success)
        obs = {k: rng.normal(size=(t + 1, w)) for k, w in WIDTHS.items()}
        demos[i] = dict(actions=rng.uniform(-1.2, 1.2, size=(t, ACT_DIM)), rewards=rewards,
                        dones=rewards.copy(), obs={k: v[:-1] for k, v in obs.items()},
                        next_obs={k: v[1:] for k, v in obs.items()},
                        states=rng.normal(size=(t, 20)))
    return demos


def _write(path: str, demos: dict[int, dict], filters: dict[str, list[int]] | None = None,
           edit=None) -> str:
    """Write ``demos`` in the robomimic layout; ``edit(f)`` may damage the file afterwards."""
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["total"] = sum(len(d["actions"]) for d in demos.values())
        data.attrs["env_args"] = json.dumps({"env_name": "NutAssemblySquare", "type": 1,
                                             "env_kwargs": {"control_freq": 20}})
        for i in sorted(demos, key=str):  # insertion order deliberately not numeric
            d = demos[i]
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = len(d["actions"])
            g.attrs["model_file"] = "<mujoco/>"
            for k in ("actions", "rewards", "dones", "states"):
                g.create_dataset(k, data=d[k])
            for grp in ("obs", "next_obs"):
                for k, v in d[grp].items():
                    g.create_dataset(f"{grp}/{k}", data=v)
        for name, ids in (FILTERS if filters is None else filters).items():
            f.create_dataset(f"mask/{name}", data=np.array([f"demo_{i}".encode() for i in ids],
                                                           dtype="S"))
        if edit is not None:
            edit(f)
    return path


@pytest.fixture(scope="module")
def demos() -> dict[int, dict]:
    return _make_demos()


@pytest.fixture(scope="module")
def path(demos, tmp_path_factory) -> str:
    return _write(str(tmp_path_factory.mktemp("rm") / "low_dim_v15.hdf5"), demos)


def _expected(demos: dict[int, dict], ids: list[int], keys=DEFAULT_LOW_DIM_KEYS) -> dict:
    sel = [demos[i] for i in ids]
    ends = np.cumsum([len(d["actions"]) for d in sel]) - 1
    n = ends[-1] + 1
    terminals = np.zeros(n)
    terminals[ends] = 1
    cat = np.concatenate
    return dict(
        observations=cat([cat([d["obs"][k] for k in keys], -1) for d in sel]),
        next_observations=cat([cat([d["next_obs"][k] for k in keys], -1) for d in sel]),
        actions=cat([d["actions"] for d in sel]), raw_rewards=cat([d["rewards"] for d in sel]),
        dones=cat([d["dones"] for d in sel]), terminals=terminals)


def _check(ds, exp, clip: bool = True) -> None:
    f32 = np.float32
    np.testing.assert_array_equal(ds.observations, exp["observations"].astype(f32))
    np.testing.assert_array_equal(ds.next_observations, exp["next_observations"].astype(f32))
    acts = exp["actions"].astype(f32)
    np.testing.assert_array_equal(ds.actions, np.clip(acts, -1 + 1e-5, 1 - 1e-5) if clip else acts)
    np.testing.assert_array_equal(ds.rewards, exp["raw_rewards"] - 1.0)
    np.testing.assert_array_equal(ds.terminals, exp["terminals"])
    np.testing.assert_array_equal(ds.masks, 1.0 - exp["dones"])
    np.testing.assert_array_equal(ds.successes, (exp["raw_rewards"] > 0).astype(f32))
    for k in ("observations", "actions", "rewards", "terminals", "masks", "next_observations",
              "successes"):
        assert getattr(ds, k).dtype == np.float32


def test_round_trip_all_demos(path, demos):
    ds = load_robomimic_hdf5(path, env_name="square-mh-low", clip=False)
    _check(ds, _expected(demos, list(range(N_DEMOS))), clip=False)
    assert ds.num_episodes == N_DEMOS and len(ds) == sum(len(d["actions"]) for d in demos.values())
    assert ds.obs_dim == 3 + 4 + 2 + 10 and ds.action_dim == ACT_DIM
    with open(path, "rb") as f:
        assert ds.content_hash == "sha256:" + hashlib.sha256(f.read()).hexdigest()
    opts = ds.meta.options_dict()
    assert opts["robomimic_env"] == "NutAssemblySquare" and opts["num_demos"] == N_DEMOS
    assert ds.meta.sources == (os.path.abspath(path),) and ds.env_name == "square-mh-low"
    # failing demos: terminal on the last row, but the mask stays 1 (time-limit truncation)
    last_of_demo2 = np.flatnonzero(ds.terminals)[2]
    assert ds.masks[last_of_demo2] == 1.0 and ds.successes[last_of_demo2] == 0.0


@pytest.mark.parametrize("filter_key", ["better", "okay", "worse"])
def test_filter_keys(path, demos, filter_key):
    ds = load_robomimic_hdf5(path, filter_key=filter_key)
    _check(ds, _expected(demos, sorted(FILTERS[filter_key])))
    assert ds.num_episodes == len(FILTERS[filter_key])
    assert ds.meta.options_dict()["filter_key"] == filter_key


@pytest.mark.parametrize("name", ["square-mh-low", "square-mh-low_dim"])
def test_both_spellings_shift_rewards(path, demos, name):
    exp = _expected(demos, list(range(N_DEMOS)))
    for ds in (load_robomimic(name, dataset_path=path), load_dataset(name, dataset_path=path)):
        np.testing.assert_array_equal(ds.rewards, exp["raw_rewards"] - 1.0)
        assert set(np.unique(ds.rewards)) == {-1.0, 0.0}
        assert ds.env_name == name


def test_custom_obs_keys(path, demos):
    keys = ("object", "robot0_joint_pos")
    ds = load_robomimic_hdf5(path, obs_keys=keys)
    _check(ds, _expected(demos, list(range(N_DEMOS)), keys))
    assert ds.obs_dim == 17


def test_env_names_paths_limits():
    assert parse_robomimic_env_name("square-mh-low") == ("square", "mh", "low_dim")
    assert parse_robomimic_env_name("square-mh-low_dim") == ("square", "mh", "low_dim")
    assert parse_robomimic_env_name("tool_hang-ph-low").task == "tool_hang"
    assert default_robomimic_path("square-mh-low") == os.path.expanduser(
        "~/.robomimic/square/mh/low_dim_v15.hdf5")
    assert default_robomimic_path("lift-mh-low_dim", root="/d") == "/d/lift/mh/low_dim_v15.hdf5"
    assert ROBOMIMIC_EPISODE_LIMITS == {"lift": 300, "can": 300, "square": 400,
                                        "transport": 800, "tool_hang": 1000}
    assert episode_limit("transport-mh-low") == 800
    assert is_robomimic_env("can-mh-low") and not is_robomimic_env("cube-double-play-v0")
    for bad, msg in (("square-mh", "not a robomimic name"), ("stack-mh-low", "unknown robomimic"),
                     ("square-xx-low", "unknown dataset type"),
                     ("square-mh-depth", "unknown observation type")):
        with pytest.raises(ValueError, match=msg):
            parse_robomimic_env_name(bad)


def test_sparse_and_clipping_by_hand(tmp_path):
    d = _make_demos(seed=3)
    demo = {0: d[0]}
    demo[0]["actions"][0, :3] = [1.0, -1.5, 0.999999]
    demo[0]["rewards"] = np.array([0.0, 0.5, 0.0] + [1.0] * (len(demo[0]["actions"]) - 3))
    p = _write(str(tmp_path / "s.hdf5"), demo, filters={})
    ds = load_robomimic_hdf5(p)
    eps = 1e-5
    np.testing.assert_allclose(ds.actions[0, :3], [1 - eps, -1 + eps, 1 - eps], atol=1e-7,
                               rtol=0)
    r = demo[0]["rewards"]
    np.testing.assert_array_equal(ds.rewards, r - 1.0)
    sp = load_robomimic_hdf5(p, sparse=True, clip=False)
    np.testing.assert_array_equal(sp.rewards, -((r - 1.0) != 0).astype(np.float32))
    np.testing.assert_array_equal(sp.rewards[:3], [-1.0, -1.0, -1.0])
    np.testing.assert_array_equal(sp.actions[0, :3], np.float32([1.0, -1.5, 0.999999]))


def test_store_build_accepts(path):
    from tper_jit.replay.store import build

    ds = load_robomimic_hdf5(path, filter_key="okay")
    store = build(**ds.store_arrays())
    assert store.num_offline_episodes == ds.num_episodes == 4


def _del(key: str):
    def edit(f):
        del f[key]
    return edit


def _replace(key: str, value):
    def edit(f):
        del f[key]
        f.create_dataset(key, data=value)
    return edit


def test_bad_inputs(tmp_path, demos):
    with pytest.raises(FileNotFoundError, match=r"none\.hdf5: robomimic dataset file not found"):
        load_robomimic_hdf5(tmp_path / "none.hdf5")
    with pytest.raises(FileNotFoundError, match="low_dim_v15.hdf5: robomimic dataset file not"):
        load_robomimic("lift-mh-low", dataset_path=str(tmp_path / "lift/mh/low_dim_v15.hdf5"))
    (tmp_path / "junk.hdf5").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"junk\.hdf5: not a readable hdf5 file"):
        load_robomimic_hdf5(tmp_path / "junk.hdf5")

    t3 = len(demos[3]["actions"])
    cases = [
        ("k.hdf5", _del("data/demo_3/obs/object"), {},
         r"k\.hdf5: missing key /data/demo_3/obs/object"),
        ("k2.hdf5", _del("data/demo_0/dones"), {}, r"missing key /data/demo_0/dones"),
        ("k3.hdf5", _del("data/demo_1/next_obs"), {}, r"missing key /data/demo_1/next_obs"),
        ("s.hdf5", _replace("data/demo_3/rewards", np.zeros(t3 + 1)), {},
         rf"s\.hdf5: /data/demo_3/rewards must have shape \({t3},\)"),
        ("s2.hdf5", _replace("data/demo_3/obs/robot0_eef_pos", np.zeros((t3, 3, 1))), {},
         r"/data/demo_3/obs/robot0_eef_pos must have shape"),
        ("s3.hdf5", _replace("data/demo_3/next_obs/object", np.zeros((t3, 9))), {},
         r"/data/demo_3/next_obs/object has width 9 but obs/object has 10"),
        ("s4.hdf5", _replace("data/demo_3/actions", np.zeros((t3, 6))), {},
         r"data/demo_3 has \(obs, action\) dims \(19, 6\), data/demo_0 has \(19, 7\)"),
        ("n.hdf5", _replace("data/demo_4/obs/object",
                            np.full_like(demos[4]["obs"]["object"], np.inf)), {},
         r"n\.hdf5: `obs` contains NaN or inf"),
        ("n2.hdf5", _replace("data/demo_4/actions",
                             np.full_like(demos[4]["actions"], np.nan)), {},
         r"`actions` contains NaN or inf"),
        ("f.hdf5", None, {"filter_key": "best"},
         r"f\.hdf5: unknown filter key 'best' \(available: \['better', 'okay', 'worse'\]\)"),
        ("e.hdf5", _replace("mask/worse", np.array([], dtype="S")), {"filter_key": "worse"},
         r"e\.hdf5: the dataset is empty \(no demos in mask/worse\)"),
        ("m.hdf5", _replace("mask/okay", np.array([b"demo_1", b"demo_99"])),
         {"filter_key": "okay"}, r"mask/okay lists demos not in data/: \['demo_99'\]"),
        ("d.hdf5", None, {"expected_obs_dim": 23, "env_name": "square-mh-low"},
         r"d\.hdf5: observation dim 19 does not match the environment 'square-mh-low' "
         r"observation dim 23"),
    ]
    for name, edit, kwargs, msg in cases:
        p = _write(str(tmp_path / name), demos, edit=edit)
        with pytest.raises(ValueError, match=msg):
            load_robomimic_hdf5(p, **kwargs)

    p = _write(str(tmp_path / "z.hdf5"), {}, filters={})
    with pytest.raises(ValueError, match=r"z\.hdf5: the dataset is empty \(no demos in data/\)"):
        load_robomimic_hdf5(p)
    p = _write(str(tmp_path / "nomask.hdf5"), demos, filters={})
    with pytest.raises(ValueError, match="available: none, the file has no mask group"):
        load_robomimic_hdf5(p, filter_key="better")
    with h5py.File(str(tmp_path / "nodata.hdf5"), "w") as f:
        f.create_group("other")
    with pytest.raises(ValueError, match=r"nodata\.hdf5: missing group 'data'"):
        load_robomimic_hdf5(tmp_path / "nodata.hdf5")
    zero = {0: {**demos[0], "actions": np.zeros((0, ACT_DIM)), "rewards": np.zeros(0),
                "dones": np.zeros(0), "obs": {k: np.zeros((0, w)) for k, w in WIDTHS.items()},
                "next_obs": {k: np.zeros((0, w)) for k, w in WIDTHS.items()}}}
    p = _write(str(tmp_path / "zero.hdf5"), zero, filters={})
    with pytest.raises(ValueError, match=r"zero\.hdf5: /data/demo_0 is empty \(0 steps\)"):
        load_robomimic_hdf5(p)
