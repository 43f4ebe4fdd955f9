"""Recipe `cluster_balanced` on the MJX task `cube-double`, GPU-sized (64 envs, 4x512 networks).

    tper-train --config configs/cube_double/cluster_balanced.py [--seed=1 ...]
"""

from tper_jit.config.presets import recipe


def get_config():
    return recipe("cluster_balanced", "cube-double")
