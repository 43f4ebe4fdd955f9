"""TrajectoryStore: fixed-capacity replay with episodes as first-class citizens.

Rows live in two blocks of arrays:
- ``offline``: the dataset, loaded once (N_off rows), never written again.  Kept apart so that
  a vmapped multi-seed run can hold it once and broadcast it.
- ``online``: ``num_streams`` equal sub-rings of ``rows_per_stream`` rows, one per vectorised
  environment, so that every episode is contiguous (modulo its ring) even though N envs write
  interleaved.  Writing costs O(rows written): one row per stream per step, no roll.

The episode table has one slot per episode: offline episodes in ``[0, E_off)``, then each
stream owns ``episodes_per_stream`` slots used as a ring.  An online episode disappears (slot
``valid = False``, zero weight in every tree) as soon as the ring writes over its first row or
its slot is reused.  The open (unfinished) episode of each stream is valid and grows row by
row, so transition-uniform sampling sees its rows; trajectory-level samplers only see finished
episodes.

Two sum-trees over the slots are kept current by every write (O(S log n) per step):
``length_tree`` (leaf = rows of the live episode, i.e. transition-uniform sampling) and
``traj_tree`` (leaf = 1 per live finished episode, i.e. trajectory-uniform).  Slots whose
finished/valid status changed are appended to ``dirty`` so the rank-priority index can merge
them in (see ``priorities.sync``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from tper_jit.replay import sum_tree
from tper_jit.replay.episode_stats import episode_stats_np, top_means_jax
from tper_jit.seed_axis import seed_cond

OFFLINE, ONLINE = 0, 1


@struct.dataclass
class Transitions:
    """Row arrays; R rows, D observation dims, A action dims.

    ``terminals`` marks the last row of an episode (termination *or* truncation), ``masks`` is
    0 only on a true termination (bootstrapping stops there).
    """

    observations: jax.Array  # (R, D) float32
    actions: jax.Array  # (R, A) float32
    rewards: jax.Array  # (R,) float32
    terminals: jax.Array  # (R,) float32, 1 on the last row of an episode
    masks: jax.Array  # (R,) float32, 0 on true termination
    next_observations: jax.Array  # (R, D) float32
    successes: jax.Array  # (R,) float32, 1 where the task is solved after this step


@struct.dataclass
class EpisodeTable:
    """Per-slot episode records, each ``(E,)``."""

    start: jax.Array  # int32 first row, relative to the episode's block (offline) or sub-ring
    length: jax.Array  # int32 rows stored (grows while the episode is open)
    source: jax.Array  # int32 OFFLINE / ONLINE
    stream: jax.Array  # int32 writing stream, -1 for offline
    cluster: jax.Array  # int32 cluster id from set-up clustering, -1 for none
    success: jax.Array  # bool, any success flag in the episode
    ret_sum: jax.Array  # float32 sum of rewards
    ret_mean: jax.Array  # float32 mean reward (set when the episode finishes)
    ret_min: jax.Array  # float32 min reward
    ret_uqm: jax.Array  # float32 mean of the top quarter of rewards
    ret_uhm: jax.Array  # float32 mean of the top half of rewards
    mu: jax.Array  # float32 T-PER EMA of |delta|
    seen: jax.Array  # bool, mu has been set by at least one sampled chunk
    visits: jax.Array  # int32 number of sampled chunks that updated mu
    valid: jax.Array  # bool, the slot holds a live episode
    finished: jax.Array  # bool, the episode has ended


@struct.dataclass
class StreamState:
    """Writer state of each online stream, each ``(S,)``."""

    cursor: jax.Array  # int32 rows written so far; ring position = cursor % rows_per_stream
    episodes_started: jax.Array  # int32
    slot: jax.Array  # int32 open episode slot, -1 when none is open


@struct.dataclass
class TrajectoryStore:
    offline: Transitions
    online: Transitions
    online_row_episode: jax.Array  # (S * rows_per_stream,) int32 slot owning each row, -1 none
    episodes: EpisodeTable
    streams: StreamState
    length_tree: sum_tree.SumTree
    traj_tree: sum_tree.SumTree
    dirty: jax.Array  # (dirty_capacity,) int32 slots whose status changed since the last sync
    num_dirty: jax.Array  # int32
    dirty_overflow: jax.Array  # bool: more changes than dirty_capacity → full re-sort at sync
    num_offline_rows: int = struct.field(pytree_node=False)
    num_offline_episodes: int = struct.field(pytree_node=False)
    num_streams: int = struct.field(pytree_node=False)
    rows_per_stream: int = struct.field(pytree_node=False)
    episodes_per_stream: int = struct.field(pytree_node=False)
    max_episode_length: int = struct.field(pytree_node=False)

    @property
    def num_slots(self) -> int:
        return self.num_offline_episodes + self.num_streams * self.episodes_per_stream

    @property
    def obs_dim(self) -> int:
        return self.offline.observations.shape[-1]

    @property
    def action_dim(self) -> int:
        return self.offline.actions.shape[-1]

    def num_transitions(self) -> jax.Array:
        """Rows of all live episodes (the transition-uniform population), scalar."""
        return self.length_tree.total

    def num_episodes(self) -> jax.Array:
        """Live finished episodes, scalar."""
        return self.traj_tree.total


def episode_bounds(terminals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, lengths)`` of the episodes of a flat dataset.

    An episode ends on a row with ``terminals != 0``; rows after the last terminal form one
    more (unfinished) episode rather than being dropped or merged into anything.
    """
    n = len(terminals)
    ends = np.flatnonzero(np.asarray(terminals) != 0)
    if n and (len(ends) == 0 or ends[-1] != n - 1):
        ends = np.append(ends, n - 1)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64) if len(ends) else ends
    return starts.astype(np.int32), (ends - starts + 1).astype(np.int32)


