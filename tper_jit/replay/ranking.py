"""A sorted index of episode-slot scores, kept sorted under batched score changes.

Rank-based priorities (ALGORITHM §4) depend on every score: one trajectory whose |δ| jumps
from last to first shifts the rank of all others, so ranks are inherently O(n) to maintain.
Instead of an O(n log n) re-sort per training step (what the reference did, on the host), the
index keeps ``order`` (slots by descending score) and, when M slots change, *merges* them back:

1. drop the changed slots from ``order`` (stable compaction, one cumsum),
2. sort the M new scores (O(M log M)),
3. place each changed slot j at ``j + #(remaining scores > its score)`` (binary search into the
   remaining sorted scores, O(M log n)), and fill the other positions with the remaining
   slots in their old order (one cumsum + gather).

That is O(n) of simple vectorised work plus O(M log n) searches — about 15× faster than
``argsort`` on a CPU at n = 10^5 — and exactly equal to a full stable re-sort up to the order
of tied scores (ties are resolved by the average-rank rule anyway).

``average_ranks`` turns the sorted scores into 0-based ranks where tied scores share the
average of their positions (``scipy.stats.rankdata(method='average') - 1`` on −score);
``doubled_average_ranks`` gives twice that as exact integers (elementwise unless a finite
tie group has more than ``LOCAL_GROUP`` members).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from tper_jit.seed_axis import seed_cond

LOCAL_GROUP = 8  # finite tie groups up to this size take the elementwise path


@struct.dataclass
class RankIndex:
    order: jax.Array  # (E,) int32 slots sorted by descending score
    sorted_scores: jax.Array  # (E,) float32 scores in that order


def _cumsum(flags: jax.Array) -> jax.Array:
    """Inclusive int32 cumsum ``(E,)`` of bools (log-depth scan; faster than jnp.cumsum on
    XLA:CPU)."""
    return jax.lax.associative_scan(jnp.add, flags.astype(jnp.int32))


def build_index(scores: jax.Array) -> RankIndex:
    """Full O(n log n) sort of ``scores`` ``(E,)`` (descending)."""
    order = jnp.argsort(-scores, stable=True).astype(jnp.int32)
    return RankIndex(order=order, sorted_scores=scores[order])


def merge_update(index: RankIndex, slots: jax.Array, new_scores: jax.Array, mask: jax.Array
                 ) -> RankIndex:
    """Move the changed ``slots`` ``(M,)`` (unique where ``mask``) to their ``new_scores``.

    Slots with ``mask == False`` are ignored.  Masked slots must be unique.
    """
    e = index.order.shape[0]
    m = slots.shape[0]
    slots = slots.astype(jnp.int32)
    is_changed = jnp.zeros((e + 1,), bool).at[jnp.where(mask, slots, e)].set(True)[:e]
    keep = ~is_changed[index.order]
    kpos = _cumsum(keep) - 1
    ktgt = jnp.where(keep, kpos, e)
    rem_order = jnp.zeros((e,), jnp.int32).at[ktgt].set(index.order, mode="drop")
    # Positions past the kept count hold -inf so they never count as "greater".
    rem_scores = jnp.full((e,), -jnp.inf, jnp.float32).at[ktgt].set(index.sorted_scores,
                                                                    mode="drop")
    # Changed entries: masked ones first, by descending score (one sort: the masked-out get
    # key NaN, which sorts after +inf = -(-inf)).
    key = jnp.where(mask, -new_scores, jnp.nan)
    by = jax.lax.sort((key, jnp.arange(m, dtype=jnp.int32)), num_keys=1, is_stable=True)[1]
    ins_slots, ins_scores, ins_mask = slots[by], new_scores[by], mask[by]
    # rem_scores is descending; on its negation (ascending) count entries < -v  ⇔  > v.
    greater = jnp.searchsorted(-rem_scores, -ins_scores, side="left", method="scan_unrolled")
    pos = jnp.arange(m) + greater
    ptgt = jnp.where(ins_mask, pos, e)
    taken = jnp.zeros((e + 1,), bool).at[ptgt].set(True)[:e]
    fill = jnp.clip(_cumsum(~taken) - 1, 0, e - 1)
    order = rem_order[fill].at[ptgt].set(ins_slots, mode="drop")
    sorted_scores = rem_scores[fill].at[ptgt].set(ins_scores, mode="drop")
    return RankIndex(order=order, sorted_scores=sorted_scores)


def average_ranks(sorted_scores: jax.Array) -> jax.Array:
    """0-based average ranks ``(E,)`` of descending ``sorted_scores`` (ties share the mean)."""
    return 0.5 * doubled_average_ranks(sorted_scores).astype(jnp.float32)


def _group_bounds_by_scan(sorted_scores: jax.Array) -> jax.Array:
    e = sorted_scores.shape[0]
    k = jnp.arange(e)
    new_group = jnp.concatenate([jnp.array([True]), sorted_scores[1:] != sorted_scores[:-1]])
    group_end = jnp.concatenate([sorted_scores[1:] != sorted_scores[:-1], jnp.array([True])])
    # associative_scan: a log-depth scan, ~2x faster than lax.cummax/cummin on XLA:CPU.
    first = jax.lax.associative_scan(jnp.maximum, jnp.where(new_group, k, 0))
    last = jax.lax.associative_scan(jnp.minimum, jnp.where(group_end, k, e - 1), reverse=True)
    return (first + last).astype(jnp.int32)


def doubled_average_ranks(sorted_scores: jax.Array, local: int = LOCAL_GROUP) -> jax.Array:
    """``(E,)`` int32 first + last position of each position's tie group (2 × average rank).

    Fast path (elementwise only): the +inf group at the top and the -inf group at the bottom
    are counted, and every finite tie group of at most ``local`` members is found by comparing
    each score with its ``local - 1`` neighbours on either side — float32 μ of 10^5 episodes
    do tie (pairs, by chance), so ties cannot simply be assumed away.  A larger finite group
    takes the general path (two log-depth scans over E).  Both give the same integers.
    """
    ss = sorted_scores
    e = ss.shape[0]
    big_group = jnp.any((ss[local:] == ss[:-local]) & jnp.isfinite(ss[local:])) if e > local \
        else jnp.bool_(True)

    def fast(_):
        k = jnp.arange(e, dtype=jnp.int32)
        nan = jnp.full((local,), jnp.nan, ss.dtype)
        lo, hi = jnp.concatenate([nan, ss]), jnp.concatenate([ss, nan])
        before = sum((ss == lo[local - d: local - d + e]).astype(jnp.int32)
                     for d in range(1, local))
        after = sum((ss == hi[d: d + e]).astype(jnp.int32) for d in range(1, local))
        n_top = jnp.sum(ss == jnp.inf).astype(jnp.int32)
        n_bot = jnp.sum(ss == -jnp.inf).astype(jnp.int32)
        two_r = 2 * k + after - before
        two_r = jnp.where(ss == jnp.inf, n_top - 1, two_r)
        return jnp.where(ss == -jnp.inf, 2 * e - n_bot - 1, two_r)

    # The general path is always right, so vmapped seeds may all take it (true_is_safe).
    return seed_cond(big_group, lambda _: _group_bounds_by_scan(ss), fast, None,
                     true_is_safe=True)
