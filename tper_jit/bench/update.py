"""ACFQL gradient steps/s: our fused chunk vs the reference's per-step pattern.

- **fused**: ``K`` steps of sample → gather → ``acfql.update`` inside one jitted ``lax.scan``,
  state donated (the offline trainer's chunk).
- **per-step (reference pattern)**: every step, numpy samples a chunk batch on the host
  (vectorised index arithmetic over the flat arrays, as the reference's ``sample_sequence``),
  copies it to the device, and calls one jitted ``acfql.update``.

Both use the same networks, batch size, horizon and data, measured in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from tper_jit.agents import acfql
from tper_jit.agents.precision import PRECISIONS
from tper_jit.bench.agents import AGENT_ROWS, print_rows
from tper_jit.bench.timing import time_calls
from tper_jit.replay import gather, samplers, store


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--obs-dim", type=int, default=28)
    p.add_argument("--action-dim", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--horizon", type=int, default=5)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512, 512, 512])
    p.add_argument("--rows", type=int, default=100_000, help="offline transitions")
    p.add_argument("--chunk", type=int, default=20, help="K steps per fused chunk")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", nargs="+", default=["f32", "bf16"], choices=PRECISIONS,
                   help="--agent.precision values of the fused rows (the first is the "
                        "baseline of the ratios; the per-step reference runs in f32)")
    p.add_argument("--agents", nargs="*", default=list(AGENT_ROWS), choices=AGENT_ROWS,
                   help="extra fused rows for other agents / options (none: ACFQL only)")
    p.add_argument("--utd", type=int, default=20, help="RLPD critic steps per update")
    p.add_argument("--critic-d-model", type=int, default=128,
                   help="acfql-transformer row: token width")
    p.add_argument("--critic-heads", type=int, default=8, help="acfql-transformer row: heads")
    p.add_argument("--critic-layers", type=int, default=2, help="acfql-transformer row: blocks")


def _data(args, rng):
    n = args.rows
    term = np.zeros(n, np.float32)
    term[np.arange(199, n, 200)] = 1
    term[-1] = 1
    obs = rng.normal(size=(n, args.obs_dim)).astype(np.float32)
    act = rng.uniform(-1, 1, (n, args.action_dim)).astype(np.float32)
    rew = (rng.uniform(size=n) < 0.05).astype(np.float32) - 1.0
    return obs, act, rew, term


def numpy_sample_sequence(obs, act, rew, term, masks, rng, batch, horizon, discount):
    """The reference's host sampler: flat uniform starts, index arithmetic, cumulative sums."""
    n = len(rew)
    idx = rng.integers(0, n - horizon, batch)
    rows = idx[:, None] + np.arange(horizon)[None]
    r = rew[rows] * discount ** np.arange(horizon)[None]
    terminals = np.maximum.accumulate(term[rows], axis=1)
    valid = 1.0 - np.concatenate([np.zeros((batch, 1)), terminals[:, :-1]], axis=1)
    return {
        "observations": obs[idx], "actions": act[rows], "rewards": np.cumsum(r, axis=1),
        "masks": np.minimum.accumulate(masks[rows], axis=1), "terminals": terminals,
        "valid": valid, "next_observations": obs[np.minimum(rows[:, -1] + 1, n - 1)],
    }


def to_chunk_batch(b: dict[str, np.ndarray], action_dim: int) -> gather.ChunkBatch:
    """Host numpy chunk arrays → a device ``ChunkBatch`` (one host→device copy per field);
    the fields the reference sampler does not produce are zeros."""
    batch, horizon = b["rewards"].shape
    return gather.ChunkBatch(
        **{k: jnp.asarray(v, jnp.float32) for k, v in b.items()},
        next_actions=jnp.zeros((batch, horizon, action_dim)),
        next_actions_valid=jnp.zeros((batch,)), successes=jnp.zeros((batch, horizon)),
        episode_ids=jnp.zeros((batch,), jnp.int32), starts=jnp.zeros((batch,), jnp.int32))


def fused_step_timer(agent, cfg: acfql.ACFQLConfig, data, args):
    """``(timer, compile_s)``: ``timer()`` runs ``args.repeats`` fused chunks (K =
    ``args.chunk`` steps of transition-uniform sample → gather → ``acfql.update`` in one
    jitted scan, state donated) and returns the seconds per gradient step of each.  ``data`` =
    (obs (N, d), act (N, a), rew (N,), term (N,))."""
    obs, act, rew, term = data
    st = store.build(obs, act, rew, term, obs)
    scfg = samplers.SamplerConfig(kind="transition", horizon=args.horizon)
    replay = samplers.init_replay(st, scfg)
    sample = samplers.make_sampler(scfg)

    def step(carry, _):
        agent, replay, key = carry
        key, k_s, k_u = jax.random.split(key, 3)
        s = sample(replay, k_s, args.batch)
        batch = gather.gather_chunks(replay.store, s.episode_ids, s.starts, args.horizon,
                                     cfg.discount)
        agent, metrics, _ = acfql.update(agent, batch, k_u)
        return (agent, replay, key), metrics["critic/critic_loss"]

    fused = jax.jit(lambda c: jax.lax.scan(step, c, None, length=args.chunk),
                    donate_argnums=0)
    carry, compile_s, _ = time_calls(fused, (agent, replay, jax.random.PRNGKey(2)), 0)

    def timer() -> list[float]:
        nonlocal carry
        carry, _, times = time_calls(fused, carry, args.repeats)
        return [t / args.chunk for t in times]

    return timer, compile_s


