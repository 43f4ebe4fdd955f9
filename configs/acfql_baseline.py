"""Seed recipe 1 — baseline ACFQL: uniform offline sampling, uniform online replay.

    tper-train --config configs/acfql_baseline.py --env_name=square-mh-low
"""


def get_config():
    return {
        "run_group": "baseline",
        "horizon_length": 5,
        "sparse": False,
        "offline_steps": 1_000_000,
        "online_steps": 1_000_000,
        "cluster_sampler": False,
        "use_ptr_backward": False,
        "agent": {"alpha": 100.0},
    }
