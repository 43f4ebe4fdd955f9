"""The online phase inside the jitted chunk: MJX rollouts, replay writes, T-PER, updates.

``make_observe_and_learn`` (steps 3–4 below) is shared with the host-env bridge
(``host_online.py``), which steps non-JAX envs between jitted calls.

One *iteration* (the scan body), for N vectorised MJX envs:

1. act: one H-step chunk per env from the current actor (every env's queue is empty at the
   start of an iteration because a whole chunk is executed open-loop inside it);
2. env: ``ChunkedVecEnv.step`` runs the H sub-steps; after an episode ends the rest of the
   chunk is dropped (``valid`` False) and the env auto-resets;
3. replay: the valid sub-steps are written to each env's stream of the ``TrajectoryStore``
   (an ending episode enters the episode table; T-PER syncs its rank index);
4. learn: once ``start_training`` env steps exist, G = ``utd_ratio · N · H`` gradient steps,
   each sample → gather → ACFQL update → T-PER EMA of μ from the per-sample |δ| (masked where
   the chunk's last step is padding) → metrics.

A chunk is ``jit(lax.scan(iteration, K))`` with the state donated; the host only logs,
evaluates and plots between chunks.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from tper_jit.replay import gather, gather_seq, priorities, sample_stats, samplers, store
from tper_jit.seed_axis import seed_cond
from tper_jit.train import agent_setup


@struct.dataclass
class OnlineState:
    agent: Any  # acfql.AgentState
    replay: samplers.ReplayState
    env_state: Any  # envs_mjx State with a leading (N,) axis
    key: jax.Array
    step: jax.Array  # int32 gradient steps (offline + online)
    env_steps: jax.Array  # int32 online env steps (valid sub-steps over all envs)
    ep_return: jax.Array  # (N,) float32 return of each env's running episode
    ep_length: jax.Array  # (N,) int32


def online_sampler_config(cfg, horizon: int) -> samplers.SamplerConfig:
    """``--use_ptr_backward`` → T-PER (transition-uniform during warmup);
    ``--symmetric_sampling`` → RLPD's offline/online mixture; else transition-uniform."""
    from tper_jit.train.offline import tper_config

    kind = ("tper" if cfg.use_ptr_backward else
            "mixture" if cfg.symmetric_sampling else "transition")
    return samplers.SamplerConfig(kind=kind, horizon=horizon, tper=tper_config(cfg),
                                  offline_fraction=cfg.offline_fraction)


def _env_episode_metrics(tr, rewards, ep_return, ep_length):
    """Running returns per env; metrics of the episodes that ended in this chunk."""
    valid = tr.valid
    ended_step = (tr.terminated | tr.truncated) & valid  # (N, H)
    r = jnp.where(valid, rewards, 0.0)
    # Return of an episode ending at sub-step h = running return + rewards up to h.
    csum = jnp.cumsum(r, axis=1) + ep_return[:, None]
    clen = jnp.cumsum(valid.astype(jnp.int32), axis=1) + ep_length[:, None]
    ended = ended_step.any(axis=1)
    fin_return = jnp.sum(jnp.where(ended_step, csum, 0.0), axis=1)
    fin_length = jnp.sum(jnp.where(ended_step, clen, 0), axis=1)
    fin_success = jnp.any(tr.success & valid, axis=1) & ended  # success ends the episode
    # After an end inside the chunk the rest is dropped, so the new episode starts at 0.
    new_return = jnp.where(ended, 0.0, ep_return + r.sum(1))
    new_length = jnp.where(ended, 0, ep_length + valid.sum(1))
    n_end = ended.sum()
    denom = jnp.maximum(n_end, 1)
    metrics = {
        "env/episodes_ended": n_end.astype(jnp.float32),
        "env/episode.return_sum": jnp.sum(jnp.where(ended, fin_return, 0.0)),
        "env/episode.length_sum": jnp.sum(jnp.where(ended, fin_length, 0)).astype(jnp.float32),
        "env/success_sum": jnp.sum(fin_success).astype(jnp.float32),
        "env/episode.return_mean_in_step": jnp.sum(jnp.where(ended, fin_return, 0.0)) / denom,
    }
    return new_return, new_length, metrics


