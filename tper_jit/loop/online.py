"""The online phase inside the jitted chunk: MJX rollouts, replay writes, T-PER, updates.

``make_observe_and_learn`` (steps 3–4 below) is shared with the host-env bridge
(``host.py``), which steps non-JAX envs between jitted calls.

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
import numpy as np
from flax import struct

from tper_jit.agents import registry
from tper_jit.loop.learn_step import LearnCarry, learn_step, make_learn_spec
from tper_jit.loop.sampling import online_sampler_config
from tper_jit.plots import priority_histogram
from tper_jit.replay import priorities, samplers, store
from tper_jit.replay.store import ONLINE
from tper_jit.seed_axis import seed_cond
from tper_jit.tasks.resolve import RewardRule


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


def observe(state: OnlineState, tr, rewards: RewardRule,
            tper: priorities.TPERConfig | None = None):
    """Step 3 of an iteration: the valid sub-steps of ``tr`` (``(N, H, ...)``) into the
    replay with the task's reward rule (the offline rows' convention, ``--sparse`` included),
    the env-step count, the T-PER rank sync (``tper`` given) and the episode metrics.

    Returns ``(state, ep_return (N,), ep_length (N,), env metrics)``; the running episode
    statistics are returned, not stored, so the caller keeps them with the new env state."""
    r = rewards(tr.reward)
    replay = state.replay
    st = store.add_steps(replay.store, tr.obs, tr.action, r, tr.terminated, tr.truncated,
                         tr.next_obs, tr.success, tr.valid)
    env_steps = state.env_steps + tr.valid.sum().astype(jnp.int32)
    replay = replay.replace(store=st, online_step=env_steps)
    if tper is not None:
        prio, st = priorities.sync_if_changed(replay.priorities, replay.store, tper)
        replay = replay.replace(priorities=prio, store=st)
    ep_return, ep_length, env_metrics = _env_episode_metrics(tr, r, state.ep_return,
                                                             state.ep_length)
    return state.replace(replay=replay, env_steps=env_steps), ep_return, ep_length, env_metrics


def make_observe_and_learn(n_envs: int, acfg: Any, scfg: samplers.SamplerConfig, cfg,
                           rewards: RewardRule):
    """``observe_and_learn(state, tr, env_state, k_learn) -> (state, metrics)``: steps 3–4 of
    an iteration for the executed chunk ``tr`` (``Transition`` ``(N, H, ...)``): replay
    writes, T-PER sync, episode metrics, then the gradient steps (or none before
    ``start_training``).  ``env_state`` (the state to act from next) is stored as is.  Shared
    by the MJX scan body and the host-env bridge (``host.py``), so both learn alike."""
    agent_spec = registry.spec_of(acfg)
    h_exec = agent_spec.exec_horizon(acfg)
    grad_steps = agent_spec.updates_per_env_step(acfg, cfg.utd_ratio) * n_envs * h_exec
    use_tper = scfg.kind == "tper"
    tper_cfg = scfg.tper
    spec = make_learn_spec(agent_spec, acfg, scfg, "online_agent",
                           update_mu=cfg.use_ptr_online_priority)

    def learn_step_(carry, key):
        carry, metrics = learn_step(spec, LearnCarry(*carry), jax.random.split(key))
        return (carry.agent, carry.replay), metrics

    def learn(agent, replay, key):
        keys = jax.random.split(key, grad_steps)
        (agent, replay), metrics = jax.lax.scan(learn_step_, (agent, replay), keys)
        return agent, replay, jax.tree.map(lambda m: m.mean(0), metrics)

    def skip(agent, replay, key):
        # Before `start_training` env steps: no update, zero metrics of the same structure.
        shapes = jax.eval_shape(learn, agent, replay, key)[2]
        return agent, replay, jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)

    def observe_and_learn(state: OnlineState, tr, env_state, k_learn):
        state, ep_return, ep_length, env_metrics = observe(state, tr, rewards, tper_cfg
                                                           if use_tper else None)
        training = state.env_steps >= cfg.start_training
        agent, replay, metrics = seed_cond(training, learn, skip, state.agent, state.replay,
                                           k_learn)
        metrics = {**metrics, **env_metrics,
                   "online_agent/training": training.astype(jnp.float32)}
        new = state.replace(agent=agent, replay=replay, env_state=env_state,
                            step=state.step + jnp.where(training, grad_steps, 0),
                            ep_return=ep_return, ep_length=ep_length)
        return new, metrics

    return observe_and_learn


def make_iteration(venv, acfg: Any, scfg: samplers.SamplerConfig, cfg, rewards: RewardRule):
    """The scan body of the MJX online chunk (see the module docstring)."""
    n_envs = venv.num_envs
    h_exec = registry.exec_horizon(acfg)
    act = registry.act_fn(acfg)
    observe_and_learn = make_observe_and_learn(n_envs, acfg, scfg, cfg, rewards)

    def iteration(state: OnlineState, _):
        key, k_act, k_learn = jax.random.split(state.key, 3)
        obs = state.env_state.obs
        actions = act(state.agent, obs, k_act).reshape(n_envs, h_exec, -1)
        env_state, tr = venv.step(state.env_state, actions)
        return observe_and_learn(state.replace(key=key), tr, env_state, k_learn)

    return iteration

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


def make_online_scan(cfg, acfg, venv, rewards: RewardRule):
    """``(scan(state) -> (state, metrics (K, ...)), K, env steps per iteration, sampler)``,
    not jitted (the multi-seed driver vmaps it)."""
    h_exec = registry.exec_horizon(acfg)
    scfg = online_sampler_config(cfg, acfg.horizon_length)
    iteration = make_iteration(venv, acfg, scfg, cfg, rewards)
    per_iter = venv.num_envs * h_exec
    k = max(1, cfg.log_interval // per_iter)
    return (lambda s: jax.lax.scan(iteration, s, None, length=k)), k, per_iter, scfg


def make_online_chunk(cfg, acfg, venv, rewards: RewardRule):
    """``(chunk(state) -> (state, metrics (K, ...)), K, env steps per iteration)``."""
    scan, k, per_iter, scfg = make_online_scan(cfg, acfg, venv, rewards)
    return jax.jit(scan, donate_argnums=0), k, per_iter, scfg


def priority_plot(state: OnlineState, path, env_steps: int):
    st = state.replay.store
    p = np.asarray(priorities.slot_probabilities(state.replay.priorities))
    online = np.asarray(st.episodes.source) == ONLINE
    return priority_histogram(p, path, title=f"T-PER p(τ) after {env_steps} env steps",
                              online_mask=online)


def weighted_chunk_means(metrics: dict[str, jax.Array]) -> dict[str, float]:
    """Host view of an online chunk: agent metrics averaged over the iterations that trained;
    env metrics from sums (per finished episode)."""
    m = {k: np.asarray(v) for k, v in metrics.items()}
    training = m.pop("online_agent/training")
    out: dict[str, float] = {"online_agent/training_fraction": float(training.mean())}
    n_train = training.sum()
    for k, v in m.items():
        if k.startswith(("online_agent/", "ptr/")):
            if n_train > 0:
                out[k] = float((v * training).sum() / n_train)
        elif not k.startswith("env/"):
            out[k] = float(v.mean())
    ended = m["env/episodes_ended"].sum()
    out["env/episodes_ended"] = float(ended)
    if ended > 0:
        out["env/episode.return"] = float(m["env/episode.return_sum"].sum() / ended)
        out["env/episode.length"] = float(m["env/episode.length_sum"].sum() / ended)
        out["env/success_rate"] = float(m["env/success_sum"].sum() / ended)
    return out
