"""Device state of OPER sampling and reweighting over the offline rows of a TrajectoryStore.

``OPERState.tree`` is a sum-tree with one leaf per offline row: leaf_i = p_i · [row i is a
valid chunk start].  Drawing a row ∝ leaf and mapping it to its (episode, start) pair is an
exact draw of the pair with probability leaf_i / Σ leaves — the same law as "episode ∝ the sum
of its valid starts' p, then a start ∝ p inside it" (for trajectory-constant OPER-R:
episode ∝ p_τ · #valid starts, start uniform), in one O(B log N) descent.  Every pair maps to
exactly one row, so ``probs`` of the sampler are exact.

``OPERState.probs`` keeps the normalised p of *every* offline row (tail rows included), which
reweighting needs for batches drawn by any sampler.  Online rows have no OPER priority and get
weight 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tper_jit.replay import sum_tree
from tper_jit.replay.store import TrajectoryStore


@struct.dataclass
class OPERState:
    tree: sum_tree.SumTree  # (N_off leaves) p_i · [valid start], drawn by sampler kind "oper"
    probs: jax.Array  # (N_off,) float32 normalised p, Σ = 1 over all offline rows


def valid_start_rows(store: TrajectoryStore, horizon: int, rule: str) -> np.ndarray:
    """``(N_off,)`` bool: offline rows that are chunk starts under start ``rule``.

    ``all``: every row.  ``head``: offsets 0..max(0, L − H) of each episode, as the
    trajectory samplers' ``head`` rule.
    """
    n_off, e_off = store.num_offline_rows, store.num_offline_episodes
    if rule == "all":
        return np.ones(n_off, bool)
    if rule != "head":
        raise ValueError(f"OPER sampling supports start rules 'all' and 'head', got {rule!r}")
    starts = np.asarray(store.episodes.start[:e_off], np.int64)
    lengths = np.asarray(store.episodes.length[:e_off], np.int64)
    ep = np.repeat(np.arange(e_off), lengths)
    offset = np.arange(n_off) - starts[ep]
    return offset <= np.maximum(0, lengths[ep] - horizon)


def build_oper_state(store: TrajectoryStore, probs: np.ndarray, horizon: int, rule: str
                     ) -> OPERState:
    """Host set-up: ``probs (N_off,)`` (normalised, e.g. ``weights.normalize_priorities``)."""
    probs = np.asarray(probs, np.float64)
    if probs.shape != (store.num_offline_rows,):
        raise ValueError(f"OPER priorities must have one entry per offline row "
                         f"({store.num_offline_rows},), got shape {probs.shape}")
    if not np.all(np.isfinite(probs)) or probs.min() < 0 or probs.sum() <= 0:
        raise ValueError("OPER priorities must be finite, >= 0 and not all zero")
    leaves = probs * valid_start_rows(store, horizon, rule)
    if leaves.sum() <= 0:
        raise ValueError("OPER priorities are zero on every valid chunk start")
    # Leaves are scaled to mean ~1: float32 sums of millions of ~1/N values lose less.
    leaves = leaves * (len(leaves) / leaves.sum())
    tree = sum_tree.create(len(leaves), jnp.asarray(leaves, jnp.float32))
    return OPERState(tree=tree, probs=jnp.asarray(probs, jnp.float32))


def row_to_pair(store: TrajectoryStore, rows: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Offline rows ``(B,)`` → ``(episode_ids (B,), starts (B,))``; O(B log n) search."""
    ep_starts = store.episodes.start[: store.num_offline_episodes]
    ep = jnp.searchsorted(ep_starts, rows, side="right").astype(jnp.int32) - 1
    return ep, (rows - ep_starts[ep]).astype(jnp.int32)


def pair_loss_weights(oper: OPERState, store: TrajectoryStore, episode_ids: jax.Array,
                      starts: jax.Array) -> jax.Array:
    """Reweighting factors ``(B,)`` = N_off · p of each sampled (episode, start); 1 online."""
    n_off = store.num_offline_rows
    offline = episode_ids < store.num_offline_episodes
    row = store.episodes.start[episode_ids] + starts
    w = n_off * oper.probs[jnp.clip(row, 0, n_off - 1)]
    return jnp.where(offline, w, 1.0)
