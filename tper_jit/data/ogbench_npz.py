"""OGBench npz datasets: one file, or a directory of shards (the 100M datasets) read one by one.

File schema (ogbench 1.2.2): ``observations`` ``(M, D)``, ``actions`` ``(M, A)``, ``terminals``
``(M,)`` bool (1 on each episode's last row), optional ``qpos`` ``(M, nq)``, ``qvel``,
``button_states`` ``(M, n_buttons)`` (the values *before* each row's action, i.e. of its
observation).  Episodes are stored flat, one after another.

Transitions are built exactly as ``ogbench.load_dataset(path)`` (``compact_dataset=False``)
builds them: the next observation of a row is the following row of the same episode, and the
last row of every episode (which has no successor) is dropped, so an episode of L rows gives
L − 1 transitions and the output row count is ``M − Σ terminals``.  Output ``terminals`` are 1 on
the last kept row of each episode.  OGBench episodes end by time limit only, so ``masks`` are 1
unless singletask relabelling marks a row solved (``ogbench_relabel``).  Without relabelling
targets (goal-conditioned names) rewards and successes are 0 and masks 1.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from tper_jit.data.common import (
    FlatDataset,
    check_finite,
    check_obs_dim,
    clip_actions,
    concat_into,
    content_hash,
    make_dataset,
    read_npz_array,
    require_file,
    sparsify_rewards,
)
from tper_jit.data.ogbench_relabel import (
    SingletaskTargets,
    make_singletask_targets,
    parse_ogbench_env_name,
    relabel,
)

DEFAULT_OGBENCH_DIR = "~/.ogbench/data"
REQUIRED_KEYS = ("observations", "actions", "terminals")
_NDIMS = {"observations": 2, "actions": 2, "terminals": 1, "qpos": 2, "qvel": 2,
          "button_states": 2}


def npz_headers(path: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of every array in an npz file, read from the .npy headers only
    (no array data is loaded or decompressed beyond the header)."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read(f)
                out[info.filename[:-4]] = (tuple(shape), np.dtype(dtype))
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable npz file ({e})") from e
    return out


def validate_npz(path: str, *, need: tuple[str, ...] = (), expected_obs_dim: int | None = None,
                 env_name: str = "") -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Check an OGBench npz file's keys and shapes from its headers; returns the headers.

    Raises ``FileNotFoundError`` (no file) or ``ValueError`` naming the file and the problem:
    a missing key, a wrong rank, arrays with different row counts, an empty file, an
    observation dim different from ``expected_obs_dim``.
    """
    path = require_file(path, "OGBench dataset file")
    headers = npz_headers(path)
    for k in (*REQUIRED_KEYS, *need):
        if k not in headers:
            raise ValueError(f"{path}: missing key {k!r} (has {sorted(headers)})")
    rows = headers["observations"][0][0] if headers["observations"][0] else 0
    for k, (shape, _) in headers.items():
        if k not in _NDIMS:
            continue
        if len(shape) != _NDIMS[k]:
            raise ValueError(f"{path}: `{k}` must have {_NDIMS[k]} dims, got shape {shape}")
        if shape[0] != rows:
            raise ValueError(f"{path}: `{k}` has {shape[0]} rows but `observations` has {rows}")
    if rows == 0:
        raise ValueError(f"{path}: the dataset is empty (0 rows)")
    check_obs_dim(path, headers["observations"][0][1], expected_obs_dim, env_name)
    return headers


def _load_terminals(path: str, file: Any) -> np.ndarray:
    t = read_npz_array(path, file, "terminals")
    if not np.all((t == 0) | (t == 1)):
        raise ValueError(f"{path}: `terminals` must be 0/1 (bool)")
    t = t.astype(np.float32)
    if t[-1] != 1:
        raise ValueError(f"{path}: the last episode is unfinished (terminals[-1] = 0); "
                         "OGBench files end every episode with terminals = 1")
    return t


