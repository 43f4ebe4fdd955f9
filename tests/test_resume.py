"""Exact resume after SIGKILL, save on SIGTERM, and the failure messages of issue 6.

The runs are real subprocesses (``tests/tiny_run.py``) sharing a persistent compilation
cache, so the second and third processes reuse the first one's executables."""

import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from PIL import Image
from tiny_run import tiny_argv

from tper_jit.cli import parse_args
from tper_jit.data.common import make_synthetic_dataset
from tper_jit.run import checkpoint, resume
from tper_jit.run.driver import Diverged
from tper_jit.run.train import train

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "tiny_run.py"
FLAGS = tiny_argv(online_steps=48, eval_interval=16, save_interval=20)
STEPS = [10, 20, 28, 36, 44, 52, 60, 68]  # 2 offline chunks, then 8 env steps per chunk


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("jax_cache")
    return {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(cache),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def _run(env, out, *flags, timeout=900):
    p = subprocess.run([sys.executable, str(SCRIPT), str(out), *flags], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    return p


def _rows(run_dir):
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("time/")}
            for line in (pathlib.Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def _run_dir(stdout):
    return pathlib.Path(stdout.split("RUN_DIR=")[1].split()[0])


def _wait_rows(path: pathlib.Path, n: int, proc, timeout: float = 600) -> int:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read()[-2000:]}")
        if path.exists():
            rows = [ln for ln in path.read_text().splitlines() if ln.endswith("}")]
            if len(rows) >= n:
                return len(rows)
        time.sleep(0.05)
    raise AssertionError("timed out waiting for metric rows")


def kill_after_rows(flags, save_dir, rows: int, env, pattern="**/metrics.jsonl"):
    """Start ``tiny_run.py`` with ``flags``, SIGKILL it once ``rows`` metric rows are written;
    returns ``(run_dir, rows seen)``."""
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(save_dir / "unused.npz"), *flags,
                             f"--save_dir={save_dir}"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = None
    while run_dir is None:
        found = list(save_dir.glob(pattern))
        run_dir = found[0].parent if found else None
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    seen = _wait_rows(run_dir / "metrics.jsonl", rows, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return run_dir, seen


@pytest.fixture(scope="module")
def uninterrupted(env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    p = _run(env, tmp / "params.npz", *FLAGS, f"--save_dir={tmp}")
    assert p.returncode == 0, p.stderr[-3000:]
    return _run_dir(p.stdout), np.load(tmp / "params.npz")


def test_sigkill_at_a_random_chunk_then_resume_is_bit_identical(env, uninterrupted, tmp_path):
    run_dir_a, params_a = uninterrupted
    rows_a = _rows(run_dir_a)
    assert [r["step"] for r in rows_a] == STEPS
    kill_after = int(np.random.default_rng(2026).integers(3, 7))  # rows 3..6: online phase
    run_dir, seen = kill_after_rows(FLAGS, tmp_path / "killed", kill_after, env,
                                    "Debug/reach/*/metrics.jsonl")
    assert seen < len(STEPS)
    p = _run(env, tmp_path / "params.npz", f"--resume={run_dir}", "--progress=False")
    assert p.returncode == 0, p.stderr[-3000:]
    restart = int(p.stdout.split("resumed ")[1].split(" at step ")[1].split()[0])
    assert restart < STEPS[-1]
    assert _rows(run_dir) == rows_a  # every logged metric, before and after the kill
    # the last curve holds the evaluations from before the kill too (same pixels)
    with Image.open(run_dir / "plots" / "curve.png") as b, \
            Image.open(run_dir_a / "plots" / "curve.png") as a:
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
    params_b = np.load(tmp_path / "params.npz")
    assert len(params_a.files) == len(params_b.files)
    for k in params_a.files:
        np.testing.assert_array_equal(params_a[k], params_b[k])


def test_sigterm_saves_then_exits(env, tmp_path):
    proc = subprocess.Popen([sys.executable, str(SCRIPT), str(tmp_path / "p.npz"), *FLAGS,
                             "--offline_steps=100000", "--online_steps=0",
                             "--save_interval=0", f"--save_dir={tmp_path}"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    while not list(tmp_path.glob("Debug/reach/*/metrics.jsonl")):
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    run_dir = next(tmp_path.glob("Debug/reach/*"))
    _wait_rows(run_dir / "metrics.jsonl", 2, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "SIGTERM received: state saved at step" in err
    step = int(err.split("state saved at step ")[1].split()[0])
    ckpt = checkpoint.RunCheckpointer(run_dir)
    try:
        assert ckpt.latest_step() == step  # --save_interval=0: only the signal saved
        assert ckpt.read_meta(step)["done"] == step
    finally:
        ckpt.close()
    assert _rows(run_dir)[-1]["step"] == step


# ---------------------------------------------------------------------------------------------
# Failure handling (in process, offline phase only)

OFFLINE = ["--env_name=reach", "--offline_steps=40", "--online_steps=0", "--log_interval=1",
           "--eval_interval=0", "--wandb=False", "--progress=False", "--save_interval=1",
           "--agent.hidden_dims=16", "--agent.batch_size=8", "--agent.flow_steps=2"]


@pytest.fixture(scope="module")
def data():
    return make_synthetic_dataset(15, n=200, episode_length=20, env_name="reach")


def test_non_finite_loss_stops_with_step_metric_and_last_good_checkpoint(data, tmp_path):
    cfg = parse_args([*OFFLINE, f"--save_dir={tmp_path}", "--agent.lr=1e30"])
    with pytest.raises(Diverged) as e:
        train(cfg, data)
    msg = str(e.value)
    step = int(msg.split("diverged at step ")[1].split()[0])
    assert "non-finite offline_agent/" in msg, msg
    run_dir = next(tmp_path.glob("Debug/reach/*"))
    ckpt = checkpoint.RunCheckpointer(run_dir)
    try:
        last = ckpt.latest_step()
    finally:
        ckpt.close()
    assert last == step - 1 and f"step {last}" in msg  # the bad state was not saved
    rows = _rows(run_dir)
    assert rows[-1]["step"] == step  # the bad row is logged for diagnosis


def test_unwritable_save_dir_is_reported(data, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cfg = parse_args([*OFFLINE, f"--save_dir={blocker}"])
    with pytest.raises(OSError, match="--save_dir: cannot create a writable run folder"):
        train(cfg, data)


FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
sys.path.insert(0, "tests")
import tiny_run
sys.exit(tiny_run.main(sys.argv[1:]))
"""


def test_full_disk_during_a_checkpoint_is_reported(env, tmp_path):
    # The state file is larger than the file-size limit: the write fails like a full disk.
    flags = [*OFFLINE, "--offline_steps=4", "--agent.hidden_dims=64,64",
             f"--save_dir={tmp_path}"]
    p = subprocess.run([sys.executable, "-c", FULL_DISK, str(tmp_path / "p.npz"),
                        *flags], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 2, p.stderr[-2000:]
    assert "checkpoint write" in p.stderr and "failed" in p.stderr, p.stderr[-2000:]
    assert not (tmp_path / "p.npz").exists()


def test_resume_refuses_a_different_config_naming_the_keys(data, tmp_path):
    cfg = parse_args([*OFFLINE, "--offline_steps=2", f"--save_dir={tmp_path}"])
    run_dir = train(cfg, data).run_dir
    with pytest.raises(ValueError, match=r"--horizon_length: run 5, now 3.*--seed: run 0, "):
        resume.config_from_run(run_dir, {"horizon_length": 3, "seed": 1, "progress": True})
    ok = resume.config_from_run(run_dir, {"progress": True})
    assert ok.resume == str(run_dir) and ok.offline_steps == 2
    with pytest.raises(ValueError, match="--agent.lr|agent"):
        resume.check_compatible(parse_args([*OFFLINE, "--offline_steps=2",
                                            f"--save_dir={tmp_path}", f"--resume={run_dir}",
                                            "--agent.lr=1e-3"]))
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        resume.config_from_run(tmp_path / "nope")


def test_resume_refuses_a_changed_dataset(data, tmp_path):
    stored = {"dataset": {"content_hash": "sha256:aaaa"}}
    changed = make_synthetic_dataset(15, n=200, episode_length=20, env_name="reach")
    changed = dataclasses.replace(
        changed, meta=dataclasses.replace(changed.meta, content_hash="sha256:bbbb"))
    with pytest.raises(ValueError, match="sha256:bbbb.*sha256:aaaa"):
        resume.check_dataset(tmp_path, stored, changed)


def test_bad_seed_flags_fail_before_anything_runs():
    with pytest.raises(ValueError, match="--num_seeds must be > 0"):
        parse_args(["--num_seeds=0"])
    with pytest.raises(ValueError, match="--save_interval must be >= 0"):
        parse_args(["--save_interval=-2"])  # -1 is QC's "never": read as 0


def test_unreachable_wandb_falls_back_to_offline_and_training_goes_on(data, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("TPER_WANDB_INIT_TIMEOUT", "10")
    cfg = parse_args([*OFFLINE, "--offline_steps=2", "--save_interval=0", "--wandb=True",
                      "--entity=nobody", f"--save_dir={tmp_path}"])
    result = train(cfg, data)
    assert [r["step"] for r in result.metrics] == [1, 2]
    assert list(result.run_dir.glob("wandb/offline-run-*")), "no offline wandb run written"


def test_a_run_folder_made_before_a_flag_existed_resumes(data, tmp_path):
    """config.json without a key that TrainConfig has since gained: the key takes its default
    and the run continues exactly; setting it to another value is refused, named."""
    flags = [*OFFLINE, "--offline_steps=4", "--log_interval=2", "--save_interval=2",
             f"--save_dir={tmp_path}"]
    full = train(parse_args(flags), data)
    rows = [{k: v for k, v in r.items() if not k.startswith("time/")} for r in full.metrics]
    run_dir = full.run_dir

    for d in ("resume", "checkpoints"):  # as if killed between the saves at steps 2 and 4
        shutil.rmtree(run_dir / d / "4")
    path = run_dir / "config.json"
    stored = json.loads(path.read_text())
    assert stored["config"].pop("offline_fraction") == 0.5  # "added after the run was made"
    path.write_text(json.dumps(stored))
    from tper_jit.cli import _resume_config

    argv = [f"--resume={run_dir}"]
    res = train(_resume_config(parse_args(argv), argv), data)
    again = [{k: v for k, v in r.items() if not k.startswith("time/")} for r in res.metrics]
    assert again == rows and len(rows) == 2
    assert all(np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(full.state.agent.params), jax.tree.leaves(res.state.agent.params),
        strict=True))
    with pytest.raises(ValueError, match=r"--offline_fraction: run 0.5, now 0.25"):
        resume.check_compatible(parse_args([*flags, f"--resume={run_dir}",
                                            "--offline_fraction=0.25"]))


# ---------------------------------------------------------------------------------------------
# --resume checks that run before any data is loaded (issue 19, cases 11-13)


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finished")
    cfg = parse_args([*OFFLINE, "--offline_steps=2", f"--save_dir={tmp}"])
    return train(cfg, data).run_dir


def _main_without_data(argv, capsys, monkeypatch, tmp_path):
    """``tper-train`` with an empty dataset cache: a check that ran after the data load would
    have generated reach's oracle dataset there."""
    from tper_jit.cli import main

    cache = tmp_path / "data_cache"
    monkeypatch.setenv("TPER_JIT_DATA", str(cache))
    rc = main(argv)
    assert not cache.exists() or not any(cache.iterdir())
    return rc, capsys.readouterr().err


def test_resume_of_a_complete_run_says_so(finished_run, capsys, monkeypatch, tmp_path):
    rc, err = _main_without_data([f"--resume={finished_run}"], capsys, monkeypatch, tmp_path)
    assert rc == 0 and "already complete" in err and "step 2" in err, err


def test_resume_accepts_an_agent_flag_given_again_with_its_stored_value(
        finished_run, capsys, monkeypatch, tmp_path):
    stored = json.loads((finished_run / "config.json").read_text())
    alpha = stored["agent"]["alpha"]  # the resolved default, not in the run's own flags
    assert "alpha" not in stored["config"]["agent"]
    rc, err = _main_without_data([f"--resume={finished_run}", f"--agent.alpha={alpha}"],
                                 capsys, monkeypatch, tmp_path)
    assert rc == 0 and "already complete" in err, err  # got past the config comparison
    rc, err = _main_without_data([f"--resume={finished_run}", f"--agent.alpha={alpha * 2}"],
                                 capsys, monkeypatch, tmp_path)
    assert rc == 2 and "--agent" in err and "differs" in err, err


def test_resume_without_a_complete_checkpoint_fails_before_the_data(
        finished_run, capsys, monkeypatch, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(finished_run, run)
    for step_dir in (run / "resume").iterdir():
        if step_dir.name.isdigit():
            shutil.rmtree(step_dir)
    rc, err = _main_without_data([f"--resume={run}"], capsys, monkeypatch, tmp_path)
    assert rc == 2 and "no complete checkpoint" in err, err
    assert len([x for x in err.splitlines() if x.strip()]) == 1


def test_cluster_k_above_the_episode_count_is_lowered_and_said_once(tmp_path, capsys):
    few = make_synthetic_dataset(15, n=200, episode_length=20, env_name="reach")  # 10 eps
    cfg = parse_args([*OFFLINE, "--offline_steps=1", "--save_interval=0",
                      "--cluster_sampler=True", "--cluster_k=50", f"--save_dir={tmp_path}"])
    res = train(cfg, few)
    out = capsys.readouterr().out
    notes = [x for x in out.splitlines() if "--cluster_k=50" in x]
    assert len(notes) == 1 and "10 offline episodes" in notes[0], out
    clusters = json.loads((res.run_dir / "config.json").read_text())["clusters"]
    assert clusters["requested_k"] == 50 and 1 <= clusters["k"] <= 10
    assert f"K = {clusters['k']} is used" in notes[0]
