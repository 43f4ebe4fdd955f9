"""Offline dataset loaders: OGBench npz (one file or a shard directory) and robomimic hdf5.

Each returns a ``FlatDataset`` (flat float32 transition arrays + ``DatasetMeta``) whose
``store_arrays()`` are the data arguments of ``tper_jit.replay.store.build``.  Inputs are
validated before any heavy work; problems raise ``FileNotFoundError`` / ``ValueError`` naming the
file.  ``load_dataset(env_name, ...)`` picks the loader from the environment name.
"""

from __future__ import annotations

from typing import Any

from tper_jit.data.common import (
    ACTION_CLIP_EPS,
    DatasetMeta,
    FlatDataset,
    clip_actions,
    concat_into,
    content_hash,
    sparsify_rewards,
)
from tper_jit.data.ogbench_npz import (
    count_ogbench_rows,
    iter_ogbench_shards,
    list_ogbench_shards,
    load_ogbench,
    load_ogbench_dir,
    load_ogbench_npz,
)
from tper_jit.data.ogbench_relabel import (
    OGBenchName,
    SingletaskTargets,
    make_singletask_targets,
    parse_ogbench_env_name,
    relabel,
    singletask_targets,
)
from tper_jit.data.robomimic_hdf5 import (
    DEFAULT_LOW_DIM_KEYS,
    ROBOMIMIC_EPISODE_LIMITS,
    RobomimicName,
    default_robomimic_path,
    episode_limit,
    is_robomimic_env,
    load_robomimic,
    load_robomimic_hdf5,
    parse_robomimic_env_name,
)


def load_dataset(env_name: str, *, dataset_path: str | None = None,
                 dataset_dir: str | None = None, **kwargs: Any) -> FlatDataset:
    """robomimic names (``square-mh-low`` / ``square-mh-low_dim``) → ``load_robomimic``;
    anything else → ``load_ogbench`` (``dataset_dir`` = a shard directory).  ``kwargs``:
    ``sparse``, ``clip``, ``expected_obs_dim``, ``compute_hash``, and ``filter_key`` /
    ``obs_keys`` (robomimic) or ``targets`` / ``max_shards`` (OGBench)."""
    if is_robomimic_env(env_name):
        if dataset_dir is not None:
            raise ValueError(f"{env_name!r}: dataset_dir is for OGBench shard directories; "
                             "pass dataset_path for a robomimic file")
        return load_robomimic(env_name, dataset_path=dataset_path, **kwargs)
    return load_ogbench(env_name, dataset_path=dataset_path, dataset_dir=dataset_dir, **kwargs)


__all__ = [
    "ACTION_CLIP_EPS", "DEFAULT_LOW_DIM_KEYS", "ROBOMIMIC_EPISODE_LIMITS", "DatasetMeta",
    "FlatDataset", "OGBenchName", "RobomimicName", "SingletaskTargets", "clip_actions",
    "concat_into", "content_hash", "count_ogbench_rows", "default_robomimic_path",
    "episode_limit", "is_robomimic_env", "iter_ogbench_shards", "list_ogbench_shards",
    "load_dataset", "load_ogbench", "load_ogbench_dir", "load_ogbench_npz", "load_robomimic",
    "load_robomimic_hdf5", "make_singletask_targets", "parse_ogbench_env_name",
    "parse_robomimic_env_name", "relabel", "singletask_targets", "sparsify_rewards",
]
