"""Host envs in worker processes (``HostVecEnv(..., workers=W)``): the same transitions, infos
and reset counters as in-process stepping, ``map_envs`` in env order, and clear failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("ogbench")
pytest.importorskip("gymnasium")

from tper_jit.config.flags import TrainConfig, parse_args  # noqa: E402
from tper_jit.tasks.env_workers import EnvWorkerError, split_ranges, workers_for  # noqa: E402
from tper_jit.tasks.host_env import HostVecEnv  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

NAME = "cube-single-play-singletask-task1-v0"
N, H, LIMIT = 4, 5, 12  # 12 = 2·5 + 2: every third chunk ends an episode at sub-step 1
# ogbench's task reset walks the scene into its goal with actions from ``action_space.sample()``
# (a fresh, OS-seeded Box per access), so a reset info's ``goal`` and ``control`` differ from
# run to run even in one process; every other info entry, and all observations, do not.
UNSEEDED_INFO = ("goal", "control")
FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated", "success", "valid")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def qpos_of(env) -> np.ndarray:
    return np.array(env.unwrapped._data.qpos)


def tag_env(env, value):
    env.unwrapped.tper_tag = value
    return value * 10


def read_tag(env):
    return getattr(env.unwrapped, "tper_tag", None), os.getpid()


def fail_on(env, bad: bool):
    if bad:
        raise KeyError("boom")
    return 0


@pytest.fixture(scope="module")
def pair():
    """(in-process, W=2 workers) venvs of the same N envs, seed and time limit."""
    local = HostVecEnv(NAME, N, seed=7, max_episode_steps=LIMIT)
    pooled = HostVecEnv(NAME, N, seed=7, max_episode_steps=LIMIT, workers=2)
    yield local, pooled
    local.close()
    pooled.close()


def _same(a: HostVecEnv, b: HostVecEnv) -> None:
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.resets, b.resets)
    assert [i.get("success") for i in a.infos] == [i.get("success") for i in b.infos]
    for ia, ib in zip(a.infos, b.infos, strict=True):
        assert ia.keys() == ib.keys()
        for k in set(ia) - set(UNSEEDED_INFO):
            np.testing.assert_array_equal(ia[k], ib[k], err_msg=k)


def test_workers_step_exactly_like_in_process(pair):
    local, pooled = pair
    assert pooled.worker_pool.ranges == [(0, 2), (2, 4)] and local.worker_pool is None
    assert pooled.episode == local.episode and pooled.episode.episode_length == LIMIT
    np.testing.assert_array_equal(local.reset(), pooled.reset())
    _same(local, pooled)
    rng = np.random.default_rng(3)
    ends = 0
    for c in range(8):
        actions = rng.uniform(-1.2, 1.2, (N, H, 5)).astype(np.float32)
        active = np.array([True, c % 2 == 0, True, c != 5])  # envs 1 and 3 sit some out
        ta, tb = local.step_chunk(actions, active), pooled.step_chunk(actions, active)
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(ta, f), getattr(tb, f), err_msg=f"{c} {f}")
        _same(local, pooled)
        ends += int((ta.truncated & ta.valid).sum())
        assert not ta.valid[~active].any()
    assert ends >= 4 and local.resets.min() >= 2  # episode ends and auto-resets happened
    # the first chunk after an end starts from the reset observation
    a = local.reset(seed=11, first_index=5)
    np.testing.assert_array_equal(a, pooled.reset(seed=11, first_index=5))
    _same(local, pooled)
    # qpos of every env (the simulator itself) agrees too, read through map_envs
    for qa, qb in zip(local.map_envs(qpos_of), pooled.map_envs(qpos_of), strict=True):
        np.testing.assert_array_equal(qa, qb)


def test_map_envs_in_env_order(pair):
    _, pooled = pair
    assert pooled.map_envs(tag_env, [3, 1, 4, 1]) == [30, 10, 40, 10]
    tags = pooled.map_envs(read_tag)
    assert [t for t, _ in tags] == [3, 1, 4, 1]  # the envs keep what fn set (state in workers)
    pids = [p for _, p in tags]
    assert pids[0] == pids[1] != pids[2] == pids[3] and os.getpid() not in pids
    assert pids == [pooled.worker_pool.pids[0]] * 2 + [pooled.worker_pool.pids[1]] * 2
    with pytest.raises(ValueError, match="args_per_env has 3 entries for 4 envs"):
        pooled.map_envs(tag_env, [1, 2, 3])
    with pytest.raises(AttributeError, match="map_envs"):
        pooled.envs  # noqa: B018  (the envs are in the workers)


def test_worker_failures_raise_one_clear_error():
    venv = HostVecEnv(NAME, 3, seed=0, workers=2)  # envs 0..1 | 2..2
    venv.reset()
    with pytest.raises(EnvWorkerError, match=r"envs 2\.\.2 .*raised during map(.|\n)*boom"):
        venv.map_envs(fail_on, [False, False, True])
    with pytest.raises(EnvWorkerError, match="failed earlier"):
        venv.step_chunk(np.zeros((3, H, 5)))
    venv.close()
    venv = HostVecEnv(NAME, 3, seed=0, workers=2)
    venv.reset()
    pid = venv.worker_pool.pids[1]
    os.kill(pid, signal.SIGKILL)
    t0 = time.perf_counter()
    with pytest.raises(EnvWorkerError, match=rf"env worker 1 \(pid {pid}, envs 2\.\.2 .*died"):
        venv.step_chunk(np.zeros((3, H, 5)))
    assert time.perf_counter() - t0 < 10
    procs = venv.worker_pool.procs
    venv.close()
    assert not any(p.is_alive() for p in procs)


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_workers_end_with_their_parent(ending):
    """A parent that exits without close() (atexit) or is SIGKILLed leaves no worker."""
    end = "sys.exit(0)" if ending == "exit" else "os.kill(os.getpid(), signal.SIGKILL)"
    code = textwrap.dedent(f"""
        import os, signal, sys
        from tper_jit.tasks.host_env import HostVecEnv
        venv = HostVecEnv({NAME!r}, 1, workers=1)
        print(venv.worker_pool.pids[0], flush=True)
        {end}
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": ROOT})
    pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    assert not _alive(pid)


