"""Evaluation in MJX: M episodes in parallel with the current actor, one jitted call.

Chunks are executed open-loop (H env steps per policy call, the rest dropped at the end of an
episode); each env plays exactly one episode.  Deterministic given the key.  Success = the
episode reached success at any step; returns are the environment's own rewards.

Any policy can be evaluated: ``policy_init(params, env_state, key) -> pstate`` and
``policy_step(params, pstate, env_state, key) -> (pstate, actions (M, H, A))``; the ACFQL
actor is stateless (``acfql_policy``), a scripted oracle carries its phase machine.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tper_jit.agents import acfql


def acfql_policy(horizon_exec: int, act=None):
    """A stateless actor as a policy; ``act(agent, obs, key)`` defaults to ``acfql.act``."""
    act = act or acfql.act

    def init(agent, env_state, key):
        return ()

    def step(agent, pstate, env_state, key):
        obs = env_state.obs
        return pstate, act(agent, obs, key).reshape(obs.shape[0], horizon_exec, -1)

    return init, step


def make_evaluate(venv, horizon_exec: int, policy=None):
    """``evaluate(params, key) -> dict`` of scalars: ``eval/success_rate`` (and the seed's alias
    ``eval/success``), ``eval/episode.return``, ``eval/episode.length``.  ``policy`` defaults
    to the ACFQL actor (``params`` = its ``AgentState``)."""
    m = venv.num_envs
    n_calls = -(-venv.episode.episode_length // horizon_exec)
    policy_init, policy_step = policy or acfql_policy(horizon_exec)

    def evaluate(params, key):
        k_reset, k_init, k_policy = jax.random.split(key, 3)
        state = venv.reset(k_reset)
        pstate = policy_init(params, state, k_init)
        zeros = jnp.zeros((m,))

        def body(carry, k):
            state, pstate, alive, ret, length, succ = carry
            pstate, actions = policy_step(params, pstate, state, k)
            state, tr = venv.step(state, actions)
            valid = tr.valid & alive[:, None]
            ret = ret + jnp.where(valid, tr.reward, 0.0).sum(1)
            length = length + valid.sum(1)
            succ = succ | (tr.success & valid).any(1)
            alive = alive & ~((tr.terminated | tr.truncated) & valid).any(1)
            return (state, pstate, alive, ret, length, succ), None

        init = (state, pstate, jnp.ones((m,), bool), zeros, zeros, jnp.zeros((m,), bool))
        (_, _, _, ret, length, succ), _ = jax.lax.scan(body, init,
                                                       jax.random.split(k_policy, n_calls))
        rate = succ.mean()
        return {"eval/success_rate": rate, "eval/success": rate,
                "eval/episode.return": ret.mean(), "eval/episode.length": length.mean()}

    return jax.jit(evaluate)