def _check_rows(name: str, a: np.ndarray, n: int, ndim: int) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != ndim or a.shape[0] != n:
        want = f"({n},)" if ndim == 1 else f"({n}, ...) with {ndim} dims"
        raise ValueError(f"TrajectoryStore: `{name}` must have shape {want}, got {a.shape}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"TrajectoryStore: `{name}` contains NaN or inf")
    return a


def build(observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
          terminals: np.ndarray, next_observations: np.ndarray, *,
          masks: np.ndarray | None = None, successes: np.ndarray | None = None,
          cluster_ids: np.ndarray | None = None, num_streams: int = 1,
          rows_per_stream: int = 0, episodes_per_stream: int | None = None,
          max_episode_length: int | None = None, dirty_capacity: int | None = None
          ) -> TrajectoryStore:
    """Build a store from the flat arrays a dataset loader returns (host, once).

    Args:
        observations, next_observations: ``(N, D)``; actions ``(N, A)``; rewards ``(N,)``.
        terminals: ``(N,)`` episode-end flags (boundaries are taken from them).
        masks: ``(N,)`` 0 on true termination; default ``1 - terminals``.
        successes: ``(N,)`` per-row success flags; default zeros.
        cluster_ids: ``(n_episodes,)`` ids from ``clustering.cluster_episodes``; default -1.
        num_streams: S online writers (vectorised envs).
        rows_per_stream: online ring rows per stream (0 → an offline-only store).
        episodes_per_stream: online episode slots per stream; default
            ``max(1, rows_per_stream // 8)``.
        max_episode_length: longest online episode; an episode must fit in its sub-ring.
            Default ``rows_per_stream``.
        dirty_capacity: status changes buffered between priority syncs; default ``4 S + 8``.
    """
    n = len(observations)
    if n == 0:
        raise ValueError("TrajectoryStore: the offline dataset is empty (0 rows)")
    observations = _check_rows("observations", observations, n, 2)
    actions = _check_rows("actions", actions, n, 2)
    rewards = _check_rows("rewards", rewards, n, 1)
    terminals = _check_rows("terminals", terminals, n, 1)
    next_observations = _check_rows("next_observations", next_observations, n, 2)
    if next_observations.shape != observations.shape:
        raise ValueError("TrajectoryStore: `next_observations` must match `observations` shape "
                         f"{observations.shape}, got {next_observations.shape}")
    masks = 1.0 - (terminals != 0) if masks is None else _check_rows("masks", masks, n, 1)
    successes = np.zeros(n) if successes is None else _check_rows("successes", successes, n, 1)
    if num_streams < 1:
        raise ValueError(f"TrajectoryStore: num_streams must be >= 1, got {num_streams}")
    if rows_per_stream < 0:
        raise ValueError(f"TrajectoryStore: rows_per_stream must be >= 0, got {rows_per_stream}")
    max_len = rows_per_stream if max_episode_length is None else int(max_episode_length)
    if rows_per_stream and max_len > rows_per_stream:
        raise ValueError(f"TrajectoryStore: max_episode_length={max_len} does not fit in "
                         f"rows_per_stream={rows_per_stream}; raise the online capacity")
    eps_per_stream = max(1, rows_per_stream // 8) if episodes_per_stream is None \
        else int(episodes_per_stream)
    if eps_per_stream < 1:
        raise ValueError("TrajectoryStore: episodes_per_stream must be >= 1")

    starts, lengths = episode_bounds(terminals)
    n_off = len(starts)
    if cluster_ids is None:
        cluster_ids = np.full(n_off, -1)
    elif np.shape(cluster_ids) != (n_off,):
        raise ValueError(f"TrajectoryStore: `cluster_ids` must have shape ({n_off},) (one per "
                         f"episode), got {np.shape(cluster_ids)}")
    stats = episode_stats_np(rewards, starts, lengths)
    ep_success = np.zeros(n_off, bool)
    np.logical_or.at(ep_success, np.repeat(np.arange(n_off), lengths), successes != 0)

    rows_s = max(1, rows_per_stream)
    e = n_off + num_streams * eps_per_stream
    f32 = np.float32

    def pad(a):  # offline episode values followed by empty online slots
        a = np.asarray(a)
        return jnp.asarray(np.concatenate([a, np.zeros((e - n_off,), a.dtype)]))

    table = EpisodeTable(
        start=pad(starts.astype(np.int32)), length=pad(lengths.astype(np.int32)),
        source=pad(np.full(n_off, OFFLINE, np.int32)), stream=pad(np.full(n_off, -1, np.int32)),
        cluster=jnp.asarray(np.concatenate([np.asarray(cluster_ids, np.int32),
                                            np.full(e - n_off, -1, np.int32)])),
        success=pad(ep_success), **{k: pad(v) for k, v in stats.items()},
        mu=jnp.zeros((e,), f32), seen=jnp.zeros((e,), bool), visits=jnp.zeros((e,), jnp.int32),
        valid=pad(np.ones(n_off, bool)), finished=pad(np.ones(n_off, bool)))

    def block(rows, d, a):
        return Transitions(
            observations=jnp.zeros((rows, d), f32), actions=jnp.zeros((rows, a), f32),
            rewards=jnp.zeros((rows,), f32), terminals=jnp.zeros((rows,), f32),
            masks=jnp.zeros((rows,), f32), next_observations=jnp.zeros((rows, d), f32),
            successes=jnp.zeros((rows,), f32))

    offline = Transitions(
        observations=jnp.asarray(observations, f32), actions=jnp.asarray(actions, f32),
        rewards=jnp.asarray(rewards, f32), terminals=jnp.asarray(terminals != 0, f32),
        masks=jnp.asarray(masks, f32), next_observations=jnp.asarray(next_observations, f32),
        successes=jnp.asarray(successes != 0, f32))
    length_leaves = np.zeros(e, f32)
    length_leaves[:n_off] = lengths
    traj_leaves = np.zeros(e, f32)
    traj_leaves[:n_off] = 1.0
    dirty_cap = 4 * num_streams + 8 if dirty_capacity is None else int(dirty_capacity)
    return TrajectoryStore(
        offline=offline, online=block(num_streams * rows_s, observations.shape[1],
                                      actions.shape[1]),
        online_row_episode=jnp.full((num_streams * rows_s,), -1, jnp.int32),
        episodes=table,
        streams=StreamState(cursor=jnp.zeros((num_streams,), jnp.int32),
                            episodes_started=jnp.zeros((num_streams,), jnp.int32),
                            slot=jnp.full((num_streams,), -1, jnp.int32)),
        length_tree=sum_tree.create(e, jnp.asarray(length_leaves)),
        traj_tree=sum_tree.create(e, jnp.asarray(traj_leaves)),
        dirty=jnp.zeros((dirty_cap,), jnp.int32), num_dirty=jnp.int32(0),
        dirty_overflow=jnp.bool_(False),
        num_offline_rows=n, num_offline_episodes=n_off, num_streams=num_streams,
        rows_per_stream=rows_s, episodes_per_stream=eps_per_stream,
        max_episode_length=max(1, max_len))


def row_index(store: TrajectoryStore, slots: jax.Array, offsets: jax.Array
              ) -> tuple[jax.Array, jax.Array]:
    """Physical rows of ``offsets`` (broadcast against ``slots``) inside episodes ``slots``.

    Returns ``(is_online, row)``: ``row`` indexes ``store.online`` where ``is_online`` and
    ``store.offline`` elsewhere.  Offsets are not clipped here (see ``gather``).
    """
    t = store.episodes
    start = t.start[slots]
    is_online = t.source[slots] == ONLINE
    offline_row = start + offsets
    online_row = t.stream[slots] * store.rows_per_stream + (start + offsets) % store.rows_per_stream
    return is_online, jnp.where(is_online, online_row, offline_row)


def read_rows(store: TrajectoryStore, is_online: jax.Array, row: jax.Array) -> Transitions:
    """Gather rows (any index shape) from whichever block each belongs to."""

    def pick(off, on):
        r_off = jnp.clip(row, 0, off.shape[0] - 1)
        r_on = jnp.clip(row, 0, on.shape[0] - 1)
        cond = is_online.reshape(is_online.shape + (1,) * (off.ndim - 1))
        return jnp.where(cond, on[r_on], off[r_off])

    return jax.tree.map(pick, store.offline, store.online)


def _mark_dirty(store: TrajectoryStore, slots: jax.Array, mask: jax.Array) -> TrajectoryStore:
    cap = store.dirty.shape[0]
    pos = store.num_dirty + jnp.cumsum(mask) - 1
    dirty = store.dirty.at[jnp.where(mask, pos, cap)].set(slots, mode="drop")
    total = store.num_dirty + mask.sum()
    return store.replace(dirty=dirty, num_dirty=jnp.minimum(total, cap),
                         dirty_overflow=store.dirty_overflow | (total > cap))


def _invalidate(store: TrajectoryStore, slots: jax.Array, mask: jax.Array) -> TrajectoryStore:
    """Remove live episodes ``slots`` (where ``mask``) from the table and every tree."""
    e = store.num_slots
    mask = mask & store.episodes.valid[jnp.clip(slots, 0, e - 1)]
    tgt = jnp.where(mask, slots, e)
    t = store.episodes
    t = t.replace(valid=t.valid.at[tgt].set(False, mode="drop"),
                  finished=t.finished.at[tgt].set(False, mode="drop"))
    zeros = jnp.zeros(slots.shape, jnp.float32)
    store = store.replace(
        episodes=t,
        length_tree=sum_tree.set_leaves(store.length_tree, slots, zeros, mask),
        traj_tree=sum_tree.set_leaves(store.traj_tree, slots, zeros, mask))
    return _mark_dirty(store, slots, mask)


def add_step(store: TrajectoryStore, observations: jax.Array, actions: jax.Array,
             rewards: jax.Array, terminated: jax.Array, truncated: jax.Array,
             next_observations: jax.Array, successes: jax.Array,
             write: jax.Array | None = None) -> TrajectoryStore:
    """Append one transition per stream; O(S log n).  Pure, jittable.

    Args:
        observations, next_observations: ``(S, D)``; actions ``(S, A)``.
        rewards, successes: ``(S,)``.
        terminated: ``(S,)`` true termination (mask 0, episode ends).
        truncated: ``(S,)`` time-limit end (mask 1, episode ends).
        write: ``(S,)`` bool, streams that have a transition this step (e.g. the rest of an
            action chunk after an episode end is not written).  Default all.
    """
    s_ids = jnp.arange(store.num_streams, dtype=jnp.int32)
    write = jnp.ones((store.num_streams,), bool) if write is None else write.astype(bool)
    e = store.num_slots
    st = store.streams

    # 1. Streams without an open episode take the next slot of their slot ring.
    need_new = write & (st.slot < 0)
    new_slot = (store.num_offline_episodes + s_ids * store.episodes_per_stream
                + st.episodes_started % store.episodes_per_stream)
    store = _invalidate(store, new_slot, need_new)
    pos = st.cursor % store.rows_per_stream
    tgt = jnp.where(need_new, new_slot, e)
    t = store.episodes

    def put(arr, val):
        return arr.at[tgt].set(val, mode="drop")

    t = t.replace(start=put(t.start, pos), length=put(t.length, 0), source=put(t.source, ONLINE),
                  stream=put(t.stream, s_ids), cluster=put(t.cluster, -1),
                  success=put(t.success, False), ret_sum=put(t.ret_sum, 0.0),
                  ret_mean=put(t.ret_mean, 0.0), ret_min=put(t.ret_min, jnp.inf),
                  ret_uqm=put(t.ret_uqm, 0.0), ret_uhm=put(t.ret_uhm, 0.0),
                  mu=put(t.mu, 0.0), seen=put(t.seen, False), visits=put(t.visits, 0),
                  valid=put(t.valid, True), finished=put(t.finished, False))
    slot = jnp.where(need_new, new_slot, st.slot)
    store = store.replace(episodes=t, streams=st.replace(
        slot=slot, episodes_started=st.episodes_started + need_new.astype(jnp.int32)))

    # 2. The row about to be written may belong to an older episode: that episode goes.
    # `online_row_episode` may be stale (the slot was reused since), so the row only counts
    # as owned if it lies inside the slot's current episode.
    row = s_ids * store.rows_per_stream + pos
    owner = store.online_row_episode[row]
    oc = jnp.clip(owner, 0, e - 1)
    t = store.episodes
    rel = (pos - t.start[oc]) % store.rows_per_stream
    owned = (owner >= 0) & t.valid[oc] & (rel < t.length[oc])
    store = _invalidate(store, owner, write & owned & (owner != slot))

    # 3. Write the row (dropped for streams that do not write).
    done = terminated.astype(bool) | truncated.astype(bool)
    wrow = jnp.where(write, row, store.online_row_episode.shape[0])
    vals = Transitions(observations=observations, actions=actions, rewards=rewards,
                       terminals=done, masks=1.0 - terminated.astype(jnp.float32),
                       next_observations=next_observations, successes=successes)
    online = jax.tree.map(lambda a, v: a.at[wrow].set(v.astype(a.dtype), mode="drop"),
                          store.online, vals)
    row_episode = store.online_row_episode.at[wrow].set(slot, mode="drop")

    # 4. Episode statistics and trees.
    t = store.episodes
    stgt = jnp.where(write, slot, e)
    sl = jnp.clip(slot, 0, e - 1)
    length = t.length[sl] + 1
    r = rewards.astype(jnp.float32)
    ret_sum = t.ret_sum[sl] + r
    t = t.replace(length=t.length.at[stgt].set(length, mode="drop"),
                  ret_sum=t.ret_sum.at[stgt].set(ret_sum, mode="drop"),
                  ret_min=t.ret_min.at[stgt].set(jnp.minimum(t.ret_min[sl], r), mode="drop"),
                  success=t.success.at[stgt].set(t.success[sl] | (successes != 0), mode="drop"))
    store = store.replace(online=online, online_row_episode=row_episode, episodes=t)
    store = store.replace(length_tree=sum_tree.set_leaves(
        store.length_tree, slot, length.astype(jnp.float32), write))

    # 5. Episodes that end now are finished: final statistics, trajectory tree, dirty list.
    fin = write & done
    # _finish only writes where `fin`, so running it for a seed with no ending is a no-op.
    store = seed_cond(jnp.any(fin), _finish, lambda s, *_: s, store, slot, length, ret_sum,
                      fin, true_is_safe=True)
    st = store.streams
    return store.replace(streams=st.replace(cursor=st.cursor + write.astype(jnp.int32),
                                            slot=jnp.where(fin, -1, st.slot)))


def _finish(store: TrajectoryStore, slot, length, ret_sum, fin) -> TrajectoryStore:
    e = store.num_slots
    l_max = store.max_episode_length
    t = store.episodes
    sl = jnp.clip(slot, 0, e - 1)
    # The last min(length, l_max) rows of each finishing episode.
    first = jnp.maximum(length - l_max, 0)
    offs = first[:, None] + jnp.arange(l_max)[None, :]
    is_on, rows = row_index(store, sl[:, None], offs)
    rews = read_rows(store, is_on, rows).rewards
    uqm, uhm = top_means_jax(rews, jnp.minimum(length, l_max))
    tgt = jnp.where(fin, slot, e)
    t = t.replace(finished=t.finished.at[tgt].set(True, mode="drop"),
                  ret_mean=t.ret_mean.at[tgt].set(ret_sum / length, mode="drop"),
                  ret_uqm=t.ret_uqm.at[tgt].set(uqm, mode="drop"),
                  ret_uhm=t.ret_uhm.at[tgt].set(uhm, mode="drop"))
    store = store.replace(episodes=t, traj_tree=sum_tree.set_leaves(
        store.traj_tree, slot, jnp.ones(slot.shape, jnp.float32), fin))
    return _mark_dirty(store, slot, fin)


def add_steps(store: TrajectoryStore, observations: jax.Array, actions: jax.Array,
              rewards: jax.Array, terminated: jax.Array, truncated: jax.Array,
              next_observations: jax.Array, successes: jax.Array, write: jax.Array
              ) -> TrajectoryStore:
    """``add_step`` over a time axis: every argument ``(S, T, ...)`` (e.g. the H sub-steps of
    an executed action chunk, with ``write`` False for the dropped rest of a chunk)."""
    xs = (observations, actions, rewards, terminated, truncated, next_observations, successes,
          write)
    xs = jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), xs)

    def body(s, x):
        return add_step(s, *x), None

    store, _ = jax.lax.scan(body, store, xs)
    return store


def clear_dirty(store: TrajectoryStore) -> TrajectoryStore:
    return store.replace(num_dirty=jnp.int32(0), dirty_overflow=jnp.bool_(False))
