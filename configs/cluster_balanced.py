"""Seed recipe `cluster_balanced` (flags of the seed README; pass the task with --env_name).

    tper-train --config configs/cluster_balanced.py --env_name=square-mh-low
"""

from tper_jit.config.presets import recipe


def get_config():
    return recipe("cluster_balanced")
