"""Recipe `baseline` on the MJX task `cube-double`, GPU-sized (64 envs, 4x512 networks).

    tper-train --config configs/cube_double/baseline.py [--seed=1 ...]
"""

from tper_jit.config.presets import recipe


def get_config():
    return recipe("baseline", "cube-double")
