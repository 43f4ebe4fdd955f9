"""Recipe `tper` on the MJX task `cube-single`, GPU-sized (64 envs, 4x512 networks).

    tper-train --config configs/cube_single/tper.py [--seed=1 ...]
"""

from tper_jit.config.presets import recipe


def get_config():
    return recipe("tper", "cube-single")
