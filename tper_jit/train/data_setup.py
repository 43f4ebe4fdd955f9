"""Pick and run the dataset loader for a ``TrainConfig`` (before anything is compiled)."""

from __future__ import annotations

from tper_jit import data
from tper_jit.data.common import FlatDataset
from tper_jit.data.generated_npz import load_generated_npz
from tper_jit.train import env_setup
from tper_jit.train.config import TrainConfig

HDF5_SUFFIXES = (".hdf5", ".h5")


def load_dataset(cfg: TrainConfig) -> FlatDataset:
    """MJX task names (``lift``, ``cube-single-singletask-task1``, …) → their generated oracle
    dataset (made and cached on first use, or ``--dataset_path``); robomimic names or an
    ``.hdf5`` ``--dataset_path`` → the robomimic loader; otherwise the
    OGBench loader (``--dataset_path`` one npz, ``--ogbench_dataset_dir`` a shard directory,
    default ``~/.ogbench/data/<dataset>.npz``).  ``--sparse`` and action clipping apply."""
    path = cfg.dataset_path or None
    shard_dir = cfg.ogbench_dataset_dir or None
    if env_setup.is_mjx_task(cfg.env_name) and not (path and path.endswith(HDF5_SUFFIXES)):
        if path is None:
            path = str(env_setup.ensure_dataset(cfg.env_name, cfg.dataset_episodes))
        return load_generated_npz(path, env_name=cfg.env_name,
                                  reward_shift=env_setup.reward_shift(cfg.env_name),
                                  sparse=cfg.sparse)
    if path and path.endswith(HDF5_SUFFIXES) and not data.is_robomimic_env(cfg.env_name):
        return data.load_robomimic_hdf5(path, env_name=cfg.env_name, sparse=cfg.sparse,
                                        filter_key=cfg.filter_key or None)
    kwargs = {"sparse": cfg.sparse}
    if data.is_robomimic_env(cfg.env_name):
        kwargs["filter_key"] = cfg.filter_key or None
    else:
        if cfg.filter_key:
            raise ValueError("--filter_key selects robomimic demos (mask/<key>); "
                             f"{cfg.env_name!r} is not a robomimic dataset")
        if not data.parse_ogbench_env_name(cfg.env_name).singletask:
            raise ValueError(f"--env_name={cfg.env_name!r}: OGBench files carry no rewards; use "
                             "a singletask name (e.g. cube-double-play-singletask-task2-v0) so "
                             "rewards and masks are relabelled for one task")
    return data.load_dataset(cfg.env_name, dataset_path=path, dataset_dir=shard_dir, **kwargs)
