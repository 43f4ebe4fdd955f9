"""Every sampler of the seed as a small pure function over a ``ReplayState``.

Each sampler is ``sample(state, key, batch_size) -> Sample(episode_ids, starts, probs)``:
draw episode slots from a sum-tree (O(B log n); T-PER's tree is over rank positions), then a
start offset inside each episode by a start rule.  ``probs`` is the probability of drawing
that (episode, start) pair, the quantity importance weights need.

Samplers (``SamplerConfig.kind``):
- ``transition``: uniform over all stored rows of live episodes (leaf = episode length, start
  uniform over the whole episode, tail starts included as in the reference's flat buffer).
- ``trajectory``: uniform over finished episodes, then a start.
- ``cluster``: cluster-balanced, p(τ) = 1/K · 1/|C(τ)| over offline episodes (ALGORITHM §5).
- ``tper``: transition-uniform for the first ``warmup_steps`` online steps, then T-PER
  priorities (ALGORITHM §4), optionally with PTR backward start selection.
- ``mixture``: ``offline_fraction`` of each batch transition-uniform from offline episodes,
  the rest from online episodes (RLPD symmetric sampling); all offline while no online row
  exists.
- ``oper``: offline rows ∝ OPER priorities p (ALGORITHM §7), exact per (episode, start) pair
  through a row-level sum-tree (``tper_jit.replay.oper_tree``); starts by the trajectory rule
  (``allow_tail_starts``).  Needs ``init_replay(..., oper_probs=p)``.

Start rules: ``all`` t ~ U{0..L−1}; ``head`` t ~ U{0..max(0, L−H)} (the reference's
trajectory samplers; chunks never need padding unless L < H); ``last`` t = max(0, L−H);
``sweep`` walks backwards one chunk per visit of the episode (PTR).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tper_jit.replay import oper_tree, priorities, sum_tree
from tper_jit.replay.store import TrajectoryStore
from tper_jit.seed_axis import seed_cond

SAMPLER_KINDS = ("transition", "trajectory", "cluster", "tper", "mixture", "oper")


class Sample(NamedTuple):
    episode_ids: jax.Array  # (B,) int32 slots
    starts: jax.Array  # (B,) int32 offsets inside the episodes
    probs: jax.Array  # (B,) float32 probability of the (episode, start) pair


@struct.dataclass
class ReplayState:
    store: TrajectoryStore
    priorities: priorities.PriorityState
    cluster_tree: sum_tree.SumTree  # leaf = 1/(K |C(τ)|) for clustered offline episodes
    online_step: jax.Array  # int32 env steps taken online (drives the T-PER warmup)
    oper: oper_tree.OPERState | None = None  # OPER priorities; None unless oper_probs given


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """Static sampler settings."""

    kind: str = "transition"  # one of SAMPLER_KINDS
    horizon: int = 5  # H, chunk length
    allow_tail_starts: bool = False  # trajectory samplers may start in the last H-1 steps
    offline_fraction: float = 0.5  # mixture: share of each batch from offline episodes
    stratified: bool = True  # stratified draws from the sum-trees
    tper: priorities.TPERConfig = dataclasses.field(default_factory=priorities.TPERConfig)

    def __post_init__(self):
        if self.kind not in SAMPLER_KINDS:
            raise ValueError(f"sampler kind must be one of {SAMPLER_KINDS}, got {self.kind!r}")
        if self.horizon < 1:
            raise ValueError(f"--horizon_length must be >= 1, got {self.horizon}")
        if not 0.0 <= self.offline_fraction <= 1.0:
            raise ValueError(f"offline_fraction must be in [0, 1], got {self.offline_fraction}")


def cluster_leaves(cluster_ids: np.ndarray, num_slots: int) -> np.ndarray:
    """Leaf weights ``(num_slots,)`` with p(τ) = 1/K · 1/|C(τ)| (host, at set-up).

    ``cluster_ids`` ``(n_off,)`` for the offline episodes; ids < 0 are left out.  K counts
    the non-empty clusters.
    """
    ids = np.asarray(cluster_ids)
    leaves = np.zeros(num_slots, np.float64)
    ok = ids >= 0
    if not ok.any():
        raise ValueError("cluster sampler: no episode has a cluster id (all < 0)")
    _, inv, counts = np.unique(ids[ok], return_inverse=True, return_counts=True)
    leaves[np.flatnonzero(ok)] = 1.0 / (len(counts) * counts[inv])
    return leaves.astype(np.float32)


def init_replay(store: TrajectoryStore, cfg: SamplerConfig,
                cluster_ids: np.ndarray | None = None, oper_probs: np.ndarray | None = None
                ) -> ReplayState:
    """Bundle a store with the sampler states it needs (host, once).

    ``oper_probs`` ``(N_off,)``: normalised OPER priorities of the offline rows (required by
    kind ``oper``; also usable by any kind for OPER reweighting).
    """
    if cfg.kind == "oper" and oper_probs is None:
        raise ValueError("sampler kind 'oper' needs oper_probs (normalised OPER priorities)")
    oper = None if oper_probs is None else oper_tree.build_oper_state(
        store, oper_probs, cfg.horizon, _traj_rule(cfg))
    prio, store = priorities.init_priorities(store, cfg.tper)
    if cluster_ids is None:
        cluster_ids = np.asarray(store.episodes.cluster[: store.num_offline_episodes])
    if cfg.kind == "cluster":
        leaves = cluster_leaves(cluster_ids, store.num_slots)
    else:
        leaves = np.zeros(store.num_slots, np.float32)
    return ReplayState(store=store, priorities=prio,
                       cluster_tree=sum_tree.create(store.num_slots, jnp.asarray(leaves)),
                       online_step=jnp.int32(0), oper=oper)


def draw_starts(store: TrajectoryStore, key: jax.Array, episode_ids: jax.Array, horizon: int,
                rule: str) -> tuple[jax.Array, jax.Array]:
    """Start offsets ``(B,)`` inside ``episode_ids`` and their conditional probability."""
    t = store.episodes
    length = jnp.maximum(t.length[episode_ids], 1)
    if rule in ("all", "head"):
        n = length if rule == "all" else jnp.maximum(1, length - horizon + 1)
        u = jax.random.uniform(key, episode_ids.shape)
        start = jnp.minimum((u * n).astype(jnp.int32), n - 1)
        return start, 1.0 / n.astype(jnp.float32)
    last = jnp.maximum(0, length - horizon)
    if rule == "last":
        return last, jnp.ones(episode_ids.shape, jnp.float32)
    if rule == "sweep":
        n_chunks = (length + horizon - 1) // horizon
        start = jnp.maximum(0, last - (t.visits[episode_ids] % n_chunks) * horizon)
        return start, jnp.ones(episode_ids.shape, jnp.float32)
    raise ValueError(f"unknown start rule {rule!r}")


def sample_tree(tree: sum_tree.SumTree, store: TrajectoryStore, key: jax.Array,
                batch_size: int, horizon: int, rule: str, stratified: bool = True) -> Sample:
    """Episodes ∝ leaves of ``tree``, then starts by ``rule``."""
    k_ep, k_start = jax.random.split(key)
    ids, p_ep = sum_tree.sample(tree, k_ep, batch_size, stratified=stratified)
    starts, p_start = draw_starts(store, k_start, ids, horizon, rule)
    return Sample(ids, starts, p_ep * p_start)


def sample_transitions(state: ReplayState, key: jax.Array, batch_size: int, cfg: SamplerConfig
                       ) -> Sample:
    return sample_tree(state.store.length_tree, state.store, key, batch_size, cfg.horizon,
                       "all", cfg.stratified)


def _traj_rule(cfg: SamplerConfig) -> str:
    return "all" if cfg.allow_tail_starts else "head"


def sample_trajectories(state: ReplayState, key: jax.Array, batch_size: int,
                        cfg: SamplerConfig) -> Sample:
    return sample_tree(state.store.traj_tree, state.store, key, batch_size, cfg.horizon,
                       _traj_rule(cfg), cfg.stratified)


def sample_cluster(state: ReplayState, key: jax.Array, batch_size: int, cfg: SamplerConfig
                   ) -> Sample:
    return sample_tree(state.cluster_tree, state.store, key, batch_size, cfg.horizon,
                       _traj_rule(cfg), cfg.stratified)


def sample_tper(state: ReplayState, key: jax.Array, batch_size: int, cfg: SamplerConfig
                ) -> Sample:
    """Transition-uniform during warmup, then trajectory priorities: a sorted position ∝
    p(τ) from the position tree, mapped to its slot (``priorities.sample_slots``)."""
    rule = {"none": _traj_rule(cfg), "last": "last", "sweep": "sweep"}[cfg.tper.backward]

    def warm(_):
        return sample_transitions(state, key, batch_size, cfg)

    def prio(_):
        k_ep, k_start = jax.random.split(key)
        ids, p_ep = priorities.sample_slots(state.priorities, k_ep, batch_size, cfg.stratified)
        starts, p_start = draw_starts(state.store, k_start, ids, cfg.horizon, rule)
        return Sample(ids, starts, p_ep * p_start)

    return seed_cond(state.online_step < cfg.tper.warmup_steps, warm, prio, None)


def sample_mixture(state: ReplayState, key: jax.Array, batch_size: int, cfg: SamplerConfig
                   ) -> Sample:
    """RLPD symmetric sampling: a fixed share from offline rows, the rest from online rows."""
    store = state.store
    tree = store.length_tree
    n_off = int(round(cfg.offline_fraction * batch_size))
    n_on = batch_size - n_off
    k_off, k_on, k_start = jax.random.split(key, 3)
    mass_off = sum_tree.prefix_sum(tree, store.num_offline_episodes)
    mass_on = tree.total - mass_off
    has_online = mass_on > 0
    ids_off, _ = sum_tree.sample(tree, k_off, n_off, lo=0.0, hi=mass_off,
                                 stratified=cfg.stratified)
    lo_on = jnp.where(has_online, mass_off, 0.0)
    hi_on = jnp.where(has_online, tree.total, mass_off)
    ids_on, _ = sum_tree.sample(tree, k_on, n_on, lo=lo_on, hi=hi_on, stratified=cfg.stratified)
    # Round-off at the range boundary must not leak a draw into the other source.
    e_off = store.num_offline_episodes
    ids_off = jnp.minimum(ids_off, e_off - 1)
    ids_on = jnp.where(has_online, jnp.maximum(ids_on, e_off), jnp.minimum(ids_on, e_off - 1))
    ids = jnp.concatenate([ids_off, ids_on])
    starts, _ = draw_starts(store, k_start, ids, cfg.horizon, "all")
    is_off = ids < store.num_offline_episodes
    p_off = jnp.where(has_online, cfg.offline_fraction, 1.0) / jnp.maximum(mass_off, 1.0)
    p_on = (1.0 - cfg.offline_fraction) / jnp.maximum(mass_on, 1.0)
    return Sample(ids, starts, jnp.where(is_off, p_off, p_on))


def sample_oper(state: ReplayState, key: jax.Array, batch_size: int, cfg: SamplerConfig
                ) -> Sample:
    """Offline rows ∝ OPER leaves p_i·[valid start], mapped to their (episode, start) pairs."""
    if state.oper is None:
        raise ValueError("sampler kind 'oper' needs a ReplayState built with oper_probs")
    rows, probs = sum_tree.sample(state.oper.tree, key, batch_size, stratified=cfg.stratified)
    ids, starts = oper_tree.row_to_pair(state.store, rows)
    return Sample(ids, starts, probs)


_SAMPLERS = {"transition": sample_transitions, "trajectory": sample_trajectories,
             "cluster": sample_cluster, "tper": sample_tper, "mixture": sample_mixture,
             "oper": sample_oper}


def make_sampler(cfg: SamplerConfig):
    """``sample(state, key, batch_size) -> Sample`` for ``cfg.kind`` (pure, jittable)."""
    fn = _SAMPLERS[cfg.kind]

    def sample(state: ReplayState, key: jax.Array, batch_size: int) -> Sample:
        s = fn(state, key, batch_size, cfg)
        # trace-time guard: every sampler returns (B,) int episode ids and starts
        chex.assert_shape([s.episode_ids, s.starts], (batch_size,))
        chex.assert_type([s.episode_ids, s.starts], int)
        return s

    return sample


def importance_weights(probs: jax.Array, num_transitions: jax.Array, beta: float | jax.Array
                       ) -> jax.Array:
    """PER importance-sampling weights ``(B,)`` for draws with pair probabilities ``probs``.

    ``w = (N · p)^(−β) / max_b w`` with N the number of stored transitions (pass
    ``state.store.num_transitions()``), so a transition-uniform draw has weight 1 and
    over-sampled chunks are down-weighted.  β is annealed towards 1 by the caller.  An
    extension of the method (off by default in the trainer), not part of the seed.
    """
    w = (jnp.maximum(num_transitions * probs, 1e-12)) ** (-jnp.asarray(beta, jnp.float32))
    return w / jnp.max(w)
