"""Host envs stepped in worker processes: the pool behind ``HostVecEnv(..., workers=W)``.

The N envs are split into W contiguous groups (sizes differ by at most one); worker w owns
envs ``[lo_w, hi_w)``, builds them itself (an ogbench env is ~200 MB: nothing is pickled
across but actions, observations and small arrays) and serves commands over one pipe:
``reset`` / ``step`` run ``env_chunk.reset_envs`` / ``env_chunk.step_envs`` — the functions
the in-process path calls — on its group, ``map`` runs a picklable ``fn(env, *args)``.  The
parent sends a command to every worker first and then collects the replies, so the groups
step in parallel.

Processes start with multiprocessing's ``spawn`` context (never ``fork``: the parent has
usually initialised JAX, whose threads do not survive a fork); a worker imports numpy,
gymnasium and the simulator, not JAX.  Spawn would also import the parent's ``__main__``
script in every worker — for the ``tper-train`` console script that is the whole trainer
(+300 MB and +3 s per worker, measured) — so the pool starts its workers without it and a
worker imports that script only if a ``map_envs`` function defined there needs it.  Such a
script must keep its top-level code under ``if __name__ == "__main__"`` (spawn's rule).

Shutdown: ``close()`` (also run by a ``weakref.finalize`` at garbage collection and at
interpreter exit) asks each worker to close its envs, then terminates stragglers; a worker
exits by itself when its pipe closes or its parent process is gone.  A worker that dies or
raises makes the call fail with one ``EnvWorkerError`` naming its env index range; the pool
is unusable afterwards (build a new ``HostVecEnv``).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any

import numpy as np

from tper_jit.tasks import env_chunk


class EnvWorkerError(RuntimeError):
    """A host env worker died or raised; the message names its env index range."""


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def workers_for(setting: int | str, num_envs: int, cores: int | None = None) -> int:
    """The number of env worker processes for ``--env_workers=setting`` and ``num_envs``.

    ``auto``: 0 (in-process) when there are <= 2 usable cores or a single env, else
    ``min(num_envs, cores - 1)`` (one core left to the learner).  An integer W is used as
    given, capped at ``num_envs``."""
    text = str(setting).strip().lower()
    if text == "auto":
        cores = usable_cores() if cores is None else int(cores)
        return 0 if cores <= 2 or num_envs <= 1 else min(int(num_envs), cores - 1)
    w = int(text)
    if w < 0:
        raise ValueError(f"--env_workers must be 'auto' or an integer >= 0, got {setting!r}")
    return min(w, int(num_envs))


def split_ranges(num_envs: int, workers: int) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]``: W contiguous env ranges covering ``range(num_envs)``, the first
    ``num_envs % W`` one env larger."""
    base, extra = divmod(num_envs, workers)
    out, lo = [], 0
    for w in range(workers):
        hi = lo + base + (w < extra)
        out.append((lo, hi))
        lo = hi
    return out


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:  # the parent died; we were re-parented
            os._exit(1)


@contextlib.contextmanager
def _main_script_hidden():
    """While workers start: hide a ``__main__`` script's path from spawn (which would import
    it in each worker); yields that path (or None) for workers to import on demand."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or getattr(main, "__spec__", None) is not None:
        yield None  # -c / REPL / python -m: spawn imports no script
        return
    del main.__file__
    try:
        yield os.path.abspath(path)
    finally:
        main.__file__ = path


def _loads(blob: bytes, main_path: str | None):
    """Unpickle a ``map`` payload, importing the parent's ``__main__`` script first when the
    function (or an argument) is defined there."""
    try:
        return pickle.loads(blob)
    except (AttributeError, ImportError):
        if main_path is None or getattr(sys.modules["__main__"], "__file__", None) == main_path:
            raise
        from multiprocessing import spawn

        spawn.import_main_path(main_path)  # as spawn would have: __main__ = __mp_main__
        return pickle.loads(blob)


def _serve(conn, build: dict[str, Any], lo: int, parent_pid: int,
           main_path: str | None = None) -> None:
    """A worker's main loop (module level: spawn pickles it by name)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    envs: list = []
    try:
        env_id, envs, limit, obs_dim, act_dim = env_chunk.build_envs(**build)
        conn.send(("ok", (env_id, limit, obs_dim, act_dim, os.getpid())))
    except Exception:
        conn.send(("error", "building the envs: " + traceback.format_exc()))
        return
    while True:
        try:
            cmd, payload = conn.recv()
        except (EOFError, OSError):  # the parent closed the pipe or died
            break
        if cmd == "close":
            break
        try:
            if cmd == "reset":
                result = env_chunk.reset_envs(envs, *payload)
            elif cmd == "step":
                result = env_chunk.step_envs(envs, *payload)
            elif cmd == "map":
                fn, args = _loads(payload, main_path)
                result = env_chunk.map_envs(envs, fn, args, first=lo)
            else:
                raise ValueError(f"unknown command {cmd!r}")
            conn.send(("ok", result))
        except Exception:
            conn.send(("error", f"{cmd}: " + traceback.format_exc()))
    for env in envs:
        env.close()
    conn.close()


