"""Every shipped preset parses into a valid configuration."""

import pathlib

import pytest

from tper_jit.agents.acfql import ACFQLConfig
from tper_jit.train.config import parse_args
from tper_jit.train.offline import agent_config

PRESETS = sorted((pathlib.Path(__file__).resolve().parents[1] / "configs").glob("*.py"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_preset_parses(preset):
    cfg = parse_args(["--config", str(preset), "--env_name=square-mh-low"], ACFQLConfig)
    assert agent_config(cfg).alpha == 100.0


def test_presets_exist():
    assert {p.stem for p in PRESETS} >= {"acfql_baseline", "cluster_balanced", "tper", "full"}
