"""Seed recipe 2 — cluster-balanced trajectory sampling offline (metric uniform online).

    tper-train --config configs/cluster_balanced.py --env_name=square-mh-low --cluster_k=7
"""


def get_config():
    return {
        "run_group": "cluster_balanced",
        "horizon_length": 5,
        "sparse": False,
        "use_ptr_backward": True,
        "use_ptr_online_priority": True,
        "metric": "uniform",
        "cluster_sampler": True,
        "agent": {"alpha": 100.0},
    }
