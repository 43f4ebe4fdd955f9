"""Recipe `acfql_transformer` on the MJX task `lift`, GPU-sized (64 envs).

    tper-train --config configs/lift/acfql_transformer.py [--seed=1 --num_seeds=3 ...]
"""

from tper_jit.config.presets import recipe


def get_config():
    return recipe("acfql_transformer", "lift")
