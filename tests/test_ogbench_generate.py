"""``tper-generate --source ogbench``: files from ogbench's envs + oracles open in ogbench and in
our loader, have the published schema, do not depend on ``--workers``, and the oracle does the
task; bad flags fail before any work and nothing partial is left behind."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

ogbench = pytest.importorskip("ogbench")
pytest.importorskip("gymnasium")

from envs_mjx import generate, ogbench_generate  # noqa: E402
from envs_mjx.ogbench_generate import OGBenchGenConfig  # noqa: E402
from tper_jit.data import load_dataset, load_ogbench, load_ogbench_npz  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning",
                                        "ignore::DeprecationWarning")

STEPS = 150  # rows per episode here (the default and the published value: 1001)
# (env, type, obs dim, nq, nv, buttons)
SCHEMAS = {"cube-single": (28, 21, 20, 0), "cube-double": (37, 28, 26, 0),
           "puzzle-3x3": (55, 23, 23, 9), "scene": (40, 25, 24, 2)}


def _cli(*args: str) -> dict:
    """Run ``tper-generate --source ogbench ...``; returns its printed JSON."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        generate.main(["--source", "ogbench", "--quiet", *args])
    return json.loads(buf.getvalue())


@pytest.fixture(scope="module")
def cube_play(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("w1")
    res = _cli("--env", "cube-single", "--type", "play", "--episodes", "3", "--val-episodes",
               "1", "--max-steps", str(STEPS), "--seed", "3", "--out", str(out))
    return res


@pytest.fixture(scope="module", params=["cube-double:noisy", "puzzle-3x3:play", "scene:play"])
def other(request, tmp_path_factory) -> tuple[str, str, dict]:
    env, typ = request.param.split(":")
    out = tmp_path_factory.mktemp(env)
    return env, typ, _cli("--env", env, "--type", typ, "--episodes", "2", "--val-episodes", "1",
                          "--max-steps", "60", "--out", str(out))


def _check_schema(path: str, env: str, n_eps: int, steps: int) -> None:
    obs, nq, nv, nb = SCHEMAS[env]
    m = n_eps * steps
    keys = ["observations", "actions", "terminals", "qpos", "qvel"]
    keys += ["button_states"] * (nb > 0)
    with np.load(path) as f:
        assert list(f.keys()) == keys
        want = {"observations": ((m, obs), np.float32), "actions": ((m, 5), np.float32),
                "terminals": ((m,), np.bool_), "qpos": ((m, nq), np.float32),
                "qvel": ((m, nv), np.float32), "button_states": ((m, nb), np.int64)}
        for k in keys:
            assert (f[k].shape, f[k].dtype) == want[k], k
        # one episode per `steps` rows, ended by the time limit only
        np.testing.assert_array_equal(np.flatnonzero(f["terminals"]),
                                      np.arange(1, n_eps + 1) * steps - 1)
        assert np.abs(f["actions"]).max() <= 1.0 and np.isfinite(f["observations"]).all()


def _check_both_loaders(paths: dict, dataset_name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, train, val = ogbench.make_env_and_datasets(dataset_name, dataset_path=paths["npz"])
    for path, ref in ((paths["npz"], train), (paths["val_npz"], val)):
        ours = load_ogbench_npz(path, env_name=dataset_name, clip=False)
        for k in ("observations", "next_observations", "actions", "terminals"):
            np.testing.assert_array_equal(getattr(ours, k), ref[k], err_msg=k)
    via = load_dataset(dataset_name, dataset_path=paths["npz"])
    np.testing.assert_array_equal(via.observations, train["observations"])


def test_cube_single_play_files(cube_play):
    paths = cube_play["paths"]
    assert cube_play["dataset"] == "cube-single-play-v0"
    assert os.path.basename(paths["npz"]) == "cube-single-play-v0.npz"
    assert os.path.basename(paths["val_npz"]) == "cube-single-play-v0-val.npz"
    _check_schema(paths["npz"], "cube-single", 3, STEPS)
    _check_schema(paths["val_npz"], "cube-single", 1, STEPS)
    _check_both_loaders(paths, "cube-single-play-v0")
    leftovers = [f for f in os.listdir(os.path.dirname(paths["npz"])) if "tmp" in f]
    assert not leftovers


def test_other_envs_and_types(other):
    env, typ, res = other
    assert res["dataset"] == f"{env}-{typ}-v0"
    _check_schema(res["paths"]["npz"], env, 2, 60)
    _check_schema(res["paths"]["val_npz"], env, 1, 60)
    _check_both_loaders(res["paths"], res["dataset"])


def test_oracle_does_the_task(cube_play):
    """The plan oracle reaches its targets, the cube moves, and the singletask relabelling of
    the generated data (ours == ogbench's) is well formed."""
    s = cube_play["summary"]
    assert s["episodes"] == 4 and s["rows"] == 4 * STEPS
    assert s["episodes_with_success"] > 0 and s["successes_per_episode"] >= 1
    path = cube_play["paths"]["npz"]
    with np.load(path) as f:
        cube_xyz = f["qpos"][:, 14:17].reshape(3, STEPS, 3)
    moved = np.linalg.norm(cube_xyz - cube_xyz[:, :1], axis=-1).max(axis=1)
    assert (moved > 0.04).sum() >= 2, moved  # the cube is carried, not just nudged
    assert (cube_xyz[..., 2].max(axis=1) > 0.04).any()  # and lifted off the table
    name = "cube-single-play-singletask-task1-v0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, ref, _ = ogbench.make_env_and_datasets(name, dataset_path=path)
    ds = load_ogbench(name, dataset_path=path)
    np.testing.assert_array_equal(ds.rewards, ref["rewards"])
    np.testing.assert_array_equal(ds.masks, ref["masks"])
    assert set(np.unique(ds.rewards)) <= {-1.0, 0.0}


def test_workers_and_seed_determinism(cube_play, tmp_path):
    """workers=2 (spawned processes) writes the same files as workers=1 (noisy: Markov oracle,
    Gaussian noise and random actions); another seed gives other episodes."""
    args = ["--env", "puzzle-3x3", "--type", "noisy", "--episodes", "3", "--val-episodes", "1",
            "--max-steps", "60", "--seed", "5"]
    one = _cli(*args, "--workers", "1", "--out", str(tmp_path / "w1"))
    two = _cli(*args, "--workers", "2", "--out", str(tmp_path / "w2"))
    assert two["summary"]["workers"] == 2
    for key in ("npz", "val_npz"):
        with np.load(one["paths"][key]) as a, np.load(two["paths"][key]) as b:
            assert list(a.keys()) == list(b.keys())
            for k in a.keys():
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    cfg = OGBenchGenConfig("cube-single", "play", episodes=1, val_episodes=1, seed=4,
                           max_steps=20)
    eps = ogbench_generate.generate_episodes(cfg, progress=False)
    with np.load(cube_play["paths"]["npz"]) as a:
        assert not np.array_equal(eps[0]["observations"], a["observations"][:20])


@pytest.mark.parametrize("env, typ", [("puzzle-3x3", "noisy"), ("cube-single", "noisy"),
                                      ("cube-double", "play")])
def test_episode_index_fixes_the_episode(env, typ):
    """Episode i is the same whether generated first or after others (per-episode seeds)."""
    cfg = OGBenchGenConfig(env, typ, episodes=2, val_episodes=1, max_steps=30)
    env, agents = ogbench_generate.make_env_and_oracles(cfg)
    a = ogbench_generate.run_episode(env, agents, cfg, 2)
    ogbench_generate.run_episode(env, agents, cfg, 0)
    b = ogbench_generate.run_episode(env, agents, cfg, 2)
    env.close()
    for k in ("observations", "actions", "qpos", "qvel"):
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("args, match", [
    (["--env", "cube-sextuple"], "argument --env: invalid choice: 'cube-sextuple'"),
    (["--env", "cube-single", "--type", "expert"], "argument --type: invalid choice: 'expert'"),
    (["--env", "cube-single", "--episodes", "0"], "--episodes must be >= 1"),
    (["--env", "cube-single", "--val-episodes", "0"], "--val-episodes must be >= 1"),
    (["--env", "cube-single", "--workers", "0"], "--workers must be >= 1"),
    (["--env", "cube-single", "--max-steps", "1"], "--max-steps must be >= 2"),
    (["--env", "cube-single", "--p-random-action", "1.5"], "--p-random-action must be in"),
    (["--type", "play"], "the following arguments are required: --env"),
])
def test_bad_flags(args, match, capsys, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        generate.main(["--source", "ogbench", *args, "--out", str(out)])
    assert e.value.code == 2
    assert match in capsys.readouterr().err
    assert not out.exists() or not os.listdir(out)


def test_bad_source_and_out(capsys, tmp_path):
    with pytest.raises(SystemExit):
        generate.main(["--source", "gym", "--env", "cube-single"])
    assert "argument --source: invalid choice: 'gym'" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit):
        generate.main(["--source", "ogbench", "--env", "cube-single", "--out", str(blocker)])
    assert "--out: cannot create" in capsys.readouterr().err


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    cfg = OGBenchGenConfig("cube-single", "play", episodes=1, val_episodes=1, max_steps=5)
    eps = ogbench_generate.generate_episodes(cfg, progress=False)
    calls = []
    real = np.savez_compressed

    def fail_second(f, **arrays):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        real(f, **arrays)

    monkeypatch.setattr(np, "savez_compressed", fail_second)
    with pytest.raises(OSError, match="disk full"):
        ogbench_generate.write_dataset(cfg, str(tmp_path), eps)
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(np, "savez_compressed", real)
    paths = ogbench_generate.write_dataset(cfg, str(tmp_path), eps)
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths.values())


def test_defaults_are_published_procedure():
    p = ogbench_generate.build_parser()
    a = p.parse_args(["--env", "cube-single"])
    assert (a.max_steps, a.episodes, a.dataset_type, a.noise) == (1001, 1000, "play", 0.1)
    noisy = OGBenchGenConfig("puzzle-3x3", "noisy", 1, 1)
    assert noisy.random_action_prob == 0.2 and noisy.dataset_name == "puzzle-3x3-noisy-v0"
    assert OGBenchGenConfig("cube-double", "noisy", 1, 1).random_action_prob == 0.1
    assert OGBenchGenConfig("cube-double", "play", 1, 1).random_action_prob == 0.0


def test_console_script_exit_status(tmp_path):
    """``tper-generate`` as installed: ``sys.exit(<entry>(...))`` must mean success (0), so
    that ``tper-generate ... && tper-train ...`` chains; the entry once returned the paths
    dict, which a console script turns into exit status 1."""
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "tper-generate"]
    fn = ep.load()
    status = fn(["--source", "ogbench", "--env", "cube-single", "--episodes", "1",
                 "--val-episodes", "1", "--max-steps", "20", "--quiet", "--out", str(tmp_path)])
    assert status == 0
    assert (tmp_path / "cube-single-play-v0.npz").is_file()
    proc = subprocess.run([sys.executable, "-m", "envs_mjx.generate", "--source", "ogbench",
                           "--env", "cube-single", "--episodes", "1", "--val-episodes", "1",
                           "--max-steps", "20", "--quiet", "--out", str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
