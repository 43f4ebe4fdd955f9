"""Host-env bridge throughput: OGBench envs on the host vs the fused MJX chunk.

- **bridge**: ``loop.host.HostOnlineRows`` on ``cube-single-play-singletask-task1-v0``: per
  iteration a jitted act, N ogbench (CPU MuJoCo) envs stepping one H-step chunk each on the
  host, and a jitted (donated) ``observe_and_learn`` (replay writes, T-PER, ``N · H`` gradient
  steps) — the trainer's own code;
- **bridge, env only**: the same ``HostVecEnv.step_chunk`` calls with random actions (the host
  stepping cost alone);
- **MJX**: ``loop.online.make_online_chunk`` on the closest MJX task,
  ``cube-single-singletask-task1`` (K iterations inside one ``jit(lax.scan)``);
- **env workers on/off**: ``HostVecEnv.step_chunk`` of the same N envs in this process
  (W = 0) and in W worker processes (``--env-workers``; default ``min(N, max(2, cores − 1))``),
  the same random actions, the best of ``--repeats`` timings each; plus the workers'
  start-up time (spawn → all envs built) and each worker's RSS (``VmRSS`` of
  ``/proc/<pid>/status``) next to this process's.
- **vmapped bridge seeds** (``--seeds 1 2 4``): the same bridge rows for S seeds (S venvs of N
  envs, vmapped act and observe-and-learn), wall time per seed relative to S = 1.

Same networks, batch, H, N and UTD (1) in one process; env steps/s and gradient steps/s.
"""

from __future__ import annotations

import argparse
import platform
import time
from typing import Any

import jax
import numpy as np

from tper_jit.config.flags import TrainConfig
from tper_jit.data.common import make_synthetic_dataset
from tper_jit.loop import seeds
from tper_jit.loop.host import HostOnlineRows, init_host_state, init_host_states
from tper_jit.loop.offline import make_offline_trainer
from tper_jit.loop.online import init_online_state, make_online_chunk
from tper_jit.tasks import mjx_tasks
from tper_jit.tasks.env_workers import usable_cores
from tper_jit.tasks.host_env import HostVecEnv
from tper_jit.tasks.host_seeds import HostSeedEnvs
from tper_jit.tasks.resolve import RewardRule

BRIDGE_ENV = "cube-single-play-singletask-task1-v0"
MJX_ENV = "cube-single-singletask-task1"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--horizon", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--iterations", type=int, default=10, help="online iterations per timing")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 4],
                   help="seed counts S of the vmapped-bridge-seeds table (empty: skip it)")
    p.add_argument("--env-workers", type=int, default=0,
                   help="W of the workers-on row (0: min(N, max(2, cores - 1)))")


def _trainer(cfg: TrainConfig, obs_dim: int, episode_length: int, n: int, seed: int,
             seed_list: tuple[int, ...] | None = None):
    ds = make_synthetic_dataset(obs_dim, n=2000, episode_length=100, seed=seed, env_name="bench")
    return make_offline_trainer(cfg, ds, store_kwargs={
        "num_streams": n, "rows_per_stream": 20_000 // n, "max_episode_length": episode_length},
        seeds=seed_list)


def _seed_rows(cfg: TrainConfig, args: argparse.Namespace) -> list[tuple[int, float, float]]:
    """``(S, seconds per logged row, first call s)`` of S vmapped bridge seeds."""
    out = []
    for num in args.seeds:
        seed_list = tuple(range(args.seed, args.seed + num))
        venvs = HostSeedEnvs.make(BRIDGE_ENV, args.num_envs, seed_list)
        try:
            trainer = _trainer(cfg, venvs.episode.observation_size,
                               venvs.episode.episode_length, args.num_envs, args.seed, seed_list)
            rows = HostOnlineRows(cfg, trainer.agent_config, venvs, RewardRule())
            offline = trainer.init_state.replay.store.offline
            rest = seeds.stack([seeds.split_offline(st)[1] for st in trainer.init_states])
            rest = init_host_states(cfg, rest, venvs, seed_list)

            t0 = time.perf_counter()
            rest = rows(offline, rest)[0]  # compile + run
            jax.block_until_ready(rest.step)
            first = time.perf_counter() - t0
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                rest = rows(offline, rest)[0]
                jax.block_until_ready(rest.step)
                best = min(best, time.perf_counter() - t0)
            out.append((num, best, first))
        finally:
            venvs.close()
    return out


def _time(fn, carry, repeats: int):
    """``carry, metrics = fn(carry)`` (``carry`` ends in an ``OnlineState``): the first call
    (compile + run) apart, then the fastest of ``repeats`` calls.  Returns
    ``(carry, first_s, (seconds, env steps, grad steps))``."""
    def call(c):
        e0, g0 = int(c[-1].env_steps), int(c[-1].step)
        t0 = time.perf_counter()
        c, m = fn(c)
        jax.block_until_ready((c[-1].step, m))
        return c, (time.perf_counter() - t0, int(c[-1].env_steps) - e0, int(c[-1].step) - g0)

    carry, (first, _, _) = call(carry)
    runs = []
    for _ in range(repeats):
        carry, r = call(carry)
        runs.append(r)
    return carry, first, min(runs, key=lambda r: r[0])


def _rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(x for x in f if x.startswith("VmRSS:")).split()[1]) / 1024


