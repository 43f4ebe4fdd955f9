"""Env throughput: ``python -m envs_mjx.bench [--tasks ...] [--batches 16,128,1024]``.

For each task and batch size B: compile ``jit(scan(vmap(env.step)))`` over ``--steps`` env
steps ahead of time (compile time reported apart), then time ``--repeats`` calls with
``block_until_ready`` and report env steps/s (B * steps / s) and physics steps/s
(x ``N_SUBSTEPS``). Baseline measured in the same run: C MuJoCo on one thread stepping the
same MJCF with the same control law (``mj_step`` x ``N_SUBSTEPS`` per env step).
Actions are uniform random in [-1, 1]^5 (drawn inside the scan).
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from envs_mjx import core, registry, scene

DEFAULT_TASKS = ("cube-single-singletask-task1", "cube-double-singletask-task1", "lift")


def c_mujoco_steps_per_s(env: core.MjxEnv, seconds: float = 1.0, seed: int = 0) -> float:
    """Env steps/s of C MuJoCo (one thread) on ``env``'s model with random actions."""
    m = env.mj_model
    d = mujoco.MjData(m)
    st = jax.jit(env.reset)(jax.random.PRNGKey(seed))
    d.qpos[:] = np.asarray(st.data.qpos)
    rng = np.random.default_rng(seed)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        d.ctrl[:] = core.action_to_ctrl(d.qpos.copy(), rng.uniform(-1, 1, 5))
        for _ in range(scene.N_SUBSTEPS):
            mujoco.mj_step(m, d)
        n += 1
    return n / (time.perf_counter() - t0)


def make_runner(env: core.MjxEnv, batch: int, steps: int):
    """Jitted ``run(states, key) -> states``: ``steps`` vmapped env steps under scan."""

    def run(states, key):
        def body(s, k):
            a = jax.random.uniform(k, (batch, core.ACTION_SIZE), minval=-1, maxval=1)
            return jax.vmap(env.step)(s, a), None

        return jax.lax.scan(body, states, jax.random.split(key, steps))[0]

    return jax.jit(run)


def bench_mjx(env: core.MjxEnv, batch: int, steps: int, repeats: int) -> dict[str, float]:
    """Compile seconds and steady-state env steps/s at ``batch``."""
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), batch))
    run = make_runner(env, batch, steps)
    key = jax.random.PRNGKey(1)
    t0 = time.perf_counter()
    compiled = run.lower(states, key).compile()
    compile_s = time.perf_counter() - t0
    states = jax.block_until_ready(compiled(states, key))  # warm-up
    t0 = time.perf_counter()
    for r in range(repeats):
        states = compiled(states, jax.random.fold_in(key, r))
    jax.block_until_ready(states)
    dt = time.perf_counter() - t0
    ok = bool(jnp.isfinite(states.obs).all())
    return {"compile_s": compile_s, "env_steps_per_s": batch * steps * repeats / dt,
            "finite": ok}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    p.add_argument("--batches", default="16,128,1024")
    p.add_argument("--steps", type=int, default=20, help="env steps per compiled call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--c_seconds", type=float, default=1.0)
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    print(f"envs_mjx benchmark: backend={jax.default_backend()} jax={jax.__version__} "
          f"mujoco={mujoco.__version__} cpu={platform.machine()} "
          f"ctrl_dt={scene.TIMESTEP * scene.N_SUBSTEPS:g}s ({scene.N_SUBSTEPS} physics steps)")
    head = (f"{'task':<30} | {'batch':>5} | {'compile s':>9} | {'MJX env st/s':>12} | "
            f"{'C env st/s (1 thr)':>18} | {'MJX/C':>6}")
    print(head)
    print("-" * len(head))
    rows = []
    for name in args.tasks.split(","):
        env = registry.make(name)
        c_rate = c_mujoco_steps_per_s(env, args.c_seconds)
        for b in batches:
            r = bench_mjx(env, b, args.steps, args.repeats)
            row = {"task": name, "batch": b, "c_env_steps_per_s": c_rate, **r}
            rows.append(row)
            print(f"{name:<30} | {b:>5} | {r['compile_s']:>9.1f} | "
                  f"{r['env_steps_per_s']:>12,.0f} | {c_rate:>18,.0f} | "
                  f"{r['env_steps_per_s'] / c_rate:>6.2f}", flush=True)
    return rows


if __name__ == "__main__":
    main()
