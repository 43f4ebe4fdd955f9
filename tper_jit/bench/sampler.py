"""T-PER sampler: one sample + priority update, fused JAX vs the reference's numpy procedure.

For each trajectory count n (N transitions split into n episodes of random lengths) both
sides run the online-phase T-PER step with ``metric=td_error_rank``, B draws:

- ours: ``sample`` (position-tree descent + start rule) → ``update_priorities`` (EMA of μ
  from the B per-sample |δ|, pending buffer, the rank refresh every ⌊P/B⌋ steps), run as K
  steps of one jitted ``lax.scan`` as the trainer does (per-step time = total / K, refreshes
  included); also with ``refresh_fraction=0`` (refresh every step: the exact law each step).
  |δ| is a cheap deterministic function of the draw (in training it comes from the update;
  an RNG draw here would be timed as sampler cost);
- reference: ``ReferenceTPERSampler.sample`` (Python loop over trajectories, argsort,
  ``np.random.choice``, Python start loop) + ``update_td``;
- the scale: one fused ACFQL gradient step (``bench update``'s chunk, ``--update-hidden``
  networks, batch ``--update-batch``) measured in the same run; ``% of update`` = ours / it.

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
from scipy import stats

from tper_jit.bench.reference_tper import ReferenceTPERSampler
from tper_jit.bench.update import acfql_step_timer
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
    p.add_argument("--update-hidden", type=int, nargs="+", default=[256, 256],
                   help="ACFQL networks of the update the sampler is compared with")
    p.add_argument("--update-batch", type=int, default=256, help="batch of that update")
    p.add_argument("--update-rows", type=int, default=100_000, help="its offline rows")
    p.add_argument("--staleness", action="store_true",
                   help="also print TV(buffered law, exact law) just before a refresh")


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


def _setup(rewards, term, succ, args, **tper_kw):
    n_rows = len(rewards)
    obs = np.zeros((n_rows, 1), np.float32)
    st = store.build(obs, np.zeros((n_rows, 1), np.float32), rewards, term, obs,
                     successes=succ, num_streams=1, rows_per_stream=1024,
                     episodes_per_stream=64, max_episode_length=1024)
    tper = priorities.TPERConfig(metric="td_error_rank", warmup_steps=0, **tper_kw)
    cfg = samplers.SamplerConfig(kind="tper", horizon=args.horizon, tper=tper)
    return samplers.init_replay(st, cfg), cfg


def _scan_steps(cfg, batch: int):
    """Jitted ``(state, keys (K,)) -> (state, p (K,))``: K sampler steps."""
    sample = samplers.make_sampler(cfg)

    def step(state, key):
        s = sample(state, key, batch)
        td = jnp.abs(jnp.sin(7.0 * s.episode_ids + 3.0 * s.starts)) + 1e3 * s.probs  # "|δ|"
        prio, st = priorities.update_priorities(state.priorities, state.store, s.episode_ids,
                                                td, cfg.tper)
        return state.replace(priorities=prio, store=st), s.probs[0]

    return jax.jit(lambda s, ks: jax.lax.scan(step, s, ks), donate_argnums=0)


def bench_ours(rewards, term, succ, args, **tper_kw) -> dict[str, float]:
    t0 = time.perf_counter()
    state, cfg = _setup(rewards, term, succ, args, **tper_kw)
    tper = cfg.tper
    build_s = time.perf_counter() - t0
    run = _scan_steps(cfg, args.batch)
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
    cap = state.priorities.pending.shape[0]
    k = max(1, cap // args.batch) if cap >= 2 * args.batch else 1
    return {"step": step_s, "compile": compile_s, "episode_end": fin_s, "build": build_s,
            "k": k}


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


def staleness_tv(rewards, term, succ, args, steps: int = 800, **tper_kw
                 ) -> tuple[float, int]:
    """TV distance between the buffered law and the exact law of the current μ, at the last
    step before a refresh (the stalest point), after ``steps`` warm-up steps; and k."""
    state, cfg = _setup(rewards, term, succ, args, **tper_kw)
    run = _scan_steps(cfg, args.batch)
    cap, b = state.priorities.pending.shape[0], args.batch
    k = max(1, cap // b) if cap >= 2 * b else 1
    state, _ = run(state, jax.random.split(jax.random.PRNGKey(args.seed), steps))
    to_go = ((k - 1) * b - int(state.priorities.num_pending)) // b
    if to_go > 0:
        state, _ = run(state, jax.random.split(jax.random.PRNGKey(args.seed + 1), to_go))
    s = np.asarray(priorities.scores(state.store, cfg.tper), np.float64)
    incl = s > -np.inf
    ranks = stats.rankdata(-s[incl], method="average") - 1
    w = (ranks + 1) ** -cfg.tper.alpha_rank
    exact = np.zeros(len(s))
    exact[incl] = (1 - cfg.tper.eps) * w / w.sum() + cfg.tper.eps / incl.sum()
    law = np.asarray(priorities.slot_probabilities(state.priorities), np.float64)
    return 0.5 * float(np.abs(law - exact).sum()), k


def run(args: argparse.Namespace) -> list[dict]:
    print(f"T-PER sampler benchmark — B={args.batch}, H={args.horizon}, "
          f"N={args.transitions:,} transitions, metric=td_error_rank")
    print(f"backend={jax.default_backend()} devices={jax.devices()} "
          f"cpu={platform.processor() or platform.machine()} jax={jax.__version__}")
    hidden = tuple(args.update_hidden)
    update_timer = acfql_step_timer(hidden, args.update_batch, args.horizon, args.repeats,
                                    args.seed, rows=args.update_rows)
    name = "x".join(map(str, hidden))
    print(f"% of update: ours / one fused ACFQL {name}, B={args.update_batch} gradient step, "
          "timed right after each row's sampler (machine load varies)")
    header = (f"{'n episodes':>10} | {'k':>3} | {'ours ms/step':>12} | {'update ms':>9} | "
              f"{'% of update':>11} | "
              f"{'exact ms/step':>13} | {'ref ms/step':>11} | {'speed-up':>8} | "
              f"{'ours ms/ep-end':>14} | {'ref ms/ep-end':>13} | {'speed-up':>8} | "
              f"{'compile s':>9}")
    print(header)
    print("-" * len(header))
    rows = []
    for n in args.n:
        rng = np.random.default_rng(args.seed)
        data = _dataset(args.transitions, n, rng)
        ours = bench_ours(*data, args)
        upd_s = update_timer()
        exact = bench_ours(*data, args, refresh_fraction=0.0)
        ref = bench_reference(*data, args)
        row = {"n": n, "k": ours["k"], "ours_ms": 1e3 * ours["step"],
               "exact_ms": 1e3 * exact["step"], "ref_ms": 1e3 * ref["step"],
               "update_ms": 1e3 * upd_s, "pct_of_update": 100 * ours["step"] / upd_s,
               "ours_end_ms": 1e3 * ours["episode_end"], "ref_end_ms": 1e3 * ref["episode_end"],
               "compile_s": ours["compile"]}
        rows.append(row)
        print(f"{n:>10,} | {row['k']:>3} | {row['ours_ms']:>12.3f} | "
              f"{row['update_ms']:>9.2f} | "
              f"{row['pct_of_update']:>10.2f}% | {row['exact_ms']:>13.3f} | "
              f"{row['ref_ms']:>11.3f} | {row['ref_ms'] / row['ours_ms']:>7.1f}x | "
              f"{row['ours_end_ms']:>14.3f} | {row['ref_end_ms']:>13.3f} | "
              f"{row['ref_end_ms'] / row['ours_end_ms']:>7.1f}x | {row['compile_s']:>9.1f}",
              flush=True)
    if args.staleness:
        for n in args.n:
            tv, k = staleness_tv(*_dataset(args.transitions, n, np.random.default_rng(args.seed)),
                                 args)
            print(f"staleness n={n:,}: refresh every {k} steps; TV(buffered law, exact law) "
                  f"at the step before a refresh = {tv:.4f}", flush=True)
    last = rows[-1]
    print(f"n={last['n']:,}: one sampler step = {last['pct_of_update']:.2f}% of the {name} "
          f"update, {last['ref_ms'] / last['ours_ms']:.1f}x faster than the numpy reference")
    return rows