def _shutdown(procs: list, conns: list, timeout_s: float = 5.0) -> None:
    """Close every worker: a ``close`` command, then terminate / kill what is still alive."""
    for conn in conns:
        try:
            conn.send(("close", None))
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + timeout_s
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(1.0)
        if p.is_alive():
            p.kill()
            p.join(1.0)
    for conn in conns:
        conn.close()


class EnvWorkerPool:
    """W worker processes owning the contiguous env ranges ``split_ranges(N, W)``.

    ``call(cmd, payloads)`` sends ``payloads[w]`` to worker w and returns the W results;
    ``episode`` is ``(env id, time limit, obs dim D, action dim A)`` of the built envs and
    ``pids`` the worker process ids."""

    def __init__(self, num_envs: int, workers: int, build: dict[str, Any]):
        if not 1 <= workers <= num_envs:
            raise ValueError(f"workers must be in [1, num_envs={num_envs}], got {workers}")
        self.ranges = split_ranges(num_envs, workers)
        self.name = build.get("env_id") or build.get("env_name")
        ctx = mp.get_context("spawn")
        self.procs, self.conns = [], []
        self._broken: str | None = None
        self._finalizer = weakref.finalize(self, _shutdown, self.procs, self.conns)
        t0 = time.perf_counter()
        with _main_script_hidden() as main_path:
            for lo, hi in self.ranges:
                parent_end, child_end = ctx.Pipe()
                proc = ctx.Process(target=_serve, name=f"tper-env-worker-{lo}-{hi - 1}",
                                   args=(child_end, dict(build, num_envs=hi - lo), lo,
                                         os.getpid(), main_path), daemon=True)
                proc.start()
                child_end.close()  # so the parent sees EOF when the worker dies
                self.procs.append(proc)
                self.conns.append(parent_end)
        ready = self._collect("start")
        self.startup_s = time.perf_counter() - t0
        self.episode = tuple(ready[0][:4])
        self.pids = [r[4] for r in ready]

    def _where(self, w: int) -> str:
        lo, hi = self.ranges[w]
        return f"env worker {w} (pid {self.procs[w].pid}, envs {lo}..{hi - 1} of {self.name})"

    def _fail(self, message: str) -> None:
        self._broken = message
        self.close()
        raise EnvWorkerError(message)

    def _collect(self, what: str) -> list:
        results: list = [None] * len(self.conns)
        for w, (conn, proc) in enumerate(zip(self.conns, self.procs, strict=True)):
            wait([conn, proc.sentinel])  # returns when a reply is there or the worker is gone
            try:
                status, result = conn.recv() if conn.poll() else ("dead", None)
            except (EOFError, OSError):
                status, result = "dead", None
            if status == "dead":
                proc.join(1.0)
                self._fail(f"{self._where(w)} died during {what} (exit code {proc.exitcode})")
            if status == "error":
                self._fail(f"{self._where(w)} raised during {what}:\n{result}")
            results[w] = result
        return results

    def call(self, cmd: str, payloads: Sequence) -> list:
        """Run ``cmd`` on every worker (``payloads[w]`` for worker w); the W results."""
        self.send(cmd, payloads)
        return self._collect(cmd)

    def collect(self, cmd: str) -> list:
        """The W results of the ``send(cmd, ...)`` in flight (blocks until all are there)."""
        return self._collect(cmd)

    def send(self, cmd: str, payloads: Sequence) -> None:
        """Start ``cmd`` on every worker without waiting (``collect`` gets the results), so
        several pools (the venvs of an S-seed run) step at the same time."""
        if self._broken:
            raise EnvWorkerError(f"the env workers failed earlier ({self._broken.splitlines()[0]}"
                                 "); build a new HostVecEnv")
        for w, (conn, payload) in enumerate(zip(self.conns, payloads, strict=True)):
            try:
                conn.send((cmd, payload))
            except (OSError, ValueError):  # a broken pipe: the worker is gone
                self.procs[w].join(1.0)
                self._fail(f"{self._where(w)} died before {cmd} (exit code "
                           f"{self.procs[w].exitcode})")

    def map(self, fn: Callable[..., Any], args: list[tuple] | None) -> list:
        """``fn(env, *args[i])`` on every env, results in env order."""
        payloads = [pickle.dumps((fn, None if args is None else args[lo:hi]))
                    for lo, hi in self.ranges]
        return [r for group in self.call("map", payloads) for r in group]

    def rss_kb(self) -> list[int]:
        """Each worker's resident set size (``VmRSS`` of ``/proc/<pid>/status``, kB; -1 where
        it cannot be read)."""
        out = []
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    line = next(x for x in f if x.startswith("VmRSS:"))
                out.append(int(line.split()[1]))
            except (OSError, StopIteration, ValueError):
                out.append(-1)
        return out

    def close(self) -> None:
        self._finalizer()  # runs _shutdown once


def gather(results: Sequence[tuple]) -> tuple:
    """Concatenate the W workers' ``step_envs`` results into one of all N envs."""
    fields = {k: np.concatenate([r[0][k] for r in results]) for k in results[0][0]}
    obs = np.concatenate([r[1] for r in results])
    infos = [info for r in results for info in r[2]]
    counts = np.concatenate([r[3] for r in results])
    return fields, obs, infos, counts
