"""Builders of the online phase: state init, the scan / jitted chunk, the priority plot
(the loop itself is ``driver.Driver._online_phase``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tper_jit.replay.store import ONLINE
from tper_jit.train.online import OnlineState, make_iteration, online_sampler_config


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