def load_ogbench_npz(path: str | os.PathLike, *, env_name: str = "",
                     targets: SingletaskTargets | None = None, sparse: bool = False,
                     clip: bool = True, expected_obs_dim: int | None = None,
                     compute_hash: bool = True) -> FlatDataset:
    """Load one OGBench npz file as transitions (see the module docstring).

    Args:
        path: the ``.npz`` file.
        env_name: recorded in the metadata and error messages.
        targets: singletask targets (``make_singletask_targets``); when given, rewards, masks
            and successes are relabelled from ``qpos`` / ``button_states`` exactly as ogbench
            does; when ``None``, rewards = successes = 0 and masks = 1.
        sparse: r ← −1·[r ≠ 0].
        clip: clip actions to ±(1 − 1e−5).
        expected_obs_dim: the environment's observation dim; a mismatch is a ``ValueError``.
        compute_hash: store the file's sha256 in ``meta.content_hash``.

    Returns:
        ``FlatDataset`` with N = M − Σ terminals rows.
    """
    need: tuple[str, ...] = ()
    if targets is not None:
        need = ("qpos", "button_states") if targets.needs_button_states else ("qpos",)
    path = require_file(path, "OGBench dataset file")
    validate_npz(path, need=need, expected_obs_dim=expected_obs_dim, env_name=env_name)
    with np.load(path) as file:
        terminals = _load_terminals(path, file)
        observations = read_npz_array(path, file, "observations", np.float32)
        actions = read_npz_array(path, file, "actions", np.float32)
        info = {k: read_npz_array(path, file, k) for k in need}
    for k, a in (("observations", observations), ("actions", actions), *info.items()):
        check_finite(path, k, a)

    # ogbench.load_dataset: drop each episode's last row, next obs = the following row.
    ob_mask = terminals == 0
    next_ob_mask = np.concatenate([[False], ob_mask[:-1]])
    next_observations = observations[next_ob_mask]
    observations = observations[ob_mask]
    actions = actions[ob_mask]
    out_terminals = np.concatenate([terminals[1:], [1.0]])[ob_mask].astype(np.float32)
    n = len(observations)
    if n == 0:
        raise ValueError(f"{path}: the dataset is empty (every episode has a single row)")

    if targets is not None:
        rewards, masks, successes = relabel(
            targets, info["qpos"][ob_mask],
            info["button_states"][ob_mask] if "button_states" in info else None)
    else:
        rewards = np.zeros(n, np.float32)
        masks = np.ones(n, np.float32)
        successes = np.zeros(n, np.float32)
    if sparse:
        rewards = sparsify_rewards(rewards)
    if clip:
        actions = clip_actions(actions)
    options = dict(format="ogbench_npz", sparse=sparse, clip_actions=clip,
                   relabel=None if targets is None else targets.family)
    return make_dataset(path, observations=observations, actions=actions, rewards=rewards,
                        terminals=out_terminals, masks=masks,
                        next_observations=next_observations, successes=successes,
                        sources=(path,), env_name=env_name,
                        content_hash=content_hash([path]) if compute_hash else None,
                        options=options, expected_obs_dim=expected_obs_dim)


def list_ogbench_shards(directory: str | os.PathLike) -> list[str]:
    """Sorted ``*.npz`` files of a shard directory, validation files (``*-val.npz``) excluded."""
    d = os.path.abspath(os.path.expanduser(os.fspath(directory)))
    if not os.path.isdir(d):
        raise FileNotFoundError(f"{d}: OGBench dataset directory not found")
    shards = sorted(os.path.join(d, f) for f in os.listdir(d)
                    if f.endswith(".npz") and not f.endswith("-val.npz"))
    if not shards:
        raise ValueError(f"{d}: no .npz shards in the directory (empty dataset)")
    return shards


def count_ogbench_rows(path: str) -> int:
    """Transitions ``load_ogbench_npz`` will return for ``path``: M − Σ terminals (reads only
    the ``terminals`` array)."""
    with np.load(path) as file:
        t = _load_terminals(path, file)
    return int(len(t) - np.count_nonzero(t))


