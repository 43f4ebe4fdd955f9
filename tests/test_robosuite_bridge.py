"""robosuite envs through the host-env bridge (the optional ``robosuite`` extra).

Routing and the note printed without robosuite run everywhere; the env tests need robosuite
1.4.1 (+ mujoco 3.3.7) and are skipped where it is not installed (the main environment): they
write a tiny robomimic-format Lift file from real robosuite rollouts and check that the bridge's
observations are the loader's rows, the chunk semantics, and reset determinism.
"""

from __future__ import annotations

import io
import json

import h5py
import numpy as np
import pytest

from tper_jit.data import DEFAULT_LOW_DIM_KEYS, load_robomimic_hdf5
from tper_jit.tasks import host_env, robosuite_env
from tper_jit.tasks.host_env import reset_seed
from tper_jit.tasks.resolve import resolve

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

# robosuite 1.4.1's load_controller_config(default_controller="OSC_POSE")
OSC_POSE = {"type": "OSC_POSE", "input_max": 1, "input_min": -1,
            "output_max": [0.05, 0.05, 0.05, 0.5, 0.5, 0.5],
            "output_min": [-0.05, -0.05, -0.05, -0.5, -0.5, -0.5], "kp": 150,
            "damping_ratio": 1, "impedance_mode": "fixed", "kp_limits": [0, 300],
            "damping_ratio_limits": [0, 10], "position_limits": None,
            "orientation_limits": None, "uncouple_pos_ori": True, "control_delta": True,
            "interpolation": None, "ramp_ratio": 0.2}
# The env_args robomimic stores for its Lift datasets (robots, controller, flags).
LIFT_ENV_ARGS = {"env_name": "Lift", "type": 1, "env_kwargs": {
    "has_renderer": False, "has_offscreen_renderer": True, "ignore_done": True,
    "use_object_obs": True, "use_camera_obs": False, "control_freq": 20,
    "controller_configs": OSC_POSE, "robots": ["Panda"], "camera_depths": False,
    "camera_heights": 84, "camera_widths": 84, "reward_shaping": False}}
WIDTHS = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "object": 10}
OBS_DIM, ACT_DIM = sum(WIDTHS.values()), 7
NAME = "lift-ph-low_dim"


def _write(path, demos: list[dict], env_args: dict) -> str:
    """robomimic layout: ``demos[i]`` = {obs/next_obs: {key: (T, d)}, actions, rewards}."""
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["total"] = sum(len(d["actions"]) for d in demos)
        data.attrs["env_args"] = json.dumps(env_args)
        for i, d in enumerate(demos):
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = len(d["actions"])
            for grp in ("obs", "next_obs"):
                for k, v in d[grp].items():
                    g.create_dataset(f"{grp}/{k}", data=v)
            g.create_dataset("actions", data=d["actions"])
            g.create_dataset("rewards", data=d["rewards"])
            g.create_dataset("dones", data=d["rewards"].astype(np.int64))
    return str(path)


def _random_demos(n: int = 2, t: int = 5) -> list[dict]:
    rng = np.random.default_rng(0)
    demos = []
    for _ in range(n):
        obs = {k: rng.normal(size=(t + 1, w)) for k, w in WIDTHS.items()}
        demos.append({"obs": {k: v[:-1] for k, v in obs.items()},
                      "next_obs": {k: v[1:] for k, v in obs.items()},
                      "actions": rng.uniform(-1, 1, (t, ACT_DIM)), "rewards": np.zeros(t)})
    return demos


# ---------------------------------------------------------------- everywhere (no robosuite)

def test_routing(tmp_path):
    lift = _write(tmp_path / "lift.hdf5", _random_demos(), LIFT_ENV_ARGS)
    mjx = _write(tmp_path / "mjx.hdf5", _random_demos(),
                 {"env_name": "lift", "type": "envs_mjx", "env_kwargs": {}})
    og = "cube-single-play-singletask-task1-v0"
    assert resolve(og, None, robosuite_ok=False).simulator == "ogbench-host"
    # robomimic names: their file's env_args, or (file missing) robosuite by name
    for name, path in ((NAME, None), ("square-mh-low", str(tmp_path / "missing.hdf5")),
                       ("transport-ph-low_dim", None), ("can-mh-low", lift), ("my-lift", lift)):
        assert robosuite_env.is_robosuite_task(name, path)
        assert resolve(name, path, robosuite_ok=True).simulator == "robosuite-host"
        task = resolve(name, path, robosuite_ok=False)
        note = task.note
        assert task.simulator == "none" and "robosuite==1.4.1" in note and "mujoco==3.3.7" in note
        assert "pip install" in note and "skipped" in note
    # Not robosuite: the MJX tasks' own hdf5 files, image datasets, npz, unreadable files.
    bad = tmp_path / "bad.hdf5"
    bad.write_text("not hdf5")
    for name, path in (("lift", mjx), ("my-lift", mjx), ("lift-ph-low", mjx),
                       ("lift-ph-low", str(bad)), ("lift-ph-image", None),
                       ("my-lift", str(tmp_path / "missing.hdf5")),
                       ("cube-single-singletask-task1", str(tmp_path / "x.npz"))):
        assert not robosuite_env.is_robosuite_task(name, path)
        assert resolve(name, path, robosuite_ok=True).simulator in ("mjx", "none")
    # a name of no known kind and no file to read is refused (one line, closest names)
    assert not robosuite_env.is_robosuite_task("my-lift", None)
    with pytest.raises(ValueError, match="'my-lift' is not a known task.*did you mean"):
        resolve("my-lift", None, robosuite_ok=True)
    assert robosuite_env.dataset_path_of(NAME, None).endswith("lift/ph/low_dim_v15.hdf5")
    assert robosuite_env.dataset_path_of("my-lift", lift) == lift


