"""Seed recipe 3 — T-PER: trajectory priorities by TD error online (uniform offline).

    tper-train --config configs/tper.py --env_name=square-mh-low
"""


def get_config():
    return {
        "run_group": "tper",
        "horizon_length": 5,
        "sparse": False,
        "use_ptr_backward": True,
        "use_ptr_online_priority": True,
        "metric": "td_error_rank",
        "cluster_sampler": False,
        "agent": {"alpha": 100.0},
    }