def _stepping_rate(venv: HostVecEnv, n: int, h: int, chunks: int, repeats: int, seed: int
                   ) -> float:
    """Env steps/s of ``step_chunk`` over ``chunks`` chunks of random actions (the fastest
    of ``repeats`` timings; the same actions for every venv)."""
    venv.reset(seed)
    best = 0.0
    for _ in range(max(1, repeats)):
        rng = np.random.default_rng(seed)
        steps, t0 = 0, time.perf_counter()
        for _ in range(chunks):
            steps += int(venv.step_chunk(rng.uniform(-1, 1, (n, h, 5))).valid.sum())
        best = max(best, steps / (time.perf_counter() - t0))
    return best


def _workers_rows(args: argparse.Namespace, venv: HostVecEnv) -> dict[str, Any]:
    """Env stepping with W = 0 (``venv``) and W = k worker processes, measured here."""
    n, h = args.num_envs, args.horizon
    k = args.env_workers or min(n, max(2, usable_cores() - 1))
    off = _stepping_rate(venv, n, h, args.iterations, args.repeats, args.seed)
    pooled = HostVecEnv(BRIDGE_ENV, n, seed=args.seed, workers=k)
    pool = pooled.worker_pool
    rss = [r / 1024 for r in pool.rss_kb()]
    on = _stepping_rate(pooled, n, h, args.iterations, args.repeats, args.seed)
    out = {"k": len(pool.ranges), "off": off, "on": on,
           "startup_s": pool.startup_s, "rss_mb": rss, "parent_rss_mb": _rss_mb(),
           "ranges": pool.ranges}
    pooled.close()
    return out