def test_env_args_limits_kwargs_obs_order(tmp_path):
    path = _write(tmp_path / "lift.hdf5", _random_demos(), LIFT_ENV_ARGS)
    args = robosuite_env.read_env_args(path)
    assert args == json.loads(json.dumps(LIFT_ENV_ARGS))
    assert robosuite_env.episode_limit_of(NAME, args) == 300
    assert robosuite_env.episode_limit_of("square-mh-low", {}) == 400
    assert robosuite_env.episode_limit_of("x", {"env_name": "TwoArmTransport"}) == 800
    assert robosuite_env.episode_limit_of("x", {"env_kwargs": {"horizon": 77}}) == 77
    kw = robosuite_env.robosuite_kwargs(args)
    assert kw["has_offscreen_renderer"] is False and kw["use_camera_obs"] is False
    assert kw["use_object_obs"] and kw["ignore_done"] and kw["robots"] == ["Panda"]
    obs = {"robot0_eef_pos": [1, 2, 3], "robot0_eef_quat": [4, 5, 6, 7], "other": [0.0],
           "robot0_gripper_qpos": [8, 9], "object-state": np.arange(10, 20)}
    flat = robosuite_env.flat_obs(obs, DEFAULT_LOW_DIM_KEYS)
    assert flat.dtype == np.float32
    np.testing.assert_array_equal(flat, np.arange(1, 20))


def test_train_without_robosuite_prints_the_note_and_runs_offline(tmp_path, monkeypatch):
    from tper_jit.cli import parse_args
    from tper_jit.run.train import train

    monkeypatch.setattr(robosuite_env, "robosuite_available", lambda: False)
    path = _write(tmp_path / "lift.hdf5", _random_demos(n=4), LIFT_ENV_ARGS)
    argv = [f"--env_name={NAME}", f"--dataset_path={path}", "--offline_steps=0",
            "--online_steps=100", f"--save_dir={tmp_path / 'runs'}", "--wandb=False",
            "--progress=False", "--agent.hidden_dims=8", "--agent.batch_size=4"]
    out = io.StringIO()
    res = train(parse_args(argv), out=out)
    text = out.getvalue()
    assert text.count("robosuite extra") == 1 and "pip install -e '.[robosuite]'" in text
    assert "0 online env steps" in text and res.metrics == []


# ---------------------------------------------------------------- with robosuite 1.4.1

@pytest.fixture(scope="module")
def lift_file(tmp_path_factory):
    """Two Lift demos of 6 random actions, recorded with robosuite directly (not through the
    bridge): demo i starts from the reset the bridge's env i does first with seed 0."""
    robosuite = pytest.importorskip("robosuite")
    kw = dict(LIFT_ENV_ARGS["env_kwargs"], has_offscreen_renderer=False)
    env = robosuite.make("Lift", **kw)
    rng = np.random.default_rng(1)
    demos = []
    for i in range(2):
        np.random.seed(reset_seed(0, i, 0))
        frames = [env.reset()]
        actions = rng.uniform(-0.9, 0.9, (6, ACT_DIM))
        for a in actions:
            frames.append(env.step(a)[0])
        obs = {k: np.stack([f["object-state" if k == "object" else k] for f in frames])
               for k in WIDTHS}
        demos.append({"obs": {k: v[:-1] for k, v in obs.items()},
                      "next_obs": {k: v[1:] for k, v in obs.items()},
                      "actions": actions, "rewards": np.zeros(6)})
    env.close()
    return _write(tmp_path_factory.mktemp("rs") / "lift.hdf5", demos, LIFT_ENV_ARGS)


@pytest.fixture(scope="module")
def venv(lift_file):
    v = host_env.HostVecEnv("my-lift", 2, seed=0, dataset_path=lift_file)
    yield v
    v.close()


