"""Vmapped oracle rollouts (offline data) and the policy evaluation helper.

``oracle_rollout`` runs N oracle episodes in parallel as one ``jit(vmap(scan(step)))`` and
returns fixed-size arrays with a per-step ``valid`` mask (episodes end early on success).
``evaluate`` runs M episodes of a chunked policy ``(obs (M, O), key) -> (M, H, A)``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

from envs_mjx.oracles import pick_place
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


def _oracle_episode(env: EpisodeWrapper, key: jax.Array, tier: jax.Array, lift_only: bool):
    """One oracle episode: scan over ``episode_length`` steps, frozen after ``done``."""
    k_reset, k_oracle, k_steps = jax.random.split(key, 3)
    state = env.reset(k_reset)
    ostate = pick_place.init(env.env, state, k_oracle, tier)

    def body(carry, k):
        st, os, alive = carry
        action, os_next = pick_place.act(env.env, os, st, k, lift_only)
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


def make_oracle_rollout(env: EpisodeWrapper, lift_only: bool = False):
    """Jitted ``rollout(keys (N,), tiers (N,) int32) -> Episodes`` for a wrapped env."""

    def rollout(keys: jax.Array, tiers: jax.Array) -> Episodes:
        return jax.vmap(lambda k, t: _oracle_episode(env, k, t, lift_only))(keys, tiers)

    return jax.jit(rollout)


def episode_success(eps: Episodes) -> jax.Array:
    """(N,) bool: success reached at any step of the episode."""
    return jnp.any(eps.success, axis=1)


Policy = Callable[[jax.Array, jax.Array], jax.Array]


@struct.dataclass
class EvalResult:
    """Means over M episodes (and the per-episode arrays)."""

    success_rate: jax.Array  # ()
    mean_return: jax.Array  # ()
    mean_length: jax.Array  # ()
    success: jax.Array  # (M,) bool
    returns: jax.Array  # (M,)
    lengths: jax.Array  # (M,) int32


def evaluate(venv: ChunkedVecEnv, policy: Policy, key: jax.Array, horizon: int) -> EvalResult:
    """Run ``venv.num_envs`` episodes of ``policy`` in parallel; jit-compatible.

    ``policy(obs (M, O), key) -> chunks (M, H, A)`` with ``H = horizon``. Each env plays
    exactly one episode (ceil(T / H) policy calls); auto-reset transitions are ignored.
    Success = success reached at any step; return = sum of valid rewards.
    """
    k_reset, k_pol = jax.random.split(key)
    state = venv.reset(k_reset)
    n_calls = -(-venv.episode.episode_length // horizon)

    def body(carry, k):
        st, alive, ret, length, succ = carry
        chunks = policy(st.obs, k)
        st, tr = venv.step(st, chunks)
        v = tr.valid & alive[:, None]
        ret = ret + jnp.sum(jnp.where(v, tr.reward, 0.0), 1)
        length = length + v.sum(1).astype(jnp.int32)
        succ = succ | jnp.any(tr.success & v, 1)
        alive = alive & ~jnp.any((tr.terminated | tr.truncated) & v, 1)
        return (st, alive, ret, length, succ), None

    m = venv.num_envs
    init = (state, jnp.ones(m, bool), jnp.zeros(m), jnp.zeros(m, jnp.int32), jnp.zeros(m, bool))
    (_, _, ret, length, succ), _ = jax.lax.scan(body, init, jax.random.split(k_pol, n_calls))
    return EvalResult(success_rate=succ.mean(), mean_return=ret.mean(),
                      mean_length=length.mean(), success=succ, returns=ret, lengths=length)

