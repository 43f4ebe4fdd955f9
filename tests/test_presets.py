"""Every shipped preset parses into a valid configuration."""

import pathlib

import pytest

from tper_jit.agents.registry import agent_config
from tper_jit.cli import parse_args

PRESETS = sorted((pathlib.Path(__file__).resolve().parents[1] / "configs").rglob("*.py"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_preset_parses(preset):
    cfg = parse_args(["--config", str(preset)])
    acfg = agent_config(cfg)
    if cfg.agent_type == "rlpd":
        utd = 1 if preset.stem == "qc_main_online" else 20  # QC's main_online.py: UTD 1
        assert cfg.offline_steps == 0 and cfg.symmetric_sampling and acfg.utd_ratio == utd
        assert acfg.action_chunking == (preset.stem != "rlpd")
        assert acfg.bc_alpha == (0.01 if preset.stem == "qc_rlpd" else 0.0)
    else:
        assert acfg.alpha == 100.0


def test_presets_exist():
    names = {f"{p.parent.name}/{p.stem}" for p in PRESETS}
    for recipe in ("baseline", "cluster_balanced", "tper", "full"):
        for task in ("lift", "cube_single", "cube_double"):
            assert f"{task}/{recipe}" in names
    assert "configs/quickstart" in names


def test_no_arguments_means_the_quickstart():
    from tper_jit.cli import resolve_argv

    argv = resolve_argv([])
    cfg = parse_args(argv)
    assert cfg.env_name == "lift" and cfg.run_group == "quickstart"
    assert cfg.cluster_sampler and cfg.use_ptr_backward and cfg.metric == "td_error_rank"


def test_quickstart_is_the_full_method_on_an_mjx_task():
    from tper_jit.config.presets import QUICKSTART
    from tper_jit.tasks.resolve import resolve

    assert resolve(QUICKSTART["env_name"]).simulator == "mjx"
    assert QUICKSTART["cluster_sampler"] and QUICKSTART["use_ptr_backward"]
    assert QUICKSTART["metric"] == "td_error_rank"