def test_bridge_obs_are_the_loader_rows(venv, lift_file):
    ds = load_robomimic_hdf5(lift_file, clip=False, compute_hash=False)
    assert venv.env_id == "robosuite:Lift"
    assert (venv.episode.observation_size, venv.episode.action_size) == (OBS_DIM, ACT_DIM)
    assert venv.episode.episode_length == 300 and ds.obs_dim == OBS_DIM
    obs = venv.reset(seed=0)
    rows = np.asarray(ds.observations).reshape(2, 6, OBS_DIM)
    np.testing.assert_allclose(obs, rows[:, 0], rtol=0, atol=1e-6)
    tr = venv.step_chunk(np.asarray(ds.actions).reshape(2, 6, ACT_DIM))
    assert tr.valid.all() and not (tr.terminated | tr.truncated | tr.success).any()
    np.testing.assert_allclose(tr.obs, rows, atol=1e-5)
    np.testing.assert_allclose(tr.next_obs, np.asarray(ds.next_observations).reshape(
        2, 6, OBS_DIM), atol=1e-5)
    np.testing.assert_array_equal(tr.reward, 0.0)


def test_chunk_semantics(venv, monkeypatch):
    for e in venv.envs:
        monkeypatch.setattr(e, "max_episode_steps", 4)
    # env 1: every state is a success, so its episodes terminate after one step.
    monkeypatch.setattr(venv.envs[1].env, "_check_success", lambda: True)
    venv.reset(seed=3)
    a = np.random.default_rng(0).uniform(-1, 1, (2, 3, ACT_DIM))
    t1 = venv.step_chunk(a)
    np.testing.assert_array_equal(t1.valid, [[1, 1, 1], [1, 0, 0]])
    np.testing.assert_array_equal(t1.terminated, [[0, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(t1.success, t1.terminated)
    np.testing.assert_array_equal(t1.reward, t1.terminated.astype(np.float32))
    assert not t1.truncated.any()
    assert (t1.obs[1, 1:] == 0).all() and (t1.next_obs[1, 1:] == 0).all()
    # the terminal observation is kept; env 1 was reset (a new episode) for the next chunk
    assert not np.allclose(t1.next_obs[1, 0], venv.obs[1])
    assert venv.resets.tolist() == [1, 2]
    t2 = venv.step_chunk(a, active=np.array([True, False]))
    np.testing.assert_array_equal(t2.valid, [[1, 0, 0], [0, 0, 0]])  # 4th step: time limit
    np.testing.assert_array_equal(t2.truncated, [[1, 0, 0], [0, 0, 0]])
    assert not t2.terminated.any() and venv.resets.tolist() == [2, 2]


def test_reset_determinism(venv):
    a = np.random.default_rng(2).uniform(-1, 1, (2, 2, ACT_DIM))
    first = venv.reset(seed=11)
    t1 = venv.step_chunk(a)
    again = venv.reset(seed=11)
    t2 = venv.step_chunk(a)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(t1.next_obs, t2.next_obs)
    assert not np.allclose(venv.reset(seed=12), first)
    assert not np.allclose(first[0], first[1])  # envs draw their own resets
    state = np.random.get_state()[1].copy()
    venv.reset(seed=13)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global rng restored


def test_train_offline_then_online_through_robosuite(lift_file, tmp_path):
    """Offline → online through ``train()`` on the tiny Lift file: N = 2 robosuite envs, H = 5,
    one host evaluation episode per phase end; the online rewards carry the loader's −1."""
    from tper_jit.cli import parse_args
    from tper_jit.run.train import train

    flags = {"env_name": NAME, "dataset_path": lift_file, "offline_steps": 10,
             "online_steps": 100, "log_interval": 50, "num_envs": 2, "horizon_length": 5,
             "eval_interval": 1000, "eval_episodes": 1, "start_training": 20,
             "buffer_size": 700, "use_ptr_backward": True, "use_ptr_online_priority": True,
             "ptr_warmup_steps": 10, "save_dir": tmp_path, "wandb": False,
             "progress": False}
    argv = [f"--{k}={v}" for k, v in flags.items()]
    argv += ["--agent.hidden_dims=16", "--agent.batch_size=8", "--agent.flow_steps=2"]
    res = train(parse_args(argv))
    rows = [json.loads(line) for line in (res.run_dir / "metrics.jsonl").open()]
    online = [r for r in rows if "env/env_steps" in r]
    assert [r["env/env_steps"] for r in online] == [50.0, 100.0]
    for r in (rows[0], online[-1]):  # evaluations at the end of each phase: one full episode
        assert r["eval/episode.length"] == 300 and "eval/success_rate" in r
    st = res.state.replay.store
    cursor = np.asarray(st.streams.cursor)
    assert int(res.state.env_steps) == 100 == int(cursor.sum())
    rewards = np.asarray(st.online.rewards).reshape(2, -1)
    for s in range(2):  # random actions never lift the cube: every online reward is 0 − 1
        np.testing.assert_array_equal(rewards[s, :cursor[s]], -1.0)
