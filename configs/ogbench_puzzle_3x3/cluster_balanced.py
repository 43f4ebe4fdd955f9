"""Recipe `cluster_balanced` on OGBench `puzzle-3x3`, singletask task 1
(others via --env_name), through the host bridge: 1M offline + 1M online steps.

    tper-generate --source ogbench --env puzzle-3x3 --type play \
        --episodes 1000 --out ~/.ogbench/data
    tper-train --config configs/ogbench_puzzle_3x3/cluster_balanced.py
"""

from tper_jit.config.presets import recipe


def get_config():
    return recipe("cluster_balanced", "puzzle-3x3")
