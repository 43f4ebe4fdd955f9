"""Recipe `acfql_transformer` on OGBench `cube-single`, singletask task 1
(others via --env_name), through the host bridge.

    tper-generate --source ogbench --env cube-single --type play \
        --episodes 1000 --out ~/.ogbench/data
    tper-train --config configs/ogbench_cube_single/acfql_transformer.py
"""

from tper_jit.config.presets import recipe


def get_config():
    return recipe("acfql_transformer", "cube-single")
