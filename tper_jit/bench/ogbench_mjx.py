"""The OGBench port in MJX: env steps/s of ``envs_mjx.ogbench`` vs ogbench's own C env.

For each physics backend (``jax``; ``warp`` when ``mujoco_warp`` imports) and batch size B:
``jit(scan(vmap(env.step)))`` over ``--steps`` env steps of the port's
``ogbench-mjx/<task>:<backend>`` env with uniform random actions (compile reported apart,
best of ``--repeats``), against ogbench's gymnasium env (C MuJoCo, one thread, its own
controller) stepping random actions for ``--c-seconds`` in the same process.  One env step
is ogbench's control step (25 physics steps of 2 ms for cube / puzzle).
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import time
import warnings

import jax
import numpy as np

DEFAULT_TASK = "cube-single-singletask-task1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default=DEFAULT_TASK, help="ogbench singletask env id (no -v0)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256])
    p.add_argument("--backends", nargs="+", default=None,
                   help="physics backends (default: jax, and warp where mujoco_warp imports)")
    p.add_argument("--steps", type=int, default=10, help="env steps per compiled call")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--c-seconds", type=float, default=2.0)


def ogbench_c_steps_per_s(task: str, seconds: float, seed: int = 0) -> float:
    """Env steps/s of ogbench's own env (C MuJoCo, one thread) with random actions."""
    import gymnasium
    import ogbench.manipspace  # noqa: F401  (registers the envs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gymnasium.make(f"{task}-v0")
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, env.action_space.shape))
        n += 1
        if term or trunc:
            env.reset()
    env.close()
    return n / (time.perf_counter() - t0)


def run(args: argparse.Namespace) -> list[dict]:
    from envs_mjx import registry
    from envs_mjx.bench import bench_mjx

    backends = args.backends or ["jax"] + (
        ["warp"] if importlib.util.find_spec("mujoco_warp") is not None else [])
    print(f"ogbench-mjx benchmark — {args.task}, backends {backends}, batches {args.batches}, "
          f"{args.steps} env steps per call")
    print(f"backend={jax.default_backend()} devices={jax.devices()} "
          f"cpu={platform.processor() or platform.machine()} jax={jax.__version__}")
    c_rate = ogbench_c_steps_per_s(args.task, args.c_seconds)
    head = (f"{'env':<48} | {'batch':>5} | {'compile s':>9} | {'env st/s':>10} | "
            f"{'vs ogbench C env':>16}")
    print(head)
    print("-" * len(head))
    print(f"{'ogbench ' + args.task + ' (C MuJoCo, 1 thread)':<48} | {1:>5} | {'-':>9} | "
          f"{c_rate:>10,.1f} | {1.0:>16.2f}", flush=True)
    rows = [{"env": "ogbench-c", "batch": 1, "env_steps_per_s": c_rate}]
    for backend in backends:
        name = f"{registry.PORT_PREFIX}{args.task}:{backend}"
        try:
            env = registry.make(name)
        except Exception as e:  # noqa: BLE001 - a missing backend is a row, not a crash
            print(f"{name:<48} | {'-':>5} | failed: {type(e).__name__}: {e}", flush=True)
            continue
        for b in args.batches:
            r = bench_mjx(env, b, args.steps, args.repeats)
            rows.append({"env": name, "batch": b, **r})
            print(f"{name:<48} | {b:>5} | {r['compile_s']:>9.1f} | "
                  f"{r['env_steps_per_s']:>10,.1f} | {r['env_steps_per_s'] / c_rate:>16.2f}",
                  flush=True)
    return rows