def _validate_shards(shards: list[str], kwargs: dict[str, Any]) -> None:
    """Header checks of every shard (keys, ranks, rows, obs dim, equal dims across shards)."""
    targets = kwargs.get("targets")
    need: tuple[str, ...] = ()
    if targets is not None:
        need = ("qpos", "button_states") if targets.needs_button_states else ("qpos",)
    first: tuple[tuple[int, int], str] | None = None
    for s in shards:
        h = validate_npz(s, need=need, expected_obs_dim=kwargs.get("expected_obs_dim"),
                         env_name=kwargs.get("env_name", ""))
        dims = (h["observations"][0][1], h["actions"][0][1])
        if first is not None and dims != first[0]:
            raise ValueError(f"{s}: (obs, action) dims {dims} differ from {first[1]}'s "
                             f"{first[0]}")
        first = first or (dims, s)


def iter_ogbench_shards(directory: str | os.PathLike, *, max_shards: int | None = None,
                        **kwargs: Any) -> Iterator[FlatDataset]:
    """Yield one ``FlatDataset`` per shard, in sorted file order, one shard in memory at a time.

    Every shard's header is validated before the first is loaded, so a bad shard fails fast.
    ``kwargs`` go to ``load_ogbench_npz`` (env_name, targets, sparse, clip, expected_obs_dim,
    compute_hash).
    """
    shards = list_ogbench_shards(directory)[:max_shards]
    _validate_shards(shards, kwargs)
    for s in shards:
        yield load_ogbench_npz(s, **kwargs)


def load_ogbench_dir(directory: str | os.PathLike, *, max_shards: int | None = None,
                     compute_hash: bool = True, **kwargs: Any) -> FlatDataset:
    """All shards of a directory concatenated into preallocated arrays.

    Rows are counted first from each shard's ``terminals`` alone, the output is allocated once,
    and shards are loaded and copied in one at a time (peak memory: output + one shard).
    ``meta.content_hash`` covers every shard read.  ``kwargs`` as for ``iter_ogbench_shards``.
    """
    shards = list_ogbench_shards(directory)[:max_shards]
    _validate_shards(shards, kwargs)
    total = sum(count_ogbench_rows(s) for s in shards)
    parts = (load_ogbench_npz(s, compute_hash=False, **kwargs) for s in shards)
    return concat_into(parts, total, content_hash=content_hash(shards) if compute_hash else None)


def load_ogbench(env_name: str, *, dataset_path: str | None = None,
                 dataset_dir: str | None = None, targets: SingletaskTargets | None = None,
                 **kwargs: Any) -> FlatDataset:
    """Load the dataset of an OGBench env name, relabelled for its task if singletask.

    Args:
        env_name: e.g. ``cube-double-play-singletask-task2-v0``.
        dataset_path: one npz file; default ``~/.ogbench/data/<dataset name>.npz``.
        dataset_dir: a directory of shards (``--ogbench_dataset_dir``); takes precedence.
        targets: singletask targets; default built with ``make_singletask_targets`` (creates
            the ogbench env on CPU MuJoCo for a moment) when the name is singletask.
        kwargs: ``sparse``, ``clip``, ``expected_obs_dim``, ``compute_hash``, ``max_shards``.
    """
    parsed = parse_ogbench_env_name(env_name)
    if dataset_dir is None and dataset_path is None:
        dataset_path = os.path.join(os.path.expanduser(DEFAULT_OGBENCH_DIR),
                                    f"{parsed.dataset_name}.npz")
    if dataset_dir is None:
        require_file(dataset_path, "OGBench dataset file")  # fail before building the env
    elif not os.path.isdir(dataset_dir):
        raise FileNotFoundError(f"--ogbench_dataset_dir: no such directory {dataset_dir!r}")
    if targets is None and parsed.singletask:
        targets = make_singletask_targets(env_name)
    if dataset_dir is not None:
        return load_ogbench_dir(dataset_dir, env_name=env_name, targets=targets, **kwargs)
    kwargs.pop("max_shards", None)
    return load_ogbench_npz(dataset_path, env_name=env_name, targets=targets, **kwargs)
