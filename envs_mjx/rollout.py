"""Vmapped oracle rollouts (offline data) and the policy evaluation helper.

``oracle_rollout`` runs N oracle episodes in parallel as one ``jit(vmap(scan(step)))`` and
returns fixed-size arrays with a per-step ``valid`` mask (episodes end early on success).
``evaluate`` runs M episodes of a chunked policy ``(obs (M, O), key) -> (M, H, A)`` in
parallel (host loop over jitted chunk steps, as a trainer runs it between training chunks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from envs_mjx.wrappers import ChunkedVecEnv, EpisodeWrapper, _select


@struct.dataclass
class Episodes:
    """N episodes of at most T steps (``T = episode_length``).

    Row t of ``obs``/``qpos``/``qvel``/``success`` is the state before action t; row T is the
    state after the last step (frozen once the episode ended). Entries at ``t >= length``
    of step-indexed arrays are padding.
    """

    obs: jax.Array  # (N, T+1, O)
    qpos: jax.Array  # (N, T+1, nq)
    qvel: jax.Array  # (N, T+1, nv)
    success: jax.Array  # (N, T+1) bool
    actions: jax.Array  # (N, T, A)
    rewards: jax.Array  # (N, T)
    terminated: jax.Array  # (N, T) bool
    truncated: jax.Array  # (N, T) bool
    valid: jax.Array  # (N, T) bool
    length: jax.Array  # (N,) int32, number of valid steps
    strategy: jax.Array  # (N,) int32
    tier: jax.Array  # (N,) int32
    fail_mode: jax.Array  # (N,) int32
    phase: jax.Array  # (N, T) int32 oracle phase per step (diagnostics)


def _oracle_episode(env: EpisodeWrapper, key: jax.Array, tier: jax.Array):
    """One oracle episode: scan over ``episode_length`` steps, frozen after ``done``.

    The oracle is the module ``env.env.oracle`` (``init(env, state, key, tier)`` and
    ``act(env, oracle_state, state, key) -> (action, oracle_state)``).
    """
    oracle = env.env.oracle
    k_reset, k_oracle, k_steps = jax.random.split(key, 3)
    state = env.reset(k_reset)
    ostate = oracle.init(env.env, state, k_oracle, tier)

    def body(carry, k):
        st, os, alive = carry
        action, os_next = oracle.act(env.env, os, st, k)
        nxt = env.step(st, action)
        rec = (st.obs, st.data.qpos, st.data.qvel, st.success, action, nxt.reward,
               nxt.info["terminated"] & alive, nxt.info["truncated"] & alive, alive, os.phase)
        st = _select(alive, nxt, st)
        os = _select(alive, os_next, os)
        return (st, os, alive & ~nxt.done), rec

    keys = jax.random.split(k_steps, env.episode_length)
    (last, _, _), rec = jax.lax.scan(body, (state, ostate, jnp.ones((), bool)), keys)
    obs, qpos, qvel, succ, actions, rewards, term, trunc, valid, phase = rec

    def _app(xs, x):
        return jnp.concatenate([xs, x[None]], 0)

    return Episodes(
        obs=_app(obs, last.obs), qpos=_app(qpos, last.data.qpos),
        qvel=_app(qvel, last.data.qvel), success=_app(succ, last.success),
        actions=actions, rewards=rewards, terminated=term, truncated=trunc, valid=valid,
        length=valid.sum().astype(jnp.int32), strategy=ostate.strategy, tier=ostate.tier,
        fail_mode=ostate.fail_mode, phase=phase,
    )


def make_oracle_rollout(env: EpisodeWrapper):
    """Jitted ``rollout(keys (N,), tiers (N,) int32) -> Episodes`` for a wrapped env."""

    def rollout(keys: jax.Array, tiers: jax.Array) -> Episodes:
        return jax.vmap(lambda k, t: _oracle_episode(env, k, t))(keys, tiers)

    return jax.jit(rollout)


def episode_success(eps: Episodes) -> jax.Array:
    """(N,) bool: success reached at any step of the episode."""
    return jnp.any(eps.success, axis=1)


Policy = Callable[[jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """Means over M episodes (and the per-episode numpy arrays)."""

    success_rate: float
    mean_return: float
    mean_length: float
    success: np.ndarray  # (M,) bool
    returns: np.ndarray  # (M,)
    lengths: np.ndarray  # (M,) int


def evaluate(venv: ChunkedVecEnv, policy: Policy, key: jax.Array, horizon: int,
             reset_fn=None, step_fn=None) -> EvalResult:
    """Run ``venv.num_envs`` episodes of ``policy`` in parallel (host loop over chunks).

    ``policy(obs (M, O), key) -> chunks (M, H, A)`` with ``H = horizon`` (jit it yourself).
    ``reset_fn`` / ``step_fn`` default to ``jax.jit(venv.reset)`` / ``jax.jit(venv.step)``;
    pass the trainer's compiled ones to avoid a second compile. Each env plays exactly one
    episode: ceil(T / H) policy calls; transitions after the end are ignored.
    Success = success reached at any step; return = sum of valid rewards.
    """
    reset_fn = reset_fn or jax.jit(venv.reset)
    step_fn = step_fn or jax.jit(venv.step)
    k_reset, k_pol = jax.random.split(key)
    state = reset_fn(k_reset)
    m = venv.num_envs
    alive, ret = np.ones(m, bool), np.zeros(m)
    length, succ = np.zeros(m, np.int64), np.zeros(m, bool)
    n_calls = -(-venv.episode.episode_length // horizon)
    for k in jax.random.split(k_pol, n_calls):
        state, tr = step_fn(state, policy(state.obs, k))
        valid = np.asarray(tr.valid) & alive[:, None]
        ret += np.where(valid, np.asarray(tr.reward), 0.0).sum(1)
        length += valid.sum(1)
        succ |= (np.asarray(tr.success) & valid).any(1)
        alive &= ~((np.asarray(tr.terminated) | np.asarray(tr.truncated)) & valid).any(1)
        if not alive.any():
            break
    return EvalResult(success_rate=float(succ.mean()), mean_return=float(ret.mean()),
                      mean_length=float(length.mean()), success=succ, returns=ret,
                      lengths=length)
