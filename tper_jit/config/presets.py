"""Preset flag sets: the seed's four recipes, GPU-sized runs on the MJX tasks, the quickstart.

``configs/*.py`` files return these dicts from ``get_config()``; ``tper-train`` with no
arguments runs ``QUICKSTART``.  Every value is an ordinary flag (see ``TrainConfig``).
"""

from __future__ import annotations

# The seed README's recipes (flags only; the task comes from --env_name or a task preset).
RECIPES: dict[str, dict] = {
    "baseline": {"run_group": "baseline", "use_ptr_backward": False, "cluster_sampler": False},
    "cluster_balanced": {"run_group": "cluster_balanced", "use_ptr_backward": True,
                         "use_ptr_online_priority": True, "metric": "uniform",
                         "cluster_sampler": True},
    "tper": {"run_group": "tper", "use_ptr_backward": True, "use_ptr_online_priority": True,
             "metric": "td_error_rank", "cluster_sampler": False},
    "full": {"run_group": "full", "use_ptr_backward": True, "use_ptr_online_priority": True,
             "metric": "td_error_rank", "cluster_sampler": True},
    # Related systems as options of the same trainer (issue 8): OPER-R resampling and ACFQL
    # with the transformer action-sequence critic (both on top of the baseline).
    "oper_r": {"run_group": "oper_r", "use_ptr_backward": False, "cluster_sampler": False,
               "oper": {"resample": True}},
    "acfql_transformer": {"run_group": "acfql_transformer", "use_ptr_backward": False,
                          "cluster_sampler": False,
                          "agent": {"alpha": 100.0, "critic": "transformer"}},
}
COMMON = {"horizon_length": 5, "sparse": False, "agent": {"alpha": 100.0}}

# RLPD family (ALGORITHM §8): no offline pretraining, symmetric sampling, UTD 20 inside the
# agent's update.  RLPD acts on single actions; RLPD-AC and QC-RLPD on 5-step chunks.
RLPD_RECIPES: dict[str, dict] = {
    "rlpd": {"horizon_length": 1, "agent": {}},
    "rlpd_ac": {"horizon_length": 5, "agent": {"action_chunking": True}},
    "qc_rlpd": {"horizon_length": 5, "agent": {"action_chunking": True, "bc_alpha": 0.01}},
}
RLPD_COMMON = {"agent_type": "rlpd", "offline_steps": 0, "symmetric_sampling": True,
               "offline_fraction": 0.5, "utd_ratio": 20, "use_ptr_backward": False,
               "cluster_sampler": False, "sparse": False}

# QC's main_online.py (RLPD, RLPD-AC, QC-RLPD in QC's README): online from scratch, half of
# every batch from the offline data, QC's acrlpd widths and action chunking, UTD 1 and a 1M
# buffer (that script's defaults).  Its README commands run as
# `tper-train --config configs/qc_main_online.py <the same flags>`.
QC_MAIN_ONLINE = {**RLPD_COMMON, "utd_ratio": 1, "buffer_size": 1_000_000,
                  "agent": {"hidden_dims": (512, 512, 512, 512), "action_chunking": True}}

# GPU-sized runs on the shipped MJX tasks (default networks 4x512, B 256).
MJX_TASKS: dict[str, dict] = {
    "lift": {"env_name": "lift", "cluster_k": "3", "dataset_episodes": 1000,
             "offline_steps": 100_000, "online_steps": 200_000},
    "cube-single": {"env_name": "cube-single-singletask-task1", "cluster_k": "3",
                    "dataset_episodes": 1000, "offline_steps": 200_000,
                    "online_steps": 500_000},
    "cube-double": {"env_name": "cube-double-singletask-task1", "cluster_k": "elbow",
                    "dataset_episodes": 2000, "offline_steps": 500_000,
                    "online_steps": 1_000_000},
}
# OGBench singletask tasks through the host bridge (CPU simulators), with the datasets made
# by `tper-generate --source ogbench --env <env> --type play --episodes 1000
# --out ~/.ogbench/data` (the loader's default path).  Budgets as in the QC paper (1M + 1M);
# pick task 1..5 with --env_name.
OGBENCH_TASKS: dict[str, dict] = {
    "cube-single": {"env_name": "cube-single-play-singletask-task1-v0", "cluster_k": "elbow"},
    "puzzle-3x3": {"env_name": "puzzle-3x3-play-singletask-task1-v0", "cluster_k": "elbow",
                   "sparse": True},
}
OGBENCH_RUN = {"offline_steps": 1_000_000, "online_steps": 1_000_000, "num_envs": 8,
               "buffer_size": 1_000_000, "log_interval": 5_000, "eval_interval": 100_000,
               "eval_episodes": 50, "start_training": 5_000, "ptr_warmup_steps": 20_000}

MJX_RUN = {"num_envs": 64, "buffer_size": 1_000_000, "log_interval": 5_000,
           "eval_interval": 20_000, "eval_episodes": 64, "start_training": 5_000,
           "ptr_warmup_steps": 20_000}

# A 2-core CPU: the full method (cluster-balanced offline -> T-PER online) on lift, with
# networks and step counts small enough to finish in minutes.
QUICKSTART: dict = {
    **RECIPES["full"], "env_name": "lift", "run_group": "quickstart", "cluster_k": "3",
    "dataset_episodes": 300, "horizon_length": 5,
    "offline_steps": 5_000, "online_steps": 15_000, "num_envs": 8, "buffer_size": 100_000,
    "start_training": 1_000, "ptr_warmup_steps": 5_000, "log_interval": 1_000,
    "eval_interval": 5_000, "eval_episodes": 32,
    "agent": {"alpha": 100.0, "hidden_dims": (256, 256, 256), "batch_size": 128},
}


def recipe(name: str, task: str | None = None) -> dict:
    """Flags of recipe ``name`` (optionally on MJX task ``task`` with GPU-sized settings)."""
    if name in RLPD_RECIPES:
        out = {**RLPD_COMMON, **RLPD_RECIPES[name], "run_group": name}
    elif name in RECIPES:
        out = {**COMMON, **RECIPES[name]}
    else:
        raise ValueError(f"unknown recipe {name!r}; one of "
                         f"{sorted(RECIPES) + sorted(RLPD_RECIPES)}")
    if task in OGBENCH_TASKS:
        out.update(OGBENCH_RUN)
        out.update(OGBENCH_TASKS[task])
        if name in RLPD_RECIPES:  # no pretraining
            out["offline_steps"] = 0
        out["run_group"] = f"{name}-ogbench-{task}"
    elif task is not None:
        if task not in MJX_TASKS:
            raise ValueError(f"unknown task preset {task!r}; one of "
                             f"{sorted(MJX_TASKS) + sorted(OGBENCH_TASKS)}")
        out.update(MJX_RUN)
        out.update(MJX_TASKS[task])
        if name in RLPD_RECIPES:  # no pretraining; the UTD makes env steps costly
            out.update(offline_steps=0, online_steps=min(out["online_steps"], 200_000))
        out["run_group"] = f"{name}-{task}"
    out["agent"] = dict(out.get("agent", {}))
    return out