def test_a_script_main_is_imported_only_when_map_envs_needs_it(tmp_path):
    marker = tmp_path / "imports.txt"
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(f"""
        with open({str(marker)!r}, "a") as f:
            f.write("x")  # one x per import of this script

        def five(env):
            return 5

        def imports():
            return len(open({str(marker)!r}).read())

        if __name__ == "__main__":
            from tper_jit.tasks.host_env import HostVecEnv
            venv = HostVecEnv({NAME!r}, 2, workers=1)
            before = (len(venv.map_envs(id)), imports())  # a builtin: no import needed
            print(before, venv.map_envs(five), imports(), flush=True)
            venv.close()
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.stdout.split("\n")[0] == "(2, 1) [5, 5] 2", proc.stderr[-2000:]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read()
    except FileNotFoundError:
        return False


def test_env_workers_flag():
    assert TrainConfig().env_workers == "auto"
    assert parse_args(["--env_workers=3"]).env_workers == "3"
    for bad in ("-1", "two"):
        with pytest.raises(ValueError, match="--env_workers must be 'auto' or an integer >= 0"):
            TrainConfig(env_workers=bad)
    assert workers_for("auto", 16, cores=2) == 0 and workers_for("auto", 1, cores=16) == 0
    assert workers_for("auto", 16, cores=8) == 7 and workers_for("auto", 4, cores=16) == 4
    assert workers_for("5", 3) == 3 and workers_for(0, 8) == 0
    assert split_ranges(5, 2) == [(0, 3), (3, 5)]
    with pytest.raises(ValueError, match="workers must be >= 0"):
        HostVecEnv(NAME, 2, workers=-1)