def make_observe_and_learn(n_envs: int, acfg: Any, scfg: samplers.SamplerConfig, cfg,
                           reward_shift: float):
    """``observe_and_learn(state, tr, env_state, k_learn) -> (state, metrics)``: steps 3–4 of
    an iteration for the executed chunk ``tr`` (``Transition`` ``(N, H, ...)``): replay
    writes, T-PER sync, episode metrics, then the gradient steps (or none before
    ``start_training``).  ``env_state`` (the state to act from next) is stored as is.  Shared
    by the MJX scan body and the host-env bridge (``host_online.py``), so both learn alike."""
    sample = samplers.make_sampler(scfg)
    h_exec = agent_setup.exec_horizon(acfg)
    grad_steps = agent_setup.updates_per_env_step(acfg, cfg.utd_ratio) * n_envs * h_exec
    batch_size = agent_setup.rows_per_update(acfg)
    update = agent_setup.module_of(acfg).update
    use_tper = scfg.kind == "tper"
    update_mu = use_tper and cfg.use_ptr_online_priority
    tper_cfg = scfg.tper

    def learn_step(carry, key):
        agent, replay = carry
        k_sample, k_update = jax.random.split(key)
        s = sample(replay, k_sample, batch_size)
        batch = gather.gather_chunks(replay.store, s.episode_ids, s.starts, acfg.horizon_length,
                                     acfg.discount)
        if getattr(acfg, "critic", "mlp") == "transformer":  # §9: every s_{t+j}
            batch = gather_seq.add_seq_observations(replay.store, batch)
        agent, metrics, td_abs = update(agent, batch, k_update)
        metrics = {f"online_agent/{k}": v for k, v in metrics.items()}
        if use_tper:
            metrics.update(sample_stats.priority_sample_stats(replay, s))
        if update_mu:
            # Padded chunks (valid_H = 0) carry no information about their episode's error.
            mask = batch.valid[:, -1] > 0
            prio, st = priorities.update_priorities(replay.priorities, replay.store,
                                                    s.episode_ids, td_abs, tper_cfg, mask)
            replay = replay.replace(priorities=prio, store=st)
        metrics["online_agent/td_abs_mean"] = td_abs.mean()
        return (agent, replay), metrics

    def learn(agent, replay, key):
        keys = jax.random.split(key, grad_steps)
        (agent, replay), metrics = jax.lax.scan(learn_step, (agent, replay), keys)
        return agent, replay, jax.tree.map(lambda m: m.mean(0), metrics)

    def skip(agent, replay, key):
        # Before `start_training` env steps: no update, zero metrics of the same structure.
        shapes = jax.eval_shape(learn, agent, replay, key)[2]
        return agent, replay, jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)

    def observe_and_learn(state: OnlineState, tr, env_state, k_learn):
        rewards = tr.reward + reward_shift
        replay = state.replay
        st = store.add_steps(replay.store, tr.obs, tr.action, rewards, tr.terminated,
                             tr.truncated, tr.next_obs, tr.success, tr.valid)
        env_steps = state.env_steps + tr.valid.sum().astype(jnp.int32)
        replay = replay.replace(store=st, online_step=env_steps)
        if use_tper:
            prio, st = priorities.sync(replay.priorities, replay.store, tper_cfg)
            replay = replay.replace(priorities=prio, store=st)
        ep_return, ep_length, env_metrics = _env_episode_metrics(
            tr, rewards, state.ep_return, state.ep_length)
        training = env_steps >= cfg.start_training
        agent, replay, metrics = seed_cond(training, learn, skip, state.agent, replay, k_learn)
        metrics = {**metrics, **env_metrics,
                   "online_agent/training": training.astype(jnp.float32)}
        new = state.replace(agent=agent, replay=replay, env_state=env_state,
                            step=state.step + jnp.where(training, grad_steps, 0),
                            env_steps=env_steps, ep_return=ep_return, ep_length=ep_length)
        return new, metrics

    return observe_and_learn


def make_iteration(venv, acfg: Any, scfg: samplers.SamplerConfig, cfg,
                   reward_shift: float):
    """The scan body of the MJX online chunk (see the module docstring)."""
    n_envs = venv.num_envs
    h_exec = agent_setup.exec_horizon(acfg)
    act = agent_setup.act_fn(acfg)
    observe_and_learn = make_observe_and_learn(n_envs, acfg, scfg, cfg, reward_shift)

    def iteration(state: OnlineState, _):
        key, k_act, k_learn = jax.random.split(state.key, 3)
        obs = state.env_state.obs
        actions = act(state.agent, obs, k_act).reshape(n_envs, h_exec, -1)
        env_state, tr = venv.step(state.env_state, actions)
        return observe_and_learn(state.replace(key=key), tr, env_state, k_learn)

    return iteration