def fused_step_times(agent, cfg: acfql.ACFQLConfig, data, args) -> tuple[list[float], float]:
    """Seconds per gradient step of ``args.repeats`` fused chunks, and the compile seconds."""
    timer, compile_s = fused_step_timer(agent, cfg, data, args)
    return timer(), compile_s


def acfql_step_timer(hidden: tuple[int, ...], batch: int, horizon: int, repeats: int,
                     seed: int = 0, rows: int = 100_000, chunk: int = 20):
    """``timer() -> median seconds`` of one fused ACFQL gradient step (``bench update``'s
    defaults: obs 28, act 5) with ``hidden`` networks and batch ``batch``; compiled once, so
    it can be called next to each measurement it is compared with."""
    args = argparse.Namespace(obs_dim=28, action_dim=5, batch=batch, horizon=horizon,
                              rows=rows, chunk=chunk, repeats=repeats)
    obs, act, rew, term = _data(args, np.random.default_rng(seed))
    cfg = acfql.ACFQLConfig(hidden_dims=tuple(hidden), horizon_length=horizon,
                            batch_size=batch)
    agent = acfql.init(jax.random.PRNGKey(seed), args.obs_dim, args.action_dim, cfg)
    timer, _ = fused_step_timer(agent, cfg, (obs, act, rew, term), args)
    return lambda: float(np.median(timer()))


def run(args: argparse.Namespace) -> dict[str, float]:
    rng = np.random.default_rng(args.seed)
    obs, act, rew, term = _data(args, rng)
    masks = 1.0 - term
    cfg = acfql.ACFQLConfig(hidden_dims=tuple(args.hidden), horizon_length=args.horizon,
                            batch_size=args.batch)
    agent = acfql.init(jax.random.PRNGKey(args.seed), args.obs_dim, args.action_dim, cfg)
    print(f"ACFQL update benchmark — hidden {tuple(args.hidden)}, B={args.batch}, "
          f"H={args.horizon}, obs {args.obs_dim}, act {args.action_dim}, {args.rows:,} rows")
    print(f"backend={jax.default_backend()} devices={jax.devices()} "
          f"cpu={platform.processor() or platform.machine()} jax={jax.__version__}")

    # (b) reference pattern: host sampling + transfer + one jitted update per step
    upd = jax.jit(acfql.update)
    key = jax.random.PRNGKey(1)
    def ref_step(agent, key):
        key, k = jax.random.split(key)
        b = numpy_sample_sequence(obs, act, rew, term, masks, rng, args.batch, args.horizon,
                                  cfg.discount)
        agent, metrics, _ = upd(agent, to_chunk_batch(b, args.action_dim), k)
        return agent, key, metrics

    t0 = time.perf_counter()
    a_ref, key, m = ref_step(agent, key)
    jax.block_until_ready(m)
    ref_compile = time.perf_counter() - t0
    ref_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.chunk):
            a_ref, key, m = ref_step(a_ref, key)
        jax.block_until_ready(m)
        ref_times.append((time.perf_counter() - t0) / args.chunk)

    # (a) fused: sample → gather → update inside one jitted scan, state donated
    def fused_time(agent):
        times, compile_s = fused_step_times(agent, agent.config, (obs, act, rew, term), args)
        return float(np.median(times)), compile_s

    fused = {}
    for prec in dict.fromkeys(["f32", *args.precision]):
        a = agent if prec == "f32" else acfql.init(
            jax.random.PRNGKey(args.seed), args.obs_dim, args.action_dim,
            dataclasses.replace(cfg, precision=prec))
        fused[prec] = fused_time(a)
    ref_s, fused_s = float(np.median(ref_times)), fused["f32"][0]
    print(f"{'pattern':<34} | {'steps/s':>9} | {'ms/step':>8} | {'compile s':>9}")
    print("-" * 70)
    print(f"{'per-step (host numpy + 1 jit call)':<34} | {1 / ref_s:>9.2f} | "
          f"{1e3 * ref_s:>8.2f} | {ref_compile:>9.1f}")
    for prec in dict.fromkeys(["f32", *args.precision]):
        t, c = fused[prec]
        name = f"fused lax.scan chunk (K={args.chunk}){'' if prec == 'f32' else ', ' + prec}"
        print(f"{name:<34} | {1 / t:>9.2f} | {1e3 * t:>8.2f} | {c:>9.1f}")
    print(f"speed-up of the fused chunk: {ref_s / fused_s:.2f}x")
    result = {"ref_steps_per_s": 1 / ref_s, "fused_steps_per_s": 1 / fused_s,
              "ratio": ref_s / fused_s}
    for prec in args.precision:
        if prec != "f32":
            ratio = fused_s / fused[prec][0]
            print(f"{prec} / f32 speed-up of the fused chunk (same run): {ratio:.2f}x")
            result[f"{prec}_ratio"] = ratio
    if args.agents:
        print()
        result["agents"] = print_rows(args, obs, act, rew, term, fused_s)
    return result
