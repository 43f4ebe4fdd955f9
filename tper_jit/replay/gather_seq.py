"""Intermediate observations of a chunk, for the transformer critic (ALGORITHM §9).

The §9 targets G_j = R_j + γ^j m_j V̄(s_{t+j}) bootstrap from every state inside the chunk,
while ``gather.gather_chunks`` only returns s_t and s_{t+H}.  Rather than growing every batch
by B·H·D floats, the states are gathered here on demand and attached to the optional
``ChunkBatch.seq_observations`` field; the MLP critic's batches are untouched.

    seq_observations[:, j−1] = s_{t+j} = next_observations[t+j−1],  j = 1..H

Rows past the end of the episode are padded the way ``gather_chunks`` pads: the offset is
clamped to the last real row, so the pad repeats the episode's final next-observation.  Those
steps have ``valid = 0`` (and a terminated step has ``masks = 0``), so the pad never reaches
a loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from tper_jit.replay.gather import ChunkBatch
from tper_jit.replay.store import TrajectoryStore, read_rows, row_index


def gather_seq_observations(store: TrajectoryStore, episode_ids: jax.Array, starts: jax.Array,
                            horizon: int) -> jax.Array:
    """s_{t+1..t+H} for each ``(episode_ids[b], starts[b])``: ``(B,) × (B,) -> (B, H, D)``.

    ``starts`` must lie in ``[0, length)`` of their episodes (as for ``gather_chunks``).
    Cost O(B · H) row gathers (under jit the other fields ``read_rows`` touches are dead code).
    """
    length = store.episodes.length[episode_ids]
    offs = starts[:, None] + jnp.arange(horizon)[None, :]  # (B, H) rows t .. t+H−1
    clamped = jnp.minimum(offs, length[:, None] - 1)
    is_on, rows = row_index(store, episode_ids[:, None], clamped)
    return read_rows(store, is_on, rows).next_observations


def add_seq_observations(store: TrajectoryStore, batch: ChunkBatch) -> ChunkBatch:
    """``batch`` with ``seq_observations (B, H, D)`` gathered for its own episodes/starts."""
    horizon = batch.actions.shape[1]
    return batch.replace(seq_observations=gather_seq_observations(
        store, batch.episode_ids, batch.starts, horizon))
