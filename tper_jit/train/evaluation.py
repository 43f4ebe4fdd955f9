"""Evaluation in MJX: M episodes in parallel with the current actor, one jitted call.

Chunks are executed open-loop (H env steps per policy call, the rest dropped at the end of an
episode); each env plays exactly one episode.  Deterministic given the key.  Success = the
episode reached success at any step; returns are the environment's own rewards.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tper_jit.agents import acfql


def make_evaluate(venv, horizon_exec: int):
    """``evaluate(agent, key) -> dict`` of scalars: ``eval/success_rate`` (and the seed's alias
    ``eval/success``), ``eval/episode.return``, ``eval/episode.length``."""
    m = venv.num_envs
    n_calls = -(-venv.episode.episode_length // horizon_exec)

    def evaluate(agent, key):
        k_reset, k_policy = jax.random.split(key)
        state = venv.reset(k_reset)
        zeros = jnp.zeros((m,))

        def body(carry, k):
            state, alive, ret, length, succ = carry
            actions = acfql.act(agent, state.obs, k).reshape(m, horizon_exec, -1)
            state, tr = venv.step(state, actions)
            valid = tr.valid & alive[:, None]
            ret = ret + jnp.where(valid, tr.reward, 0.0).sum(1)
            length = length + valid.sum(1)
            succ = succ | (tr.success & valid).any(1)
            alive = alive & ~((tr.terminated | tr.truncated) & valid).any(1)
            return (state, alive, ret, length, succ), None

        init = (state, jnp.ones((m,), bool), zeros, zeros, jnp.zeros((m,), bool))
        (_, _, ret, length, succ), _ = jax.lax.scan(body, init,
                                                    jax.random.split(k_policy, n_calls))
        rate = succ.mean()
        return {"eval/success_rate": rate, "eval/success": rate,
                "eval/episode.return": ret.mean(), "eval/episode.length": length.mean()}

    return jax.jit(evaluate)
