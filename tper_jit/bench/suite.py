"""``python -m tper_jit.bench all``: every benchmark in one command, within a time budget.

    python -m tper_jit.bench all --budget-s 480 --out benchmarks.md [--dry-run]
        [--only NAME …] [--skip NAME …] [--sizes auto|cpu|accel|tiny] [--backend auto|…]

The sizes follow the device (``--sizes auto``: the ``accel`` preset of ``catalog.py`` when
``jax.default_backend()`` is not ``cpu``, else ``cpu``).  Benchmarks run in the catalog's
priority order, each in its own process (``worker.py``); one starts only if its estimate
fits the time left, and it is stopped at the end of the budget (or at 3× its estimate plus
a minute, whichever comes first), so the budget is never overrun by more than the stopping
itself.  What does not fit, needs a package that is not installed, or is not selected is
listed with the reason.  A benchmark that fails is recorded with its error line and the rest
go on.  ``--out`` is rewritten after every benchmark (machine header, summary table, one
section per finished benchmark in docs/benchmarks.md's layout), so a killed run still leaves
every finished table.  Progress goes to stderr.  Nothing here uses the network or a dataset
download: the benchmarks generate their data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tper_jit.bench import catalog
from tper_jit.bench.worker import _version

ROOT = Path(__file__).resolve().parents[2]  # holds tper_jit/ and envs_mjx/


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget-s", type=float, default=480.0,
                   help="wall seconds for the whole suite, start-up included")
    p.add_argument("--out", help="markdown file, rewritten after every benchmark "
                                 "(default: print the markdown at the end)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (benchmarks, sizes, estimated seconds) and exit")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    p.add_argument("--skip", nargs="+", metavar="NAME", default=[], help="leave these out")
    p.add_argument("--sizes", choices=("auto",) + catalog.PRESETS, default="auto",
                   help="size preset (auto: accel on a GPU/TPU backend, else cpu)")
    p.add_argument("--backend", choices=("auto", "cpu", "gpu", "tpu"), default="auto",
                   help="the backend that picks --sizes auto (auto: ask JAX in a subprocess)")


@dataclass
class Entry:
    bench: catalog.Benchmark
    status: str  # pending | planned | running | done | failed | timed out | skipped | …
    estimate: float
    reason: str = ""
    seconds: float | None = None
    output: list[str] = field(default_factory=list)


def _say(msg: str) -> None:
    print(f"[bench all] {msg}", file=sys.stderr, flush=True)


def _child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def probe() -> dict:
    """Backend, devices and versions, asked of JAX in a subprocess (this process keeps off
    the accelerator, whose memory the benchmark processes need)."""
    cmd = [sys.executable, "-m", "tper_jit.bench.worker", "probe"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8",
                             errors="replace", timeout=300, env=_child_env())
        return json.loads(res.stdout.strip().splitlines()[-1])
    except Exception as e:  # noqa: BLE001 - a broken JAX is reported, the suite goes on
        return {"backend": "unknown", "device_kind": f"probe failed: {e}", "device_count": 0}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def preset_for(sizes: str, backend: str) -> str:
    if sizes != "auto":
        return sizes
    return "cpu" if backend in ("cpu", "unknown") else "accel"


def missing(bench: catalog.Benchmark) -> list[str]:
    return [d for d in bench.requires if _version(d) == "not installed"]


def select(registry: list[catalog.Benchmark], preset: str, only, skip) -> list[Entry]:
    names = {b.name for b in registry}
    unknown = sorted((set(only or []) | set(skip)) - names)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; known: {sorted(names)}")
    entries = []
    for b in registry:
        e = Entry(b, "pending", b.estimate(preset))
        if (only and b.name not in only) or b.name in skip:
            e.status, e.reason = "not selected", "--only / --skip"
        elif missing(b):
            e.status = "skipped"
            e.reason = f"needs {', '.join(missing(b))} (not installed; scripts/gpu_bench.sh)"
        entries.append(e)
    return entries


def plan(entries: list[Entry], budget: float) -> float:
    """Mark each pending entry planned or skipped as if every one took its estimate; returns
    the planned total."""
    total = 0.0
    for e in entries:
        if e.status != "pending":
            continue
        if total + e.estimate <= budget:
            e.status, total = "planned", total + e.estimate
        else:
            e.status = "skipped"
            e.reason = f"estimated {e.estimate:.0f} s > {budget - total:.0f} s left"
    return total


def _pump(stream, sink: list[str], prefix: str) -> None:
    for line in stream:
        line = line.rstrip("\n")
        sink.append(line)
        try:  # an echo that cannot be printed must not stop the draining of the pipe
            print(f"{prefix}{line}", file=sys.stderr, flush=True)
        except (UnicodeError, OSError, ValueError):
            pass


def run_one(e: Entry, preset: str, limit_s: float) -> None:
    """Run ``e`` in its own process, stopped after ``limit_s``; fills status / output."""
    cmd = [sys.executable, "-m", "tper_jit.bench.worker", "run", e.bench.target,
           *e.bench.argv(preset)]
    err: list[str] = []
    t0 = time.monotonic()
    # its own process group (not session), so that stopping it stops whatever it started,
    # and a killed suite's leftovers still end with the device command
    group = ({"process_group": 0} if sys.version_info >= (3, 11)
             else {"preexec_fn": os.setpgrp})
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            encoding="utf-8", errors="replace", env=_child_env(), **group)
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, e.output, f"[{e.bench.name}] "),
                              daemon=True),
             threading.Thread(target=_pump, args=(proc.stderr, err, f"[{e.bench.name}!] "),
                              daemon=True)]
    for t in pumps:
        t.start()
    try:
        rc = proc.wait(timeout=max(limit_s, 1.0))
    except subprocess.TimeoutExpired:
        rc = None
    finally:  # at its limit, and when the suite itself is interrupted or terminated
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the benchmark's own process group
            except ProcessLookupError:
                pass
            proc.wait()
        e.seconds = time.monotonic() - t0
    for t in pumps:
        t.join(timeout=5)
    if rc is None:
        e.status, e.reason = "timed out", f"stopped after {limit_s:.0f} s (its time limit)"
    elif rc == 0:
        e.status = "done"
    else:
        e.status = "failed"
        lines = [x for x in err if x.strip()]
        marked = [x for x in lines if x.startswith("benchmark failed:")]
        e.reason = (marked or lines or [""])[-1].removeprefix("benchmark failed: ").strip()
        if rc < 0:
            e.reason = f"killed by signal {-rc}" + (f"; {e.reason}" if e.reason else "")
        e.reason = e.reason or f"exit code {rc}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(entries: list[Entry], info: dict, preset: str, command: str, started: str,
           elapsed: float, budget: float) -> str:
    accel = info.get("backend", "unknown")
    kind = info.get("device_kind", "?")
    label = f"{info.get('device_count', 0)} × {kind}" if accel not in ("cpu", "unknown") \
        else f"none (JAX backend {accel})"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out = [f"# tper-jit benchmarks — {kind if accel not in ('cpu', 'unknown') else cpu_model()}",
           "",
           f"`{command}`: sizes `{preset}` (JAX backend `{accel}`); each section is the "
           "stand-alone command's output, ratios against baselines measured in the same run.",
           "", "| machine | |", "|---|---|",
           f"| CPU | {_cell(cpu_model())}, {os.cpu_count()} cores ({cores} usable), "
           f"{platform.machine()} |",
           f"| accelerator | {_cell(label)} |",
           f"| python / jax / jaxlib | {info.get('python', platform.python_version())} / "
           f"{info.get('jax', '?')} / {info.get('jaxlib', '?')} |",
           f"| mujoco / mujoco-mjx / ogbench | {info.get('mujoco', '?')} / "
           f"{info.get('mujoco-mjx', '?')} / {info.get('ogbench', '?')} |",
           f"| date | {started} |",
           f"| budget | {budget:.0f} s; {elapsed:.0f} s used |", "",
           "| # | benchmark | status | wall s | estimated s | note |", "|---|---|---|---|---|---|"]
    for i, e in enumerate(entries, 1):
        wall = f"{e.seconds:.1f}" if e.seconds is not None else ""
        out.append(f"| {i} | {e.bench.name} | {e.status} | {wall} | {e.estimate:.0f} | "
                   f"{_cell(e.reason)} |")
    for i, e in enumerate(entries, 1):
        if e.seconds is None:
            continue
        args = " ".join([e.bench.command, *e.bench.argv(preset)])
        out += ["", f"## {i}. {e.bench.title} (`{args}`)", "",
                f"{e.status}, {e.seconds:.1f} s (estimated {e.estimate:.0f} s)"
                + (f": {e.reason}" if e.reason else "") + ".", ""]
        if e.bench.markdown and e.status == "done":  # a "# title" line becomes a paragraph
            for x in e.output:
                out += [x[2:], ""] if x.startswith("# ") else [x]
        elif e.output:
            out += ["```", *e.output, "```"]
    return "\n".join(out) + "\n"


def _write(path: str, text: str) -> None:
    tmp = Path(f"{path}.tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def print_plan(entries: list[Entry], preset: str, backend: str, budget: float,
               total: float) -> None:
    print(f"plan: backend {backend}, sizes {preset}, budget {budget:.0f} s")
    print("| # | benchmark | plan | estimated s | arguments |")
    print("|---|---|---|---|---|")
    for i, e in enumerate(entries, 1):
        what = e.status + (f" ({e.reason})" if e.reason else "")
        args = " ".join([e.bench.command, *e.bench.argv(preset)])
        print(f"| {i} | {e.bench.name} | {what} | {e.estimate:.0f} | `{args}` |")
    n = sum(e.status == "planned" for e in entries)
    print(f"planned: {n} of {len(entries)} benchmarks, {total:.0f} s estimated of "
          f"{budget:.0f} s")


def main(argv: list[str] | None = None,
         registry: list[catalog.Benchmark] | None = None) -> int:
    t_start = time.monotonic()
    parser = argparse.ArgumentParser(prog="python -m tper_jit.bench all",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    registry = catalog.REGISTRY if registry is None else registry
    command = " ".join(["python -m tper_jit.bench all", *(argv or [])])
    if args.dry_run and args.backend != "auto":
        info = {"backend": args.backend}
    else:
        _say("asking JAX for the backend and devices")
        info = probe()
        if args.backend != "auto":
            info["backend"] = args.backend
    backend = info.get("backend", "unknown")
    preset = preset_for(args.sizes, backend)
    entries = select(registry, preset, args.only, args.skip)
    total = plan(entries, args.budget_s)
    if args.dry_run:
        print_plan(entries, preset, backend, args.budget_s, total)
        return 0
    for e in entries:  # decided again at each start against the real time left
        if e.status == "planned" or e.reason.startswith("estimated"):
            e.status, e.reason = "pending", ""
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def flush() -> None:
        if args.out:
            _write(args.out, render(entries, info, preset, command, started,
                                    time.monotonic() - t_start, args.budget_s))

    def terminate(signum, frame):  # the device tool's limit: stop the benchmark, keep tables
        raise KeyboardInterrupt(f"signal {signum}")

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, terminate) if main_thread else None
    flush()
    try:
        _run_all(entries, preset, args.budget_s, t_start, flush)
    except KeyboardInterrupt as e:
        for x in entries:
            if x.status == "running":
                x.status, x.reason = "stopped", f"suite interrupted ({e or 'Ctrl-C'})"
        _say("interrupted: writing the finished tables")
        flush()
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    text = render(entries, info, preset, command, started, time.monotonic() - t_start,
                  args.budget_s)
    if args.out:
        _write(args.out, text)
        _say(f"wrote {args.out} ({time.monotonic() - t_start:.0f} s)")
    else:
        print(text, end="")
    return int(any(e.status in ("failed", "timed out") for e in entries))


def _run_all(entries: list[Entry], preset: str, budget: float, t_start: float, flush) -> None:
    for i, e in enumerate(entries, 1):
        if e.status != "pending":
            continue
        left = budget - (time.monotonic() - t_start)
        if e.estimate > left:
            e.status, e.reason = "skipped", f"estimated {e.estimate:.0f} s > {left:.0f} s left"
            _say(f"{i}/{len(entries)} {e.bench.name}: skipped ({e.reason})")
            continue
        limit = min(left, max(3 * e.estimate, e.estimate + 60))
        _say(f"{i}/{len(entries)} {e.bench.name}: running (estimated {e.estimate:.0f} s, "
             f"{left:.0f} s left, stopped after {limit:.0f} s)")
        e.status = "running"
        flush()
        run_one(e, preset, limit)
        _say(f"{i}/{len(entries)} {e.bench.name}: {e.status} in {e.seconds:.1f} s"
             + (f" ({e.reason})" if e.reason else ""))
        flush()