def run(args: argparse.Namespace) -> dict[str, float]:
    n, h = args.num_envs, args.horizon
    per_iter = n * h
    base = dict(num_envs=n, horizon_length=h, start_training=0, use_ptr_backward=True,
                use_ptr_online_priority=True, ptr_warmup_steps=0,
                log_interval=per_iter * args.iterations, buffer_size=20_000, wandb=False,
                progress=False, agent={"hidden_dims": tuple(args.hidden),
                                       "batch_size": args.batch})
    print(f"bridge benchmark — N={n} envs, H={h}, B={args.batch}, hidden {tuple(args.hidden)}, "
          f"utd 1 ({per_iter} env steps + {per_iter} gradient steps per iteration, "
          f"{args.iterations} iterations per timing)")
    print(f"backend={jax.default_backend()} devices={jax.devices()} "
          f"cpu={platform.processor() or platform.machine()} jax={jax.__version__}")
    results = {}

    # (a) the bridge on ogbench
    cfg = TrainConfig(env_name=BRIDGE_ENV, **base)
    venv = HostVecEnv(BRIDGE_ENV, n, seed=args.seed)
    trainer = _trainer(cfg, venv.episode.observation_size, venv.episode.episode_length, n,
                       args.seed)
    rows = HostOnlineRows(cfg, trainer.agent_config, HostSeedEnvs([venv]), RewardRule())
    state = init_host_state(cfg, trainer.init_state, venv, args.seed)
    def bridge(c):
        rest, m = rows(*c)
        return (c[0], rest), m

    _, first, (dt, e, g) = _time(bridge, seeds.split_offline(state), args.repeats)
    results["bridge"] = (e / dt, g / dt, first)

    # (b) host stepping alone
    rng = np.random.default_rng(args.seed)
    steps, t0 = 0, time.perf_counter()
    for _ in range(args.iterations):
        steps += int(venv.step_chunk(rng.uniform(-1, 1, (n, h, 5))).valid.sum())
    results["env_only"] = (steps / (time.perf_counter() - t0), 0.0, 0.0)

    # (c) the fused MJX chunk
    cfg = TrainConfig(env_name=MJX_ENV, **base)
    mvenv = mjx_tasks.make_vec_env(MJX_ENV, n)
    trainer = _trainer(cfg, mvenv.episode.observation_size, mvenv.episode.episode_length, n,
                       args.seed)
    chunk, k, _, _ = make_online_chunk(cfg, trainer.agent_config, mvenv,
                                       RewardRule(mjx_tasks.reward_shift(MJX_ENV)))
    state = init_online_state(cfg, trainer.init_state, mvenv)

    def fused(c):
        st, m = chunk(c[0])  # the whole state is donated: the carry is (state,)
        return (st,), m

    _, first, (dt, e, g) = _time(fused, (state,), args.repeats)
    results["mjx"] = (e / dt, g / dt, first)

    # (d) env stepping with workers off / on, in this same run
    wk = _workers_rows(args, venv)
    results["workers_off"] = (wk["off"], 0.0, 0.0)
    results["workers_on"] = (wk["on"], 0.0, wk["startup_s"])

    labels = {"bridge": f"bridge: {BRIDGE_ENV} (ogbench, host)",
              "env_only": "bridge env stepping only (no learning)",
              "mjx": f"MJX fused chunk: {MJX_ENV}",
              "workers_off": "env stepping, in-process (--env_workers=0)",
              "workers_on": f"env stepping, {wk['k']} worker processes (--env_workers={wk['k']})"}
    print(f"{'pattern':<60} | {'env steps/s':>11} | {'grad steps/s':>12} | {'first call s':>12}")
    print("-" * 104)
    for name, (env_rate, grad_rate, first) in results.items():
        grad = f"{grad_rate:>12.1f}" if grad_rate else f"{'-':>12}"
        fc = f"{first:>12.1f}" if first else f"{'-':>12}"
        print(f"{labels[name]:<60} | {env_rate:>11.1f} | {grad} | {fc}")
    groups = ", ".join(f"{lo}..{hi - 1}" for lo, hi in wk["ranges"])
    print(f"env workers: {wk['k']} processes (envs {groups}) on {usable_cores()} usable cores; "
          f"speed-up {wk['on'] / wk['off']:.2f}x; start-up (spawn -> envs built) "
          f"{wk['startup_s']:.1f} s (the 'first call s' column); RSS per worker "
          + ", ".join(f"{r:.0f}" for r in wk["rss_mb"])
          + f" MB; this process {wk['parent_rss_mb']:.0f} MB")
    venv.close()
    summary = {f"{k}_env": v[0] for k, v in results.items()} | {
        f"{k}_grad": v[1] for k, v in results.items()
        if k not in ("env_only", "workers_off", "workers_on")} | {
        "workers": float(wk["k"]), "workers_startup_s": wk["startup_s"],
        "workers_rss_mb_max": max(wk["rss_mb"])}
    if args.seeds:
        cfg = TrainConfig(env_name=BRIDGE_ENV, **base)
        table = _seed_rows(cfg, args)
        one = next((t for s, t, _ in table if s == 1), None)
        print(f"\nvmapped bridge seeds ({args.iterations} iterations of N={n} envs per seed "
              "per row)")
        print(f"{'seeds':>5} | {'s / row':>8} | {'per seed s':>10} | {'per-seed cost vs S=1':>20} "
              f"| {'first call s':>12}")
        print("-" * 69)
        for num, t, first in table:
            rel = f"{t / num / one:>20.2f}" if one else f"{'-':>20}"
            print(f"{num:>5} | {t:>8.3f} | {t / num:>10.3f} | {rel} | {first:>12.1f}")
            summary[f"seeds{num}_row_s"] = t
    return summary
