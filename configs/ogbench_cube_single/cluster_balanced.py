"""Recipe `cluster_balanced` on OGBench `cube-single`, singletask task 1
(others via --env_name), through the host bridge: 1M offline + 1M online steps.

    tper-generate --source ogbench --env cube-single --type play \
        --episodes 1000 --out ~/.ogbench/data
    tper-train --config configs/ogbench_cube_single/cluster_balanced.py
"""

from tper_jit.config.presets import recipe


def get_config():
    return recipe("cluster_balanced", "cube-single")
