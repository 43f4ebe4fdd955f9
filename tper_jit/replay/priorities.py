"""T-PER trajectory priorities (ALGORITHM §4): scores, rank transform, EMA of |δ|, sampling.

Per episode slot τ the score is chosen by ``metric``; ranks are descending (rank 0 = largest
score) with **average ranks for ties**, ``w = (rank + 1)^(-alpha_rank)`` and

    p(τ) = (1 − eps) · w_τ / Σ w + eps / n        over the n included episodes

(included = live, finished, and offline or ``include_online``).

``td_error_rank`` scores by μ_τ, the EMA of the per-sample |δ| of chunks drawn from τ:
μ ← β μ + (1 − β) |δ|.  Episodes never sampled yet ("unseen", including every newly finished
online episode) get score +inf, i.e. they share the top rank, so new episodes are never
starved; the first visit sets μ = |δ|.  Duplicates of one episode in a batch are **averaged**
into a single observation before one EMA step (order-independent; documented choice).

Sampling by rank position (docs/sampler.md).  ``PriorityState`` keeps the slots sorted by
score (``ranking.RankIndex``) and a sum-tree over **sorted positions**: leaf i is p of the
slot at position i, computed from the average ranks of the sorted scores, so ties and the
eps / n mixture are exact.  A draw descends the position tree (O(log n)) and maps the
position through ``order`` to a slot; nothing per slot is rewritten per draw.

Refresh (the only O(n) work): merge the changed slots into the index, recompute the
position leaves, rebuild the tree.  It runs

* in ``sync`` — after writes that finished or overwrote episodes (the store's dirty list),
  i.e. before the next draw: inclusion and n are never stale;
* every ``k = ⌊P / B⌋`` learn steps for μ changes, P = ``pending_capacity(E, cfg)``
  (= ⌊E · refresh_fraction⌋ slot updates, default E / 16): the sampled slots of a step are
  appended to ``pending`` and merged at the next refresh.  Between refreshes the ranks (so
  the law of a draw) are those of the μ values at the last refresh, with at most P μ
  updates (≤ k − 1 learn steps) not yet reflected.  When P < 2 B the refresh runs every
  step and the law is exact (small buffers, e.g. n ≲ 8 000 at B = 256).

The ``normalized`` metric is the report's non-ranked variant: p ∝ min-max-normalised return
(sum of rewards), mixed with eps of uniform, kept for reproducing its negative result.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tper_jit.config.flags import METRICS
from tper_jit.replay import ranking, sum_tree
from tper_jit.replay.store import OFFLINE, TrajectoryStore, clear_dirty
from tper_jit.seed_axis import seed_cond

BACKWARD_MODES = ("none", "last", "sweep")


@dataclasses.dataclass(frozen=True)
class TPERConfig:
    """Static T-PER settings (flag names of the seed in brackets)."""

    metric: str = "td_error_rank"  # [--metric] one of METRICS
    alpha_rank: float = 0.7  # exponent of the rank weights (rank + 1)^-alpha
    eps: float = 0.05  # share of uniform probability mixed in
    ema_beta: float = 0.9  # EMA factor of mu
    temperature: float = 1.0  # accepted for compatibility; monotone, does not change ranks
    include_online: bool = True  # [--use_ptr_online_priority] online episodes join the sampler
    warmup_steps: int = 20_000  # [--ptr_warmup_steps] transition-uniform before this step
    backward: str = "none"  # [--backward] start rule: none | last (final chunk) | sweep
    allow_tail_starts: bool = False  # also start chunks in the last H-1 steps (padded)
    # μ updates buffered between rank refreshes, as a fraction of the slots (0: every step)
    refresh_fraction: float = 1.0 / 16.0

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"--metric must be one of {METRICS}, got {self.metric!r}")
        if self.backward not in BACKWARD_MODES:
            raise ValueError(f"--backward must be one of {BACKWARD_MODES}, got {self.backward!r}")
        if not 0.0 <= self.eps <= 1.0:
            raise ValueError(f"T-PER eps must be in [0, 1], got {self.eps}")
        if not 0.0 <= self.ema_beta < 1.0:
            raise ValueError(f"T-PER ema_beta must be in [0, 1), got {self.ema_beta}")
        if self.alpha_rank < 0:
            raise ValueError(f"T-PER alpha_rank must be >= 0, got {self.alpha_rank}")
        if not 0.0 <= self.refresh_fraction <= 1.0:
            raise ValueError(f"T-PER refresh_fraction must be in [0, 1], got "
                             f"{self.refresh_fraction}")
        if self.temperature <= 0:
            raise ValueError(f"T-PER temperature must be > 0, got {self.temperature}")


@struct.dataclass
class PriorityState:
    """Rank index and position tree of the last refresh, plus the μ changes not merged yet.

    Attributes:
        index: ``order`` ``(E,)`` slots by descending score, ``sorted_scores`` ``(E,)``.
        tree: sum-tree over the E sorted positions; leaf i = p(order[i]); total 1 (0 when
            nothing is included).
        position: ``(E,)`` int32 inverse of ``order`` (slot → its position).
        pending: ``(P,)`` int32 slots whose μ changed since the last refresh (first
            ``num_pending`` entries; duplicates allowed).
        num_pending: int32 scalar.
    """

    index: ranking.RankIndex
    tree: sum_tree.SumTree
    position: jax.Array
    pending: jax.Array
    num_pending: jax.Array


def pending_capacity(num_slots: int, cfg: TPERConfig) -> int:
    """P: μ updates buffered between rank refreshes (static; 0 = refresh every step)."""
    if cfg.metric != "td_error_rank":
        return 0  # no other score depends on μ
    return int(num_slots * cfg.refresh_fraction)


def included(store: TrajectoryStore, cfg: TPERConfig) -> jax.Array:
    """``(E,)`` bool: episodes the trajectory-priority sampler may draw."""
    return _included(store.episodes, cfg)


def _included(t, cfg: TPERConfig) -> jax.Array:
    src_ok = (t.source == OFFLINE) | cfg.include_online
    return t.valid & t.finished & src_ok


def scores(store: TrajectoryStore, cfg: TPERConfig) -> jax.Array:
    """``(E,)`` float32 ranking scores; excluded slots get -inf (they sort last)."""
    return _scores(store.episodes, cfg)


def _scores(t, cfg: TPERConfig) -> jax.Array:
    """Scores ``(M,)`` of an episode table or a gathered ``(M,)`` slice of one."""
    m = cfg.metric
    if m == "td_error_rank":
        s = jnp.where(t.seen, t.mu, jnp.inf)
    elif m == "success_binary":
        s = jnp.where(t.success, 2.0, 0.1)
    elif m == "avg_reward":
        s = t.ret_mean
    elif m == "uqm_reward":
        s = t.ret_uqm
    elif m == "uhm_reward":
        s = t.ret_uhm
    elif m == "min_reward":
        s = t.ret_min
    elif m == "normalized":
        s = t.ret_sum
    else:  # uniform: one tie group
        s = jnp.zeros_like(t.mu)
    s = jnp.nan_to_num(s.astype(jnp.float32), nan=0.0)
    return jnp.where(_included(t, cfg), s, -jnp.inf)


@functools.lru_cache(maxsize=8)
def _half_rank_weights(e: int, alpha: float) -> np.ndarray:
    """``(2E,)`` float32 (j / 2 + 1)^-α: the weight of average rank j / 2 (host constant,
    float64 powers)."""
    return ((np.arange(2 * e, dtype=np.float64) / 2 + 1.0) ** -alpha).astype(np.float32)


def position_probabilities(index: ranking.RankIndex, cfg: TPERConfig) -> jax.Array:
    """p of the slot at each sorted position ``(E,)`` (0 past the n included ones), O(n)."""
    ss = index.sorted_scores
    incl_sorted = ss > -jnp.inf  # +inf (unseen) counts as included
    n = incl_sorted.sum()
    n_safe = jnp.maximum(n, 1).astype(jnp.float32)
    if cfg.metric == "normalized":
        s = jnp.where(incl_sorted, ss, 0.0)
        lo = jnp.min(jnp.where(incl_sorted, s, jnp.inf))
        hi = jnp.max(jnp.where(incl_sorted, s, -jnp.inf))
        w = jnp.where(incl_sorted, (s - lo) / jnp.maximum(hi - lo, 1e-8), 0.0)
        # All returns equal → all weights 0: fall back to uniform.
        w = jnp.where(w.sum() > 0, w, incl_sorted.astype(jnp.float32))
    else:
        # w = (r + 1)^-α looked up at 2r in a static table of half-integer ranks.
        two_r = ranking.doubled_average_ranks(ss)
        table = jnp.asarray(_half_rank_weights(ss.shape[0], cfg.alpha_rank))
        w = jnp.where(incl_sorted, table[two_r], 0.0)
    p = (1.0 - cfg.eps) * w / jnp.maximum(w.sum(), 1e-30) + cfg.eps / n_safe
    return jnp.where(incl_sorted, p, 0.0)


def _from_index(index: ranking.RankIndex, tree: sum_tree.SumTree, cfg: TPERConfig
                ) -> tuple[sum_tree.SumTree, jax.Array]:
    """Position tree and inverse permutation ``(E,)`` of a freshly merged index."""
    e = index.order.shape[0]
    tree = sum_tree.rebuild(tree, position_probabilities(index, cfg))
    position = jnp.zeros((e,), jnp.int32).at[index.order].set(jnp.arange(e, dtype=jnp.int32))
    return tree, position


def init_priorities(store: TrajectoryStore, cfg: TPERConfig) -> tuple[PriorityState,
                                                                       TrajectoryStore]:
    """Sort every slot once and build the position tree; clears the store's dirty list."""
    e = store.num_slots
    index = ranking.build_index(scores(store, cfg))
    tree, position = _from_index(index, sum_tree.create(e), cfg)
    pend = jnp.zeros((pending_capacity(e, cfg),), jnp.int32)
    return (PriorityState(index=index, tree=tree, position=position, pending=pend,
                          num_pending=jnp.int32(0)), clear_dirty(store))


