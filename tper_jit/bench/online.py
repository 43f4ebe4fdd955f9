"""Online phase throughput: the fused jitted chunk vs a host loop doing the same work.

- **fused**: ``K`` online iterations inside one ``jit(lax.scan)`` (``train/online.py``): N MJX
  envs execute one H-step action chunk each, the transitions go into the ``TrajectoryStore``,
  then ``utd · N · H`` gradient steps (T-PER sampling + priority updates).
- **host loop (reference pattern)**: the same MJX task stepped from Python one env step at a
  time (a jitted vmapped step per call), transitions appended to numpy arrays, and for each
  gradient step numpy chunk sampling + a host→device copy + one jitted ACFQL update.

Both run the same networks, batch, horizon, N and UTD in the same process; reported as env
steps/s and gradient steps/s with the ratio.
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from tper_jit.agents import acfql
from tper_jit.bench.update import numpy_sample_sequence, to_chunk_batch
from tper_jit.config.flags import TrainConfig
from tper_jit.data.common import make_synthetic_dataset
from tper_jit.loop.offline import make_offline_trainer
from tper_jit.loop.online import init_online_state, make_online_chunk
from tper_jit.tasks import mjx_tasks
from tper_jit.tasks.resolve import RewardRule


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", default="lift")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--horizon", type=int, default=5)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256, 256])
    p.add_argument("--iterations", type=int, default=4, help="online iterations per timing")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)


def _select(mask, on_true, on_false):
    return jax.tree.map(
        lambda a, b: jnp.where(mask.reshape((-1,) + (1,) * (a.ndim - 1)), a, b),
        on_true, on_false)


def run(args: argparse.Namespace) -> dict[str, float]:
    rng = np.random.default_rng(args.seed)
    n, h = args.num_envs, args.horizon
    per_iter = n * h
    cfg = TrainConfig(env_name=args.env, num_envs=n, horizon_length=h, start_training=0,
                      use_ptr_backward=True, use_ptr_online_priority=True, ptr_warmup_steps=0,
                      log_interval=per_iter * args.iterations, buffer_size=100_000,
                      wandb=False, progress=False,
                      agent={"hidden_dims": tuple(args.hidden), "batch_size": args.batch})
    venv = mjx_tasks.make_vec_env(args.env, n)
    ds = make_synthetic_dataset(venv.episode.observation_size, n=5000, episode_length=100,
                                seed=args.seed, env_name="bench")
    trainer = make_offline_trainer(cfg, ds, store_kwargs={
        "num_streams": n, "rows_per_stream": 100_000 // n,
        "max_episode_length": venv.episode.episode_length})
    acfg = trainer.agent_config
    print(f"online benchmark — env {args.env}, N={n} envs, H={h}, B={args.batch}, hidden "
          f"{tuple(args.hidden)}, utd 1 ({per_iter} env steps + {per_iter} gradient steps per "
          f"iteration)")
    print(f"backend={jax.default_backend()} devices={jax.devices()} "
          f"cpu={platform.processor() or platform.machine()} jax={jax.__version__}")

    # (a) fused chunk
    chunk, k, _, _ = make_online_chunk(cfg, acfg, venv, RewardRule(shift=-1.0))
    state = init_online_state(cfg, trainer.init_state, venv)
    t0 = time.perf_counter()
    state, m = chunk(state)
    jax.block_until_ready(m)
    fused_compile = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        e0, g0 = int(state.env_steps), int(state.step)
        state, m = chunk(state)
        jax.block_until_ready(m)
        dt = time.perf_counter() - t0
        times.append((dt, int(state.env_steps) - e0, int(state.step) - g0))
    dt, env_done, grad_done = min(times, key=lambda t: t[0])
    fused = {"env": env_done / dt, "grad": grad_done / dt, "compile": fused_compile}

    # (b) host loop, one env step and one update call at a time
    step_fn = jax.jit(jax.vmap(venv.episode.step))
    reset_fn = jax.jit(jax.vmap(venv.episode.reset_from))
    act_fn = jax.jit(acfql.act)
    upd = jax.jit(acfql.update)
    # The fused chunk donated (and so deleted) the initial state's buffers: fresh params.
    agent = acfql.init(jax.random.PRNGKey(args.seed), venv.episode.observation_size, 5, acfg)
    env_state = jax.jit(venv.reset)(jax.random.PRNGKey(1))
    buf = {k2: [] for k2 in ("obs", "act", "rew", "term", "next")}
    key = jax.random.PRNGKey(2)
    def host_iteration(agent, env_state, key):
        key, k_act = jax.random.split(key)
        chunks = np.asarray(act_fn(agent, env_state.obs, k_act)).reshape(n, h, -1)
        for i in range(h):  # one env step per call; queues dropped at episode ends
            nxt = step_fn(env_state, jnp.asarray(chunks[:, i]))
            done = np.asarray(nxt.done)
            buf["obs"].append(np.asarray(env_state.obs))
            buf["act"].append(chunks[:, i])
            buf["rew"].append(np.asarray(nxt.reward) - 1.0)
            buf["term"].append(done.astype(np.float32))
            buf["next"].append(np.asarray(nxt.obs))
            env_state = nxt
            if done.any():
                env_state = _select(jnp.asarray(done), reset_fn(env_state), env_state)
        obs = np.concatenate(buf["obs"])
        act = np.concatenate(buf["act"])
        rew = np.concatenate(buf["rew"])
        term = np.concatenate(buf["term"])
        for _ in range(per_iter):
            key, k_u = jax.random.split(key)
            b = numpy_sample_sequence(obs, act, rew, term, 1.0 - term, rng, args.batch, h,
                                      acfg.discount)
            agent, metrics, _ = upd(agent, to_chunk_batch(b, act.shape[1]), k_u)
        jax.block_until_ready(metrics)
        return agent, env_state, key

    t0 = time.perf_counter()
    agent, env_state, key = host_iteration(agent, env_state, key)
    host_compile = time.perf_counter() - t0
    best = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.iterations):
            agent, env_state, key = host_iteration(agent, env_state, key)
        best = min(best, time.perf_counter() - t0)
    host = {"env": args.iterations * per_iter / best, "grad": args.iterations * per_iter / best,
            "compile": host_compile}

    print(f"{'pattern':<40} | {'env steps/s':>11} | {'grad steps/s':>12} | {'first call s':>12}")
    print("-" * 84)
    print(f"{'host loop (1 env step / 1 update per call)':<40} | {host['env']:>11.1f} | "
          f"{host['grad']:>12.1f} | {host['compile']:>12.1f}")
    print(f"{'fused jit(scan) chunk (K=' + str(k) + ' iterations)':<40} | {fused['env']:>11.1f} | "
          f"{fused['grad']:>12.1f} | {fused['compile']:>12.1f}")
    print(f"speed-up of the fused chunk: {fused['grad'] / host['grad']:.2f}x gradient steps/s, "
          f"{fused['env'] / host['env']:.2f}x env steps/s")
    return {"fused_env": fused["env"], "fused_grad": fused["grad"], "host_env": host["env"],
            "host_grad": host["grad"]}
