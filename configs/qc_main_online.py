"""QC's `main_online.py` (RLPD / RLPD-AC / QC-RLPD of QC's README) as a preset.

    tper-train --config configs/qc_main_online.py --env_name=... --horizon_length=5 \
        --agent.bc_alpha=0.01
"""

from tper_jit.config.presets import QC_MAIN_ONLINE


def get_config():
    return {**QC_MAIN_ONLINE, "agent": dict(QC_MAIN_ONLINE["agent"])}
