"""Seed recipe 4 — the full method: cluster-balanced offline + T-PER online.

    tper-train --config configs/full.py --env_name=square-mh-low --cluster_k=7
"""


def get_config():
    return {
        "run_group": "tper",
        "horizon_length": 5,
        "sparse": False,
        "use_ptr_backward": True,
        "use_ptr_online_priority": True,
        "metric": "td_error_rank",
        "cluster_sampler": True,
        "agent": {"alpha": 100.0},
    }
