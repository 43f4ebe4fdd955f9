"""Wrappers: episode length / truncation, auto-reset, action-chunk execution, vmap.

``EpisodeWrapper`` adds ``info['steps']`` (int32), ``info['truncated']`` (bool) and a per-env
RNG key ``info['rng']`` used for fresh random resets. ``ChunkedVecEnv`` is what a trainer
holds: N envs, one policy call -> H actions executed as H sub-steps; once an episode ends
inside a chunk the rest of the chunk is dropped (``valid`` False) and the env is reset with a
fresh random initial state before the next chunk. Per-sub-step transitions come back for
the replay.

Termination and truncation are kept apart: bootstrap on ``1 - terminated``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from envs_mjx.core import MjxEnv, State


@struct.dataclass
class Transition:
    """Per-sub-step records of a chunk, shape ``(N, H, ...)`` from ``ChunkedVecEnv.step``.

    ``next_obs`` is the observation the action led to (the terminal one when the episode
    ended, never the reset observation). ``valid`` is False for sub-steps dropped after
    the episode ended; all other fields are zeros/garbage there and must be masked.
    """

    obs: jax.Array  # (N, H, O)
    action: jax.Array  # (N, H, A)
    reward: jax.Array  # (N, H)
    next_obs: jax.Array  # (N, H, O)
    terminated: jax.Array  # (N, H) bool
    truncated: jax.Array  # (N, H) bool
    success: jax.Array  # (N, H) bool, success in next state
    valid: jax.Array  # (N, H) bool


class EpisodeWrapper:
    """Counts steps and truncates at ``episode_length``; keeps a per-env reset key."""

    def __init__(self, env: MjxEnv, episode_length: int | None = None):
        self.env = env
        self.episode_length = int(episode_length or env.episode_length)
        self.name = env.name

    @property
    def observation_size(self) -> int:
        return self.env.observation_size

    @property
    def action_size(self) -> int:
        return self.env.action_size

    def reset(self, key: jax.Array) -> State:
        """Reset one env; ``key`` () PRNG key, split into the reset key and a carried key."""
        k_reset, k_carry = jax.random.split(key)
        state = self.env.reset(k_reset)
        info = {**state.info, "steps": jnp.zeros((), jnp.int32),
                "truncated": jnp.zeros((), bool), "rng": k_carry}
        return state.replace(info=info)

    def step(self, state: State, action: jax.Array) -> State:
        """One env step; ``done = terminated | (steps >= episode_length)``."""
        state = self.env.step(state, action)
        steps = state.info["steps"] + 1
        terminated = state.info["terminated"]
        truncated = (steps >= self.episode_length) & ~terminated
        info = {**state.info, "steps": steps, "truncated": truncated}
        return state.replace(info=info, done=terminated | truncated)

    def reset_from(self, state: State) -> State:
        """Fresh random reset using (and advancing) the key carried in ``state.info['rng']``."""
        k_next, k_reset = jax.random.split(state.info["rng"])
        new = self.reset(k_reset)
        return new.replace(info={**new.info, "rng": k_next})


def _select(pred: jax.Array, on_true, on_false):
    """Tree-wise ``where`` with a scalar predicate (vmapped callers make it per-env)."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


class AutoResetWrapper:
    """Single-step auto-reset: when ``done``, the returned state is a fresh random reset.

    The returned state's ``reward``/``done``/``success`` and ``info['terminated' |
    'truncated']`` describe the finished step; its ``obs`` is the reset observation and
    ``info['final_obs']`` the terminal one.
    """

    def __init__(self, env: EpisodeWrapper):
        self.env = env
        self.episode_length = env.episode_length

    def reset(self, key: jax.Array) -> State:
        state = self.env.reset(key)
        return state.replace(info={**state.info, "final_obs": state.obs})

    def step(self, state: State, action: jax.Array) -> State:
        nxt = self.env.step(state, action)
        fresh = self.env.reset_from(nxt)
        fresh = fresh.replace(info={**fresh.info, "final_obs": nxt.obs})
        nxt = nxt.replace(info={**nxt.info, "final_obs": nxt.obs})
        out = _select(nxt.done, fresh, nxt)
        info = {**out.info, "terminated": nxt.info["terminated"],
                "truncated": nxt.info["truncated"]}
        return out.replace(reward=nxt.reward, done=nxt.done, success=nxt.success, info=info)


def chunk_step(env: EpisodeWrapper, state: State, chunk: jax.Array) -> tuple[State, Transition]:
    """Execute a (H, A) action chunk in one env; drop the rest after the episode ends.

    Returns the state to act from next (auto-reset with a fresh random state when the
    episode ended inside the chunk) and (H, ...) transitions with a ``valid`` mask.
    Cost: H env steps (steps after the end are computed and discarded under vmap).
    """

    def body(carry, action):
        st, alive = carry
        nxt = env.step(st, action)
        tr = Transition(
            obs=st.obs, action=action, reward=nxt.reward, next_obs=nxt.obs,
            terminated=nxt.info["terminated"] & alive, truncated=nxt.info["truncated"] & alive,
            success=nxt.success & alive, valid=alive,
        )
        st = _select(alive, nxt, st)
        return (st, alive & ~nxt.done), tr

    (state, alive), trans = jax.lax.scan(body, (state, jnp.ones((), bool)), chunk)
    state = _select(alive, state, env.reset_from(state))
    return state, trans


class ChunkedVecEnv:
    """N envs stepped by action chunks: ``reset(key) -> State (N, ...)``,
    ``step(state, chunks (N, H, A)) -> (State, Transition (N, H, ...))``. Pure and jittable.
    """

    def __init__(self, env: MjxEnv, num_envs: int, episode_length: int | None = None):
        self.episode = EpisodeWrapper(env, episode_length)
        self.num_envs = int(num_envs)

    def reset(self, key: jax.Array) -> State:
        return jax.vmap(self.episode.reset)(jax.random.split(key, self.num_envs))

    def step(self, state: State, chunks: jax.Array) -> tuple[State, Transition]:
        if chunks.ndim != 3 or chunks.shape[0] != self.num_envs:
            raise ValueError(f"chunks must be (num_envs={self.num_envs}, H, A), got {chunks.shape}")
        return jax.vmap(lambda s, c: chunk_step(self.episode, s, c))(state, chunks)
