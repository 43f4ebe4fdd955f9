"""Chunk gather: (episode slot, start offset) → the H-step training batch of ALGORITHM §2.

A chunk never reads past the end of its episode: rows ``start + i >= length`` are padded
(the last real row is repeated, rewards are zero) and marked invalid.  With γ the discount:

    rewards[:, i]   = Σ_{k≤i} γ^k r_{t+k}             (cumulative discounted, (B, H))
    masks[:, i]     = min_{k≤i} mask_{t+k}            (0 once a true termination is crossed)
    terminals[:, i] = max_{k≤i} terminal_{t+k}
    valid[:, i]     = [t+i inside the episode] · (1 − terminals[:, i−1]),  valid[:, 0] = 1

The critic uses index H−1 and bootstraps from ``next_observations`` = s_{t+H}, the next
observation stored on row t+H−1.  ``next_actions`` (B, H, A) = a_{t+H : t+2H} for the
SARSA-weighted target (ALGORITHM §6); ``next_actions_valid`` is 0 where that data chunk does not
exist (the episode ends inside the chunk, or row t+H has not been written).
``seq_observations`` (the intermediate states the transformer critic bootstraps from) is left
None here; ``gather_seq.add_seq_observations`` fills it.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import struct

from tper_jit.replay.store import TrajectoryStore, read_rows, row_index


@struct.dataclass
class ChunkBatch:
    observations: jax.Array  # (B, D) s_t
    actions: jax.Array  # (B, H, A) a_{t:t+H}
    rewards: jax.Array  # (B, H) cumulative discounted rewards
    masks: jax.Array  # (B, H)
    terminals: jax.Array  # (B, H)
    valid: jax.Array  # (B, H)
    next_observations: jax.Array  # (B, D) s_{t+H}
    next_actions: jax.Array  # (B, H, A) a_{t+H:t+2H}
    next_actions_valid: jax.Array  # (B,)
    successes: jax.Array  # (B, H) per-step success flags (0 on padded rows)
    episode_ids: jax.Array  # (B,) slots the chunks came from
    starts: jax.Array  # (B,) start offsets inside the episodes
    # (B, H, D) s_{t+1..t+H}, only for the transformer critic: None unless attached by
    # ``gather_seq.add_seq_observations`` (kept optional so other batches stay lean).
    seq_observations: jax.Array | None = None


def gather_chunks(store: TrajectoryStore, episode_ids: jax.Array, starts: jax.Array,
                  horizon: int, discount: float | jax.Array) -> ChunkBatch:
    """Build a ``ChunkBatch`` of ``horizon`` H steps for each ``(episode_ids[b], starts[b])``.

    ``starts`` must lie in ``[0, length)`` of their episodes (every sampler guarantees it).
    Cost O(B · H) gathers.  ``episode_ids``, ``starts``: ``(B,)`` int32 (checked at trace time).
    """
    chex.assert_rank([episode_ids, starts], 1)
    chex.assert_equal_shape([episode_ids, starts])
    chex.assert_type([episode_ids, starts], int)
    length = store.episodes.length[episode_ids]
    offs = starts[:, None] + jnp.arange(2 * horizon)[None, :]  # (B, 2H)
    inside = offs < length[:, None]
    clamped = jnp.minimum(offs, length[:, None] - 1)
    is_on, rows = row_index(store, episode_ids[:, None], clamped)
    tr = read_rows(store, is_on, rows)

    cur = slice(0, horizon)
    inside_h = inside[:, cur].astype(jnp.float32)
    gammas = jnp.asarray(discount, jnp.float32) ** jnp.arange(horizon, dtype=jnp.float32)
    rewards = jnp.cumsum(tr.rewards[:, cur] * inside_h * gammas, axis=1)
    masks = jax.lax.cummin(tr.masks[:, cur], axis=1)
    terminals = jax.lax.cummax(tr.terminals[:, cur], axis=1)
    prev_term = jnp.pad(terminals[:, :-1], ((0, 0), (1, 0)))
    valid = inside_h * (1.0 - prev_term)
    next_valid = inside[:, horizon] & (terminals[:, -1] == 0)
    return ChunkBatch(
        observations=tr.observations[:, 0], actions=tr.actions[:, cur], rewards=rewards,
        masks=masks, terminals=terminals, valid=valid,
        next_observations=tr.next_observations[:, horizon - 1],
        next_actions=tr.actions[:, horizon:], next_actions_valid=next_valid.astype(jnp.float32),
        successes=tr.successes[:, cur] * inside_h, episode_ids=episode_ids, starts=starts)


def check_chunk_batch(batch: ChunkBatch, horizon: int, action_dim: int) -> None:
    """Trace-time shape guard of a batch against an agent's H and A (clear errors naming the
    flag instead of a broadcasting failure deep inside a loss)."""
    chex.assert_rank(batch.actions, 3)
    chex.assert_type([batch.observations, batch.actions, batch.rewards], float)
    b, h, a = batch.actions.shape
    if h != horizon or a != action_dim:
        raise ValueError(f"batch actions (B, H, A) = {batch.actions.shape} do not match "
                         f"--agent.horizon_length={horizon}, action_dim={action_dim}")
    for name in ("rewards", "masks", "valid"):
        if getattr(batch, name).shape != (b, h):
            raise ValueError(f"batch {name} has shape {getattr(batch, name).shape}, "
                             f"expected {(b, h)}")
