"""Host loop of the online phase: compiled chunks of iterations, logging, evaluation, plots."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from tper_jit.replay.store import ONLINE
from tper_jit.train.logger import Progress
from tper_jit.train.online import OnlineState, make_iteration, online_sampler_config

ONLINE_KEYS = ("online_agent/critic/critic_loss", "env/episode.return", "env/success_rate",
               "eval/success_rate")


def init_online_state(cfg, offline_state, venv, seed: int | None = None,
                      reset=None) -> OnlineState:
    """Carry the agent and replay over from the offline phase; fresh envs and keys from
    ``seed`` (default ``cfg.seed``).  ``reset``: a jitted ``venv.reset`` to reuse."""
    root = jax.random.PRNGKey(cfg.seed if seed is None else seed)
    n = venv.num_envs
    env_state = (reset or jax.jit(venv.reset))(jax.random.fold_in(root, 4))
    return OnlineState(agent=offline_state.agent, replay=offline_state.replay,
                       env_state=env_state, key=jax.random.fold_in(root, 5),
                       step=offline_state.step, env_steps=jnp.int32(0),
                       ep_return=jnp.zeros((n,), jnp.float32),
                       ep_length=jnp.zeros((n,), jnp.int32))


def make_online_scan(cfg, acfg, venv, reward_shift: float):
    """``(scan(state) -> (state, metrics (K, ...)), K, env steps per iteration, sampler)``,
    not jitted (the multi-seed driver vmaps it)."""
    h_exec = acfg.horizon_length if acfg.action_chunking else 1
    scfg = online_sampler_config(cfg, acfg.horizon_length)
    iteration = make_iteration(venv, acfg, scfg, cfg, reward_shift)
    per_iter = venv.num_envs * h_exec
    k = max(1, cfg.log_interval // per_iter)
    return (lambda s: jax.lax.scan(iteration, s, None, length=k)), k, per_iter, scfg


def make_online_chunk(cfg, acfg, venv, reward_shift: float):
    """``(chunk(state) -> (state, metrics (K, ...)), K, env steps per iteration)``."""
    scan, k, per_iter, scfg = make_online_scan(cfg, acfg, venv, reward_shift)
    return jax.jit(scan, donate_argnums=0), k, per_iter, scfg


def _priority_plot(state: OnlineState, path, env_steps: int):
    from tper_jit.plots import priority_histogram

    st = state.replay.store
    p = np.asarray(state.replay.priorities.tree.leaves)
    online = np.asarray(st.episodes.source) == ONLINE
    return priority_histogram(p, path, title=f"T-PER p(τ) after {env_steps} env steps",
                              online_mask=online)


def online_phase(cfg, trainer, offline_state, venv, logger, eval_fn, rows, run_dir,
                 reward_shift: float):
    from tper_jit.train.run import weighted_chunk_means

    acfg = trainer.agent_config
    state = init_online_state(cfg, offline_state, venv)
    chunk, k, per_iter, scfg = make_online_chunk(cfg, acfg, venv, reward_shift)
    progress = Progress(cfg.online_steps, "online", cfg.progress)
    env_steps, next_eval = 0, cfg.eval_interval
    plots = run_dir / "plots"
    while env_steps < cfg.online_steps:
        t0 = time.perf_counter()
        step0 = int(state.step)
        state, metrics = chunk(state)
        row = weighted_chunk_means(metrics)
        dt = time.perf_counter() - t0
        prev, env_steps = env_steps, int(state.env_steps)
        row["env/env_steps"] = float(env_steps)
        row["time/env_steps_per_sec"] = (env_steps - prev) / dt
        row["time/online_grad_steps_per_sec"] = (int(state.step) - step0) / dt
        due = env_steps >= next_eval or env_steps >= cfg.online_steps
        if eval_fn is not None and cfg.eval_interval and due:
            row.update(eval_fn(state.agent, cfg.offline_steps + env_steps))
            while next_eval <= env_steps:
                next_eval += cfg.eval_interval
            if scfg.kind == "tper":
                png = _priority_plot(state, plots / f"priorities_{env_steps:08d}.png",
                                     env_steps)
                logger.log_image("ptr/priority_histogram", png, cfg.offline_steps + env_steps)
        step = cfg.offline_steps + env_steps
        logger.log(step, row)
        rows.append({"step": step, **row})
        progress.update(env_steps, row, ONLINE_KEYS)
    return state
