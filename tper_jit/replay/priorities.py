"""T-PER trajectory priorities (ALGORITHM §4): scores, rank transform, EMA of |δ|, sum-tree.

Per episode slot τ the score is chosen by ``metric``; ranks are descending (rank 0 = largest
score) with **average ranks for ties**, ``w = (rank + 1)^(-alpha_rank)`` and

    p(τ) = (1 − eps) · w_τ / Σ w + eps / n        over the n included episodes

(included = live, finished, and offline or ``include_online``).  ``p`` is written into the
leaves of a sum-tree so that drawing B trajectories costs O(B log n).

``td_error_rank`` scores by μ_τ, the EMA of the per-sample |δ| of chunks drawn from τ:
μ ← β μ + (1 − β) |δ|.  Episodes never sampled yet ("unseen", including every newly finished
online episode) get score +inf, i.e. they share the top rank, so new episodes are never
starved; the first visit sets μ = |δ|.  Duplicates of one episode in a batch are **averaged**
into a single observation before one EMA step (order-independent; documented choice).

Keeping ranks current uses ``ranking.merge_update`` (changed slots only) rather than a full
sort; the leaves are then recomputed and the tree rebuilt (O(n) vectorised work per update).
The ``normalized`` metric is the report's non-ranked variant: p ∝ min-max-normalised return
(sum of rewards), mixed with eps of uniform, kept for reproducing its negative result.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
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
        if self.temperature <= 0:
            raise ValueError(f"T-PER temperature must be > 0, got {self.temperature}")


@struct.dataclass
class PriorityState:
    index: ranking.RankIndex  # slots sorted by score
    tree: sum_tree.SumTree  # leaf = p(τ); total 1 (0 when nothing is included)


def included(store: TrajectoryStore, cfg: TPERConfig) -> jax.Array:
    """``(E,)`` bool: episodes the trajectory-priority sampler may draw."""
    t = store.episodes
    src_ok = (t.source == OFFLINE) | cfg.include_online
    return t.valid & t.finished & src_ok


def scores(store: TrajectoryStore, cfg: TPERConfig) -> jax.Array:
    """``(E,)`` float32 ranking scores; excluded slots get -inf (they sort last)."""
    t = store.episodes
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
    return jnp.where(included(store, cfg), s, -jnp.inf)


def _probabilities(index: ranking.RankIndex, store: TrajectoryStore, cfg: TPERConfig
                   ) -> jax.Array:
    """Per-slot p(τ) ``(E,)`` from the sorted index."""
    incl_sorted = jnp.isfinite(index.sorted_scores) | (index.sorted_scores > 0)  # +inf counts
    n = incl_sorted.sum()
    n_safe = jnp.maximum(n, 1).astype(jnp.float32)
    if cfg.metric == "normalized":
        s = jnp.where(incl_sorted, index.sorted_scores, 0.0)
        lo = jnp.min(jnp.where(incl_sorted, s, jnp.inf))
        hi = jnp.max(jnp.where(incl_sorted, s, -jnp.inf))
        w = jnp.where(incl_sorted, (s - lo) / jnp.maximum(hi - lo, 1e-8), 0.0)
        # All returns equal → all weights 0: fall back to uniform.
        w = jnp.where(w.sum() > 0, w, incl_sorted.astype(jnp.float32))
    else:
        ranks = ranking.average_ranks(index.sorted_scores)
        w = jnp.where(incl_sorted, (ranks + 1.0) ** (-cfg.alpha_rank), 0.0)
    p_sorted = (1.0 - cfg.eps) * w / jnp.maximum(w.sum(), 1e-30) + cfg.eps / n_safe
    p_sorted = jnp.where(incl_sorted, p_sorted, 0.0)
    return jnp.zeros_like(p_sorted).at[index.order].set(p_sorted)


def init_priorities(store: TrajectoryStore, cfg: TPERConfig) -> tuple[PriorityState,
                                                                       TrajectoryStore]:
    """Sort every slot once and build the tree; clears the store's dirty list."""
    index = ranking.build_index(scores(store, cfg))
    tree = sum_tree.create(store.num_slots, _probabilities(index, store, cfg))
    return PriorityState(index=index, tree=tree), clear_dirty(store)


def _unique(ids: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sort ``ids`` and flag the first occurrence of each masked id; O(B log B)."""
    big = jnp.iinfo(jnp.int32).max
    keyed = jnp.where(mask, ids.astype(jnp.int32), big)
    s = jnp.sort(keyed)
    first = jnp.concatenate([jnp.array([True]), s[1:] != s[:-1]]) & (s != big)
    return s, first


def sync(state: PriorityState, store: TrajectoryStore, cfg: TPERConfig,
         extra_slots: jax.Array | None = None) -> tuple[PriorityState, TrajectoryStore]:
    """Bring the index and tree up to date with the store.

    Merges the slots the store marked dirty (episodes finished or overwritten) plus
    ``extra_slots`` (e.g. the episodes whose μ just changed); falls back to a full re-sort if
    the dirty buffer overflowed.  Clears the dirty list.
    """
    slots = store.dirty
    mask = jnp.arange(slots.shape[0]) < store.num_dirty
    if extra_slots is not None:
        slots = jnp.concatenate([slots, extra_slots.astype(jnp.int32)])
        mask = jnp.concatenate([mask, jnp.ones(extra_slots.shape, bool)])
    uniq, first = _unique(slots, mask)
    all_scores = scores(store, cfg)
    uniq_c = jnp.clip(uniq, 0, store.num_slots - 1)

    def merged(_):
        return ranking.merge_update(state.index, uniq_c, all_scores[uniq_c], first)

    def resorted(_):
        return ranking.build_index(all_scores)

    # A re-sort gives every slot the same p(τ) as the merge (ties share an average rank), so
    # the seeds of a vmapped run may all re-sort when one overflowed.
    index = seed_cond(store.dirty_overflow, resorted, merged, None, true_is_safe=True)
    tree = sum_tree.rebuild(state.tree, _probabilities(index, store, cfg))
    return PriorityState(index=index, tree=tree), clear_dirty(store)


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
    """One T-PER priority step after a gradient update: EMA of μ, then ``sync``."""
    store = update_mu(store, episode_ids, td_abs, cfg.ema_beta, mask)
    ids = episode_ids if mask is None else jnp.where(mask, episode_ids, episode_ids[0])
    return sync(state, store, cfg, extra_slots=ids)
