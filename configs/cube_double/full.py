"""Recipe `full` on the MJX task `cube-double`, GPU-sized (64 envs, 4x512 networks).

    tper-train --config configs/cube_double/full.py [--seed=1 ...]
"""

from tper_jit.config.presets import recipe


def get_config():
    return recipe("full", "cube-double")
