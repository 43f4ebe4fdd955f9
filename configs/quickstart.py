"""The quickstart: cluster-balanced offline -> T-PER online on the MJX `lift` task, sized for a
2-core CPU (this is what `tper-train` runs with no arguments).

    tper-train --config configs/quickstart.py
"""

from tper_jit.config.presets import QUICKSTART


def get_config():
    return dict(QUICKSTART)
