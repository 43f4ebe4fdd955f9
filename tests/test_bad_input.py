"""Bad input gets one line naming the flag / file / array, exit code 2, and nothing on disk:
corrupt arrays inside readable npz / hdf5 files, presets that raise, out-of-range numbers,
non-finite floats, misspelt task names, a wrong observation width offline, episodes shorter
than the chunk (issue 19's cases 1-5 and 7-10)."""

from __future__ import annotations

import json
import pathlib
import zipfile

import h5py
import numpy as np
import pytest

from tper_jit.cli import main


def _fails(capsys, save: pathlib.Path, argv: list[str], *words: str) -> str:
    rc = main([*argv, f"--save_dir={save}", "--wandb=False", "--progress=False"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("tper-train: error: "), err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not save.exists() or not any(save.rglob("*")), list(save.rglob("*"))
    return lines[0]


def _ogbench_npz(path: pathlib.Path, width: int = 28) -> pathlib.Path:
    rng = np.random.default_rng(0)
    n = 40
    np.savez(path, observations=rng.normal(size=(n, width)).astype(np.float32),
             actions=rng.uniform(-0.5, 0.5, size=(n, 5)).astype(np.float32),
             terminals=np.tile(np.arange(10) == 9, 4), qpos=rng.normal(size=(n, 19)))
    return path


def _flip_inside_member(path: pathlib.Path, member: str) -> None:
    """Flip one byte in the middle of ``member``'s data: headers stay readable, the CRC
    check fails when the array is read."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    raw = bytearray(path.read_bytes())
    # local header: 30 bytes + name + extra, then the (stored) data
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_corrupt_array_inside_an_npz(tmp_path, capsys):
    p = _ogbench_npz(tmp_path / "cube.npz")
    _flip_inside_member(p, "observations.npy")
    _fails(capsys, tmp_path / "runs", ["--env_name=cube-single-play-singletask-task1-v0",
                                       f"--dataset_path={p}", "--offline_steps=1"],
           str(p), "`observations`", "unreadable")


def test_ogbench_name_with_the_wrong_observation_width_offline_only(tmp_path, capsys):
    p = _ogbench_npz(tmp_path / "cube27.npz", width=27)
    _fails(capsys, tmp_path / "runs", ["--env_name=cube-single-play-singletask-task1-v0",
                                       f"--dataset_path={p}", "--online_steps=0",
                                       "--eval_interval=0"],
           str(p), "observation dim 27", "(28)")


def _robomimic_file(path: pathlib.Path) -> pathlib.Path:
    rng = np.random.default_rng(0)
    widths = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2,
              "object": 14}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "NutAssemblySquare", "type": 1,
                                             "env_kwargs": {}})
        for i in range(3):
            t = 50
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = t
            g.create_dataset("actions", data=rng.uniform(-1, 1, (t, 7)))
            g.create_dataset("rewards", data=np.eye(t)[-1])
            g.create_dataset("dones", data=np.eye(t)[-1])
            for grp in ("obs", "next_obs"):
                for k, w in widths.items():
                    # compressed chunks: a corrupt one fails only when it is decompressed
                    g.create_dataset(f"{grp}/{k}", data=rng.normal(size=(t, w)),
                                     compression="gzip", chunks=(t, w))
    return path


def test_corrupt_compressed_chunk_inside_an_hdf5(tmp_path, capsys):
    p = _robomimic_file(tmp_path / "square.hdf5")
    with h5py.File(p, "r") as f:
        info = f["data/demo_1/obs/object"].id.get_chunk_info(0)
    raw = bytearray(p.read_bytes())
    for k in range(8):
        raw[info.byte_offset + info.size // 2 + k] ^= 0xFF
    p.write_bytes(bytes(raw))
    _fails(capsys, tmp_path / "runs", ["--env_name=square-mh-low", f"--dataset_path={p}",
                                       "--offline_steps=1", "--online_steps=0"],
           str(p), "/data/demo_1/obs/object", "unreadable")


@pytest.mark.parametrize("body,words", [
    ("def get_config():\n    raise RuntimeError('boom')\n", ["RuntimeError: boom"]),
    ("import no_such_module_here\n", ["failed to load", "ModuleNotFoundError"]),
    ("def get_config(:\n", ["failed to load", "SyntaxError"]),
    ("def get_config():\n    raise ValueError('bad K')\n", ["ValueError: bad K"]),
    ("def get_config():\n    return {'offline_step': 3}\n", ["--offline_step;",
                                                              "did you mean --offline_steps"]),
])
def test_presets_that_fail_are_named(tmp_path, capsys, body, words):
    preset = tmp_path / "my_preset.py"
    preset.write_text(body)
    _fails(capsys, tmp_path / "runs", [f"--config={preset}"], f"--config {preset}", *words)


@pytest.mark.parametrize("flag,words", [
    ("--offline_steps=1e400", ["--offline_steps", "out of range"]),
    ("--seed=1e30", ["--seed must be in [0, 2**32"]),
    ("--seed=-1", ["--seed must be in"]),
    ("--agent.alpha=inf", ["--agent.alpha must be a finite number", "inf"]),
    ("--agent.lr=nan", ["--agent.lr must be a finite number"]),
    ("--discount=nan", ["--discount must be a finite number"]),
])
def test_numbers_out_of_range_or_not_finite(tmp_path, capsys, flag, words):
    _fails(capsys, tmp_path / "runs", ["--env_name=reach", flag], *words)


def test_non_finite_float_from_a_preset(tmp_path, capsys):
    preset = tmp_path / "p.py"
    preset.write_text("def get_config():\n    return {'agent': {'alpha': float('inf')}}\n")
    _fails(capsys, tmp_path / "runs", [f"--config={preset}"], "--agent.alpha", "finite")


@pytest.mark.parametrize("name,words", [
    ("lfit", ["--env_name='lfit' is not a known task", "MJX task", "OGBench", "robomimic",
              "did you mean lift"]),
    ("cube-singel", ["did you mean cube-single"]),
    ("lift-xh-low_dim", ["--env_name", "unknown dataset type 'xh'"]),
])
def test_misspelt_task_names(tmp_path, capsys, name, words):
    _fails(capsys, tmp_path / "runs", [f"--env_name={name}"], *words)


def test_misspelt_robomimic_name_with_a_file_is_refused(tmp_path, capsys):
    p = _robomimic_file(tmp_path / "lift.hdf5")
    _fails(capsys, tmp_path / "runs", ["--env_name=lift-xh-low_dim", f"--dataset_path={p}"],
           "unknown dataset type 'xh'")


def test_episodes_shorter_than_the_chunk_fail_before_the_run_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 40  # 10 episodes of 4 rows: 3 transitions each, shorter than H = 5
    p = tmp_path / "reach-short.npz"
    np.savez(p, observations=rng.normal(size=(n, 15)).astype(np.float32),
             actions=rng.uniform(-1, 1, (n, 5)).astype(np.float32),
             terminals=np.tile(np.arange(4) == 3, 10), rewards=np.zeros(n, np.float32),
             masks=np.ones(n, np.float32), successes=np.zeros(n, np.float32))
    _fails(capsys, tmp_path / "runs", ["--env_name=reach", f"--dataset_path={p}",
                                       "--horizon_length=5", "--online_steps=0"],
           str(p), "every episode is shorter than --horizon_length=5", "longest has 3 steps")


def test_generated_robomimic_schema_file_loads_under_a_robomimic_name(tmp_path):
    """The hdf5 ``tper-generate --env lift`` writes names its observation keys in
    ``env_args['obs_keys']``; the robomimic loader reads those instead of robosuite's."""
    from envs_mjx import datasets as env_datasets
    from envs_mjx import registry
    from tper_jit.cli import parse_args
    from tper_jit.tasks.datasets import load_dataset

    env = registry.make("lift")
    rng = np.random.default_rng(0)
    eps = []
    for _ in range(3):
        n = 12
        eps.append(dict(obs=rng.normal(size=(n + 1, 19)), actions=rng.uniform(-1, 1, (n, 5)),
                        rewards=np.eye(n)[-1], qpos=rng.normal(size=(n + 1, 13)),
                        qvel=rng.normal(size=(n + 1, 12)), strategy=0, tier=0, fail_mode=0,
                        success=np.eye(n + 1)[-1].astype(bool)))
    meta = {"env_name": "lift", "type": "envs_mjx", "obs_keys": [k for k, _ in env.obs_layout()]}
    path = tmp_path / "lift-oracle.hdf5"
    env_datasets.write_robomimic_hdf5(str(path), eps, env.obs_layout(), meta, env.xml, set())
    cfg = parse_args(["--env_name=lift-mh-low_dim", f"--dataset_path={path}"])
    ds = load_dataset(cfg)
    assert ds.obs_dim == 19 and len(ds) == 36
    np.testing.assert_allclose(ds.observations[:12], eps[0]["obs"][:12], rtol=1e-6)
