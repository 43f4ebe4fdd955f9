"""The loaders' common output, ``FlatDataset``, and the checks and transforms every loader shares.

A dataset is a flat table of N transitions (rows) made of consecutive episodes.  Row ``i`` is
``(observations[i], actions[i], rewards[i], next_observations[i])``; ``terminals[i] = 1`` on the
last row of every episode (termination *or* time-limit truncation: the episode boundary),
``masks[i] = 0`` only where the episode truly terminated (bootstrapping stops there), and
``successes[i] = 1`` where the task is solved.  These are exactly the arrays that
``tper_jit.replay.store.build`` consumes::

    ds = load_robomimic_hdf5(path)
    store = build(**ds.store_arrays(), ...)

Errors: every loader raises ``FileNotFoundError`` (missing file) or ``ValueError`` (anything
wrong with the contents) with the offending file named first, before any heavy work.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

# Offline actions are clipped to ±(1 − ACTION_CLIP_EPS) (ALGORITHM §3): the flow actor's
# targets must stay strictly inside the tanh-free [−1, 1] box.
ACTION_CLIP_EPS = 1e-5

ROW_FIELDS = ("observations", "actions", "rewards", "terminals", "masks", "next_observations",
              "successes")


@dataclasses.dataclass(frozen=True)
class DatasetMeta:
    """Where a dataset came from and what was done to it.

    Attributes:
        sources: the file(s) read, absolute paths, in reading order.
        env_name: the environment name the dataset was loaded for.
        obs_dim: D.  action_dim: A.
        num_episodes: episodes (= rows with ``terminals == 1``).
        num_transitions: N rows.
        content_hash: ``"sha256:<hex>"`` of the file bytes (one file), or of the sorted
            ``name:hash`` lines of every file (several files); ``None`` when not computed.
        options: the processing options applied (sparse, filter key, task id, ...), as sorted
            ``(name, value)`` pairs so the dataclass stays hashable.
    """

    sources: tuple[str, ...]
    env_name: str
    obs_dim: int
    action_dim: int
    num_episodes: int
    num_transitions: int
    content_hash: str | None
    options: tuple[tuple[str, Any], ...] = ()

    def options_dict(self) -> dict[str, Any]:
        return dict(self.options)


@dataclasses.dataclass(frozen=True)
class FlatDataset:
    """Flat transitions plus metadata; N rows, D observation dims, A action dims.

    Arrays (all numpy, all float32):
        observations ``(N, D)``, actions ``(N, A)``, rewards ``(N,)``, terminals ``(N,)`` (1 on
        the last row of every episode), masks ``(N,)`` (0 only on true termination),
        next_observations ``(N, D)``, successes ``(N,)``.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    masks: np.ndarray
    next_observations: np.ndarray
    successes: np.ndarray
    meta: DatasetMeta

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    @property
    def obs_dim(self) -> int:
        return self.meta.obs_dim

    @property
    def action_dim(self) -> int:
        return self.meta.action_dim

    @property
    def num_episodes(self) -> int:
        return self.meta.num_episodes

    @property
    def env_name(self) -> str:
        return self.meta.env_name

    @property
    def content_hash(self) -> str | None:
        return self.meta.content_hash

    def store_arrays(self) -> dict[str, np.ndarray]:
        """The keyword arguments of ``tper_jit.replay.store.build`` that come from data."""
        return {k: getattr(self, k) for k in ROW_FIELDS}


# ----------------------------------------------------------------------------- checks


def require_file(path: str | os.PathLike, what: str = "dataset file") -> str:
    """Absolute path of an existing file, else ``FileNotFoundError`` naming it."""
    p = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.isfile(p):
        hint = " (it is a directory)" if os.path.isdir(p) else ""
        raise FileNotFoundError(f"{p}: {what} not found{hint}")
    return p


def check_finite(source: str, name: str, a: np.ndarray) -> None:
    """``ValueError`` if a float array holds NaN/inf, naming the first bad row."""
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        bad = np.flatnonzero(~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1))
        raise ValueError(f"{source}: `{name}` contains NaN or inf ({len(bad)} rows, first at "
                         f"row {int(bad[0])})")


def check_rows(source: str, arrays: Mapping[str, np.ndarray], ndims: Mapping[str, int]) -> int:
    """Check that every array has the given rank and the same number of rows; returns N.

    Raises ``ValueError`` naming the source and the array on a rank or row-count mismatch, and
    on an empty dataset (N = 0).
    """
    n = None
    first = None
    for name, a in arrays.items():
        want = ndims[name]
        if a.ndim != want:
            raise ValueError(f"{source}: `{name}` must have {want} dims, got shape {a.shape}")
        if n is None:
            n, first = a.shape[0], name
        elif a.shape[0] != n:
            raise ValueError(f"{source}: `{name}` has {a.shape[0]} rows but `{first}` has {n}")
    if not n:
        raise ValueError(f"{source}: the dataset is empty (0 rows)")
    return int(n)


