"""Vmapped seeds: wall time of S = 1, 2, 4, 8 seeds for a fixed number of steps.

    python -m tper_jit.bench seeds [--phase offline|online] [--seeds 1 2 4 8] [--steps 200]

Each S builds the trainer with S seeds (one offline block shared by all), compiles the chunk
once (compile time reported apart) and times ``--repeats`` chunks of the same work per seed:
``--steps`` gradient steps offline, or ``--iterations`` online iterations (MJX rollouts +
replay writes + T-PER + updates) on ``--env``.  Printed: wall per chunk, wall per seed, and
the per-seed cost ratio against S = 1 measured in the same run (< 1: extra seeds are cheaper
than separate runs).
"""

from __future__ import annotations

import argparse
import platform

import jax

from tper_jit.bench.timing import time_calls
from tper_jit.config.flags import TrainConfig
from tper_jit.data.common import make_synthetic_dataset
from tper_jit.loop import seeds
from tper_jit.loop.offline import make_offline_trainer
from tper_jit.tasks import mjx_tasks
from tper_jit.tasks.resolve import RewardRule


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--phase", choices=("offline", "online"), default="offline")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--steps", type=int, default=200, help="offline gradient steps per chunk")
    p.add_argument("--iterations", type=int, default=4, help="online iterations per chunk")
    p.add_argument("--env", default="cube-single-singletask-task1")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--rows", type=int, default=50_000, help="offline dataset rows")
    p.add_argument("--repeats", type=int, default=3)


def _setup(args: argparse.Namespace, num_seeds: int):
    h = 5
    cfg = TrainConfig(env_name=args.env, num_envs=args.num_envs, horizon_length=h,
                      start_training=0, use_ptr_backward=True, use_ptr_online_priority=True,
                      ptr_warmup_steps=0, log_interval=args.num_envs * h * args.iterations,
                      buffer_size=100_000, wandb=False, progress=False,
                      agent={"hidden_dims": tuple(args.hidden), "batch_size": args.batch})
    venv = mjx_tasks.make_vec_env(args.env, args.num_envs)
    ds = make_synthetic_dataset(venv.episode.observation_size, n=args.rows, episode_length=100,
                                env_name="bench")
    store_kwargs = {"num_streams": args.num_envs, "rows_per_stream": 100_000 // args.num_envs,
                    "max_episode_length": venv.episode.episode_length}
    ids = tuple(range(num_seeds))
    tr = make_offline_trainer(cfg, ds, store_kwargs=store_kwargs, seeds=ids)
    offline = tr.init_state.replay.store.offline
    if args.phase == "offline":
        rest = seeds.stack([seeds.split_offline(s)[1] for s in tr.init_states])
        chunk = seeds.batch_chunk(tr.scan, num_seeds, num_static=1)
        return (lambda o, r: chunk(o, r, args.steps)), offline, rest
    from tper_jit.loop.online import init_online_state, make_online_scan

    reset = jax.jit(venv.reset)
    states = [seeds.split_offline(init_online_state(cfg, s, venv, seed=i, reset=reset))[1]
              for i, s in zip(ids, tr.init_states, strict=True)]
    scan, _, _, _ = make_online_scan(cfg, tr.agent_config, venv, RewardRule(shift=-1.0))
    return seeds.batch_chunk(scan, num_seeds), offline, seeds.stack(states)


def run(args: argparse.Namespace) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []
    for s in args.seeds:
        chunk, offline, rest = _setup(args, s)
        _, compile_s, times = time_calls(lambda r, c=chunk, o=offline: c(o, r), rest,
                                         args.repeats)
        best = min(times)
        rows.append({"seeds": s, "wall_s": best, "per_seed_s": best / s,
                     "compile_s": compile_s})
    base = rows[0]["per_seed_s"] * rows[0]["seeds"] if rows[0]["seeds"] == 1 else None
    work = (f"{args.steps} gradient steps" if args.phase == "offline" else
            f"{args.iterations} iterations x {args.num_envs} envs on {args.env}")
    print(f"# vmapped seeds, {args.phase}: one chunk = {work} per seed; hidden {args.hidden}, "
          f"batch {args.batch}; {jax.default_backend()} ({jax.devices()[0].device_kind}), "
          f"{platform.processor() or platform.machine()}; best of {args.repeats}")
    print("| seeds | wall / chunk (s) | per seed (s) | per-seed cost vs S=1 | compile (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['per_seed_s'] / base:.2f}" if base else "n/a"
        r["ratio"] = r["per_seed_s"] / base if base else float("nan")
        print(f"| {r['seeds']} | {r['wall_s']:.3f} | {r['per_seed_s']:.3f} | {ratio} | "
              f"{r['compile_s']:.1f} |")
    return rows
