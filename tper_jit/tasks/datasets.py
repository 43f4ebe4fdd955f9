"""The offline dataset of a run, read by the loader its ``TaskSpec`` names (before anything is
compiled), with the task's reward rule (shift, ``--sparse``) and action clipping applied."""

from __future__ import annotations

from tper_jit import data
from tper_jit.config.flags import TrainConfig
from tper_jit.data.common import FlatDataset, take_proportion
from tper_jit.data.generated_npz import load_generated_npz
from tper_jit.tasks import mjx_tasks
from tper_jit.tasks.resolve import TaskSpec, task_of


def load_dataset(cfg: TrainConfig, task: TaskSpec | None = None) -> FlatDataset:
    """The run's offline dataset (``_load``), cut to its first ``--dataset_proportion`` of
    transitions as QC cuts it (``data.common.take_proportion``)."""
    return take_proportion(_load(cfg, task), cfg.dataset_proportion)


def _load(cfg: TrainConfig, task: TaskSpec | None) -> FlatDataset:
    """MJX task names (``lift``, ``cube-single-singletask-task1``, …) → their generated oracle
    dataset (made and cached on first use, or ``--dataset_path``); robomimic names or an
    ``.hdf5`` ``--dataset_path`` → the robomimic loader; otherwise the OGBench loader
    (``--dataset_path`` one npz, ``--ogbench_dataset_dir`` a shard directory, default
    ``~/.ogbench/data/<dataset>.npz``).  ``task`` defaults to ``task_of(cfg)``."""
    task = task or task_of(cfg)
    path = task.dataset_path
    sparse = task.rewards.sparse
    if task.loader == "generated-npz":
        if path is None:
            path = str(mjx_tasks.ensure_dataset(cfg.env_name, cfg.dataset_episodes))
        return load_generated_npz(path, env_name=cfg.env_name, reward_shift=task.rewards.shift,
                                  sparse=sparse)
    robomimic_name = data.is_robomimic_env(cfg.env_name)
    if task.loader == "robomimic-hdf5" and not robomimic_name:
        return data.load_robomimic_hdf5(path, env_name=cfg.env_name, sparse=sparse,
                                        filter_key=cfg.filter_key or None)
    kwargs = {"sparse": sparse}
    if robomimic_name:
        kwargs["filter_key"] = cfg.filter_key or None
    else:
        if cfg.filter_key:
            raise ValueError("--filter_key selects robomimic demos (mask/<key>); "
                             f"{cfg.env_name!r} is not a robomimic dataset")
        if not data.parse_ogbench_env_name(cfg.env_name).singletask:
            raise ValueError(f"--env_name={cfg.env_name!r}: OGBench files carry no rewards; use "
                             "a singletask name (e.g. cube-double-play-singletask-task2-v0) so "
                             "rewards and masks are relabelled for one task")
    return data.load_dataset(cfg.env_name, dataset_path=path,
                             dataset_dir=cfg.ogbench_dataset_dir or None, **kwargs)
