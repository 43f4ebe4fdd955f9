"""T-PER sampler: one sample + priority update, fused JAX vs the reference's numpy procedure.

For each trajectory count n (N transitions split into n episodes of random lengths) both
sides run the online-phase T-PER step with ``metric=td_error_rank``, B draws:

- ours: ``sample`` (sum-tree descent + start rule) → ``update_priorities`` (EMA of μ from the
  B per-sample |δ|, merge of the changed episodes into the rank index, leaf refresh), run as
  K steps of one jitted ``lax.scan`` as the trainer does (per-step time = total / K);
- reference: ``ReferenceTPERSampler.sample`` (Python loop over trajectories, argsort,
  ``np.random.choice``, Python start loop) + ``update_td``.

It also times the cost of a finished episode: our jitted ``add_step`` that ends an episode
plus the priority ``sync`` vs the reference's O(N) rescan (``on_episode_end``).
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from tper_jit.bench.reference_tper import ReferenceTPERSampler
from tper_jit.replay import priorities, samplers, store


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, nargs="+", default=[1_000, 10_000, 100_000],
                   help="trajectory counts")
    p.add_argument("--transitions", type=int, default=1_000_000, help="N rows in the buffer")
    p.add_argument("--batch", type=int, default=256, help="B draws per step")
    p.add_argument("--horizon", type=int, default=5, help="chunk length H")
    p.add_argument("--steps", type=int, default=100, help="scan length K for our sampler")
    p.add_argument("--ref-steps", type=int, default=20, help="timed reference steps")
    p.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    p.add_argument("--seed", type=int, default=0)


def _dataset(n_rows: int, n_eps: int, rng: np.random.Generator):
    cuts = np.sort(rng.choice(np.arange(1, n_rows), n_eps - 1, replace=False))
    term = np.zeros(n_rows, np.float32)
    term[cuts - 1] = 1
    term[-1] = 1
    rewards = (rng.uniform(size=n_rows) < 0.01).astype(np.float32) - 1.0
    succ = (rewards == 0).astype(np.float32)
    return rewards, term, succ


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_ours(rewards, term, succ, args) -> dict[str, float]:
    n_rows = len(rewards)
    obs = np.zeros((n_rows, 1), np.float32)
    t0 = time.perf_counter()
    st = store.build(obs, np.zeros((n_rows, 1), np.float32), rewards, term, obs,
                     successes=succ, num_streams=1, rows_per_stream=1024,
                     episodes_per_stream=64, max_episode_length=1024)
    tper = priorities.TPERConfig(metric="td_error_rank", warmup_steps=0)
    cfg = samplers.SamplerConfig(kind="tper", horizon=args.horizon, tper=tper)
    state = samplers.init_replay(st, cfg)
    build_s = time.perf_counter() - t0
    sample = samplers.make_sampler(cfg)
    b = args.batch

    def step(state, key):
        k_s, k_td = jax.random.split(key)
        s = sample(state, k_s, b)
        td = jax.random.exponential(k_td, (b,))  # stands in for the critic's |δ|
        prio, st = priorities.update_priorities(state.priorities, state.store, s.episode_ids,
                                                td, tper)
        return state.replace(priorities=prio, store=st), s.probs[0]

    run = jax.jit(lambda s, ks: jax.lax.scan(step, s, ks), donate_argnums=0)
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.steps)
    t0 = time.perf_counter()
    state, _ = run(state, keys)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0

    def once():
        nonlocal state
        state, out = run(state, keys)
        jax.block_until_ready(out)

    step_s = _median_time(once, args.repeats) / args.steps

    # A finished episode: write one transition that ends an episode, then sync priorities.
    def finish(state):
        st = store.add_step(state.store, jnp.zeros((1, 1)), jnp.zeros((1, 1)), jnp.zeros(1),
                            jnp.zeros(1, bool), jnp.ones(1, bool), jnp.zeros((1, 1)),
                            jnp.zeros(1))
        prio, st = priorities.sync(state.priorities, st, tper)
        return state.replace(store=st, priorities=prio)

    fin = jax.jit(finish, donate_argnums=0)
    state = fin(state)
    jax.block_until_ready(state)

    def once_fin():
        nonlocal state
        state = fin(state)
        jax.block_until_ready(state)

    fin_s = _median_time(once_fin, max(args.repeats, 5))
    return {"step": step_s, "compile": compile_s, "episode_end": fin_s, "build": build_s}


def bench_reference(rewards, term, succ, args) -> dict[str, float]:
    ref = ReferenceTPERSampler(rewards, term, succ, args.horizon, metric="td_error_rank",
                               seed=args.seed)
    rng = np.random.default_rng(args.seed)

    def steps():
        for _ in range(args.ref_steps):
            ids, _ = ref.sample(args.batch)
            ref.update_td(ids, rng.exponential(size=args.batch))

    steps()  # warm caches
    step_s = _median_time(steps, args.repeats) / args.ref_steps
    fin_s = _median_time(ref.on_episode_end, args.repeats)
    return {"step": step_s, "episode_end": fin_s}


def run(args: argparse.Namespace) -> list[dict]:
    print(f"T-PER sampler benchmark — B={args.batch}, H={args.horizon}, "
          f"N={args.transitions:,} transitions, metric=td_error_rank")
    print(f"backend={jax.default_backend()} devices={jax.devices()} "
          f"cpu={platform.processor() or platform.machine()} jax={jax.__version__}")
    header = (f"{'n episodes':>10} | {'ours ms/step':>12} | {'ref ms/step':>11} | "
              f"{'speed-up':>8} | {'ours ms/ep-end':>14} | {'ref ms/ep-end':>13} | "
              f"{'speed-up':>8} | {'compile s':>9}")
    print(header)
    print("-" * len(header))
    rows = []
    for n in args.n:
        rng = np.random.default_rng(args.seed)
        data = _dataset(args.transitions, n, rng)
        ours = bench_ours(*data, args)
        ref = bench_reference(*data, args)
        row = {"n": n, "ours_ms": 1e3 * ours["step"], "ref_ms": 1e3 * ref["step"],
               "ours_end_ms": 1e3 * ours["episode_end"], "ref_end_ms": 1e3 * ref["episode_end"],
               "compile_s": ours["compile"]}
        rows.append(row)
        print(f"{n:>10,} | {row['ours_ms']:>12.3f} | {row['ref_ms']:>11.3f} | "
              f"{row['ref_ms'] / row['ours_ms']:>7.1f}x | {row['ours_end_ms']:>14.3f} | "
              f"{row['ref_end_ms']:>13.3f} | {row['ref_end_ms'] / row['ours_end_ms']:>7.1f}x | "
              f"{row['compile_s']:>9.1f}", flush=True)
    return rows
