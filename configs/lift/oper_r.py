"""Recipe `oper_r` on the MJX task `lift`, GPU-sized (64 envs).

    tper-train --config configs/lift/oper_r.py [--seed=1 --num_seeds=3 ...]
"""

from tper_jit.config.presets import recipe


def get_config():
    return recipe("oper_r", "lift")