def check_obs_dim(source: str, obs_dim: int, expected_obs_dim: int | None, env_name: str) -> None:
    """``ValueError`` when the dataset's observation dim differs from the environment's."""
    if expected_obs_dim is not None and obs_dim != int(expected_obs_dim):
        raise ValueError(f"{source}: observation dim {obs_dim} does not match the environment "
                         f"{env_name!r} observation dim {int(expected_obs_dim)}")


# ----------------------------------------------------------------------------- transforms


def sparsify_rewards(rewards: np.ndarray) -> np.ndarray:
    """``sparse=True`` rewards: r ← −1·[r ≠ 0], shape kept (for {−1, 0}: −1 until success)."""
    return -(np.asarray(rewards) != 0).astype(np.float32)


def clip_actions(actions: np.ndarray, eps: float = ACTION_CLIP_EPS) -> np.ndarray:
    """Clip offline actions to ``[−(1 − eps), 1 − eps]``, float32, shape kept."""
    return np.clip(np.asarray(actions, np.float32), -1.0 + eps, 1.0 - eps)


def episode_count(terminals: np.ndarray) -> int:
    return int(np.count_nonzero(terminals))


def take_proportion(ds: FlatDataset, proportion: float) -> FlatDataset:
    """QC's ``--dataset_proportion``: the first ``int(N · proportion)`` rows (transitions), in
    file order — QC cuts its flat arrays exactly so (``v[:new_size]``), mid-episode if that is
    where the cut falls.  The cut episode ends there by truncation (``terminals = 1`` on its
    last kept row, ``masks`` untouched: it bootstraps as any time-limit end).  ``proportion``
    in (0, 1]; 1 returns ``ds`` itself."""
    if not 0.0 < proportion <= 1.0:
        raise ValueError(f"--dataset_proportion must be in (0, 1], got {proportion}")
    if proportion == 1.0:
        return ds
    n = int(len(ds) * proportion)
    if n == 0:
        raise ValueError(f"{ds.meta.sources[0]}: --dataset_proportion={proportion} keeps 0 of "
                         f"its {len(ds)} transitions")
    rows = {k: getattr(ds, k)[:n].copy() for k in ROW_FIELDS}
    rows["terminals"][-1] = 1.0
    meta = dataclasses.replace(
        ds.meta, num_transitions=n, num_episodes=episode_count(rows["terminals"]),
        options=tuple(sorted({**ds.meta.options_dict(),
                              "dataset_proportion": proportion}.items())))
    return FlatDataset(**rows, meta=meta)


# ----------------------------------------------------------------------------- hashing


