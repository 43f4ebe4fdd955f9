"""Recipe `qc_rlpd` on the MJX task `lift`, GPU-sized (64 envs).

    tper-train --config configs/lift/qc_rlpd.py [--seed=1 --num_seeds=3 ...]
"""

from tper_jit.config.presets import recipe


def get_config():
    return recipe("qc_rlpd", "lift")