def slot_probabilities(state: PriorityState) -> jax.Array:
    """p(τ) per slot ``(E,)`` under the current sampling law (O(n), for plots and tests)."""
    return state.tree.leaves[state.position]


def slot_probability(state: PriorityState, slots: jax.Array) -> jax.Array:
    """p(τ) of ``slots`` ``(B,)`` under the current sampling law, O(B)."""
    return state.tree.leaves[state.position[slots]]


def sample_slots(state: PriorityState, key: jax.Array, batch_size: int, stratified: bool = True
                 ) -> tuple[jax.Array, jax.Array]:
    """``(slots (B,) int32, p (B,) float32)``: a position ∝ its leaf, mapped to its slot."""
    pos, p = sum_tree.sample(state.tree, key, batch_size, stratified=stratified)
    return state.index.order[pos], p


def _unique(ids: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sort ``ids`` and flag the first occurrence of each masked id; O(B log B)."""
    big = jnp.iinfo(jnp.int32).max
    keyed = jnp.where(mask, ids.astype(jnp.int32), big)
    s = jnp.sort(keyed)
    first = jnp.concatenate([jnp.array([True]), s[1:] != s[:-1]]) & (s != big)
    return s, first


def _refresh(state: PriorityState, store: TrajectoryStore, cfg: TPERConfig, slots: jax.Array,
             mask: jax.Array) -> PriorityState:
    """Merge ``slots`` ``(M,)`` (where ``mask``) at their current scores, then rebuild the
    position tree; a full re-sort instead if the store's dirty buffer overflowed."""
    uniq, first = _unique(slots, mask)
    uniq_c = jnp.clip(uniq, 0, store.num_slots - 1)

    def merged(_):
        t = jax.tree.map(lambda x: x[uniq_c], store.episodes)
        return ranking.merge_update(state.index, uniq_c, _scores(t, cfg), first)

    def resorted(_):
        return ranking.build_index(scores(store, cfg))

    # A re-sort gives every slot the same p(τ) as the merge (ties share an average rank), so
    # the seeds of a vmapped run may all re-sort when one overflowed.
    index = seed_cond(store.dirty_overflow, resorted, merged, None, true_is_safe=True)
    tree, position = _from_index(index, state.tree, cfg)
    return state.replace(index=index, tree=tree, position=position)


def sync(state: PriorityState, store: TrajectoryStore, cfg: TPERConfig,
         extra_slots: jax.Array | None = None) -> tuple[PriorityState, TrajectoryStore]:
    """Refresh the index and tree: merge the slots the store marked dirty (episodes finished
    or overwritten), the pending μ changes and ``extra_slots`` ``(M,)``; clears the dirty
    list.  ``num_pending`` is kept (merging a slot twice is harmless), so the learn-step
    refresh schedule stays a function of the step count alone (equal across vmapped seeds).
    """
    slots = jnp.concatenate([store.dirty, state.pending])
    mask = jnp.concatenate([jnp.arange(store.dirty.shape[0]) < store.num_dirty,
                            jnp.arange(state.pending.shape[0]) < state.num_pending])
    if extra_slots is not None:
        slots = jnp.concatenate([slots, extra_slots.astype(jnp.int32)])
        mask = jnp.concatenate([mask, jnp.ones(extra_slots.shape, bool)])
    return _refresh(state, store, cfg, slots, mask), clear_dirty(store)


def sync_if_changed(state: PriorityState, store: TrajectoryStore, cfg: TPERConfig
                    ) -> tuple[PriorityState, TrajectoryStore]:
    """``sync`` when the store marked any slot dirty (or overflowed), else nothing: the
    online loop calls it after every write, most of which finish no episode."""
    changed = (store.num_dirty > 0) | store.dirty_overflow
    return seed_cond(changed, lambda s: sync(s[0], s[1], cfg),
                     lambda s: (s[0], clear_dirty(s[1])), (state, store))


def update_mu(store: TrajectoryStore, episode_ids: jax.Array, td_abs: jax.Array,
              ema_beta: float, mask: jax.Array | None = None) -> TrajectoryStore:
    """EMA update of μ for the sampled episodes from per-sample |δ| ``(B,)``; O(B log B).

    Duplicates are averaged into one observation; the first visit sets μ; ``visits`` counts
    samples.  Entries with ``mask == False`` are ignored.
    """
    b = episode_ids.shape[0]
    mask = jnp.ones((b,), bool) if mask is None else mask
    td = jnp.abs(td_abs.astype(jnp.float32))
    order = jnp.argsort(jnp.where(mask, episode_ids, jnp.iinfo(jnp.int32).max))
    sid, std_, smask = episode_ids[order], td[order], mask[order]
    new = jnp.concatenate([jnp.array([True]), sid[1:] != sid[:-1]])
    grp = jnp.cumsum(new) - 1
    sums = jnp.zeros((b,), jnp.float32).at[grp].add(jnp.where(smask, std_, 0.0))
    cnts = jnp.zeros((b,), jnp.int32).at[grp].add(smask.astype(jnp.int32))
    mean = sums[grp] / jnp.maximum(cnts[grp], 1)
    t = store.episodes
    e = store.num_slots
    tgt = jnp.where(new & smask, sid, e)
    sc = jnp.clip(sid, 0, e - 1)
    mu = jnp.where(t.seen[sc], ema_beta * t.mu[sc] + (1.0 - ema_beta) * mean, mean)
    t = t.replace(mu=t.mu.at[tgt].set(mu, mode="drop"),
                  seen=t.seen.at[tgt].set(True, mode="drop"),
                  visits=t.visits.at[tgt].add(cnts[grp], mode="drop"))
    return store.replace(episodes=t)


def update_priorities(state: PriorityState, store: TrajectoryStore, episode_ids: jax.Array,
                      td_abs: jax.Array, cfg: TPERConfig, mask: jax.Array | None = None
                      ) -> tuple[PriorityState, TrajectoryStore]:
    """One T-PER priority step after a gradient update: EMA of μ ``(B,)``, then the ranks.

    ``td_error_rank`` only (no other score depends on μ).  With P = ``pending_capacity`` ≥ 2B
    the B slots are appended to ``pending``; when the buffer could not take another batch,
    every pending slot is merged at its current μ (so after each refresh the law is exactly
    that of the current μ snapshot) — a refresh every ⌊P / B⌋ steps.  With P < 2B the slots
    are merged at once (exact law every step).  The store's dirty list is left to ``sync``.
    """
    store = update_mu(store, episode_ids, td_abs, cfg.ema_beta, mask)
    if cfg.metric != "td_error_rank":
        return state, store
    ids = episode_ids if mask is None else jnp.where(mask, episode_ids, episode_ids[0])
    ids = ids.astype(jnp.int32)
    b = ids.shape[0]
    cap = state.pending.shape[0]
    if cap < 2 * b:
        return _refresh(state, store, cfg, ids, jnp.ones((b,), bool)), store

    def flush(s):
        mask_p = jnp.arange(cap) < s.num_pending
        return _refresh(s, store, cfg, s.pending, mask_p).replace(num_pending=jnp.int32(0))

    def keep(s):
        return s

    # The store is not written after these conds (no defensive copy of it), and the schedule
    # depends on the step count only, so vmapped seeds agree (one branch runs).  The first
    # cond only fires if the batch size changed between calls.
    state = seed_cond(state.num_pending + b > cap, flush, keep, state)
    pending = jax.lax.dynamic_update_slice(state.pending, ids, (state.num_pending,))
    state = state.replace(pending=pending, num_pending=state.num_pending + b)
    state = seed_cond(state.num_pending + b > cap, flush, keep, state)
    return state, store