def sha256_file(path: str, chunk_bytes: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in ``chunk_bytes`` pieces (constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def content_hash(paths: Iterable[str]) -> str:
    """``"sha256:<hex>"``: the file's own hash for one file; for several, the sha256 of the
    sorted ``basename:hash`` lines (independent of directory location and reading order)."""
    paths = list(paths)
    if len(paths) == 1:
        return "sha256:" + sha256_file(paths[0])
    lines = sorted(f"{os.path.basename(p)}:{sha256_file(p)}" for p in paths)
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


# ----------------------------------------------------------------------------- assembling


def make_dataset(source: str, *, observations: np.ndarray, actions: np.ndarray,
                 rewards: np.ndarray, terminals: np.ndarray, masks: np.ndarray,
                 next_observations: np.ndarray, successes: np.ndarray, sources: tuple[str, ...],
                 env_name: str, content_hash: str | None, options: Mapping[str, Any],
                 expected_obs_dim: int | None = None) -> FlatDataset:
    """Validate final arrays (ranks, row counts, finiteness, obs dim) and wrap them.

    Args:
        source: the name used in error messages (file or directory).
        observations, next_observations: ``(N, D)``; actions ``(N, A)``; the rest ``(N,)``.
    """
    arrays = dict(observations=observations, actions=actions, rewards=rewards,
                  terminals=terminals, masks=masks, next_observations=next_observations,
                  successes=successes)
    arrays = {k: np.asarray(v, np.float32) for k, v in arrays.items()}
    ndims = {k: (2 if k in ("observations", "actions", "next_observations") else 1)
             for k in arrays}
    n = check_rows(source, arrays, ndims)
    if arrays["next_observations"].shape != arrays["observations"].shape:
        raise ValueError(f"{source}: `next_observations` shape "
                         f"{arrays['next_observations'].shape} differs from `observations` "
                         f"shape {arrays['observations'].shape}")
    for k, a in arrays.items():
        check_finite(source, k, a)
    obs_dim = int(arrays["observations"].shape[1])
    check_obs_dim(source, obs_dim, expected_obs_dim, env_name)
    if arrays["terminals"][-1] != 1:
        raise ValueError(f"{source}: the last row is not an episode end (terminals[-1] = "
                         f"{arrays['terminals'][-1]})")
    meta = DatasetMeta(sources=tuple(sources), env_name=env_name, obs_dim=obs_dim,
                       action_dim=int(arrays["actions"].shape[1]),
                       num_episodes=episode_count(arrays["terminals"]), num_transitions=n,
                       content_hash=content_hash, options=tuple(sorted(options.items())))
    return FlatDataset(**arrays, meta=meta)


def concat_into(parts: Iterable[FlatDataset], total_rows: int, *, env_name: str | None = None,
                content_hash: str | None = None) -> FlatDataset:
    """Concatenate datasets into arrays preallocated for ``total_rows`` rows.

    ``parts`` may be a generator: each part is copied into place and can be freed before the
    next one is produced, so peak memory is the output plus one part (not all parts twice).

    Raises ``ValueError`` if the parts hold more or fewer rows than ``total_rows``, or disagree
    on observation/action dims.
    """
    out: dict[str, np.ndarray] | None = None
    row = 0
    sources: list[str] = []
    episodes = 0
    first: FlatDataset | None = None
    for part in parts:
        n = len(part)
        src = ",".join(part.meta.sources)
        if out is None:
            first = part
            out = {k: np.empty((total_rows, *getattr(part, k).shape[1:]), np.float32)
                   for k in ROW_FIELDS}
        elif (part.obs_dim, part.action_dim) != (first.obs_dim, first.action_dim):
            raise ValueError(f"{src}: dims (obs {part.obs_dim}, action {part.action_dim}) differ "
                             f"from {first.meta.sources[0]} (obs {first.obs_dim}, action "
                             f"{first.action_dim})")
        if row + n > total_rows:
            raise ValueError(f"{src}: more rows than the {total_rows} preallocated")
        for k in ROW_FIELDS:
            out[k][row:row + n] = getattr(part, k)
        row += n
        episodes += part.num_episodes
        sources.extend(part.meta.sources)
    if out is None or first is None:
        raise ValueError("concat_into: no datasets to concatenate (empty dataset)")
    if row != total_rows:
        raise ValueError(f"{sources[0]}...: {row} rows read but {total_rows} preallocated")
    meta = dataclasses.replace(first.meta, sources=tuple(sources),
                               env_name=env_name or first.meta.env_name, num_episodes=episodes,
                               num_transitions=row, content_hash=content_hash)
    return FlatDataset(**out, meta=meta)


def make_synthetic_dataset(obs_dim: int, n: int, episode_length: int, seed: int = 0,
                           action_dim: int = 5, env_name: str = "synthetic") -> FlatDataset:
    """Random Gaussian observations, uniform actions in [−1, 1], reward −1 everywhere and
    episodes of ``episode_length`` rows (truncated, never terminated): data of the right shape
    for MJX tasks in tests and benchmarks, where learning quality is not the point."""
    rng = np.random.default_rng(seed)
    terminals = np.zeros(n)
    terminals[episode_length - 1::episode_length] = 1
    obs = rng.normal(size=(n, obs_dim))
    return make_dataset("synthetic", observations=obs,
                        actions=rng.uniform(-1, 1, (n, action_dim)), rewards=-np.ones(n),
                        terminals=terminals, masks=np.ones(n), next_observations=obs,
                        successes=np.zeros(n), sources=("synthetic",), env_name=env_name,
                        content_hash=None, options={})


def read_npz_array(path: str, file: Any, key: str, dtype: Any = None) -> np.ndarray:
    """``np.asarray(file[key], dtype)`` of an open npz; a corrupt array inside a readable
    archive (bad CRC, truncated deflate stream) becomes one ValueError naming the file and
    the array, instead of a zipfile / zlib traceback."""
    try:
        return np.asarray(file[key], dtype)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
        raise ValueError(f"{path}: array `{key}` is unreadable (corrupt or truncated file: "
                         f"{e})") from None


def read_h5_array(path: str, dataset: Any) -> np.ndarray:
    """``dataset[()]`` of an h5py dataset; a read error (a corrupt compressed chunk) becomes
    one ValueError naming the file and the dataset."""
    try:
        return dataset[()]
    except (OSError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path}: dataset {dataset.name} is unreadable (corrupt file: "
                         f"{e})") from None


def check_chunk_length(ds: FlatDataset, horizon: int) -> None:
    """At least one episode must hold an action chunk of ``horizon`` steps: with every
    episode shorter, every sampled chunk is masked out, the critic loss is exactly 0 and
    nothing is learned (a silent no-op run)."""
    ends = np.flatnonzero(ds.terminals)
    lengths = np.diff(np.concatenate([[-1], ends]))
    longest = int(lengths.max()) if lengths.size else len(ds)
    if longest < horizon:
        raise ValueError(f"{ds.meta.sources[0]}: every episode is shorter than "
                         f"--horizon_length={horizon} (the longest has {longest} steps), so no "
                         "action chunk fits and nothing can be learned; lower "
                         "--horizon_length")
