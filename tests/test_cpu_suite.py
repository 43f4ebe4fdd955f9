"""``docs/results/cpu_suite.py``: every command of the results page parses with the trainer's
own flag parser (a renamed flag breaks this test, not a two-hour queue), and the queue's
filters and report do what its help says."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pytest

from tper_jit.agents.registry import agent_config
from tper_jit.cli import parse_args

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("cpu_suite",
                                                  ROOT / "docs" / "results" / "cpu_suite.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _flags(cmd: str) -> list[str]:
    """The trainer flags of a ``tper-train`` or ``python -m tper_jit.oper`` command line."""
    argv = shlex.split(cmd)
    argv = argv[1:] if argv[0] == "tper-train" else argv[3:]  # drop the program
    if "--out" in argv:  # the OPER-A pre-stage's own flag
        i = argv.index("--out")
        del argv[i:i + 2]
    return argv


def test_every_command_parses_and_names_existing_presets(suite, tmp_path):
    runs = suite.entries(tmp_path)
    assert len({name for name, _ in runs}) == len(runs)  # names key the manifest
    for name, cmd in runs:
        cfg = parse_args(_flags(cmd))  # --config files must exist too
        agent_config(cfg)  # and the agent overrides must be valid for the agent type
        if "transformer" in name:
            assert cfg.agent["critic_d_model"] == 64 and cfg.agent["critic_num_layers"] == 1
        if "rlpd" in name:
            assert cfg.offline_steps == 0 and cfg.utd_ratio == 5, name


def test_only_skip_and_list(suite, tmp_path, capsys):
    assert suite.main(["--out", str(tmp_path), "--only", "ogb8", "--skip", "transformer",
                       "--list"]) == 0
    names = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith(" ")]
    assert len(names) == 12  # OPER-R, OPER-A, RLPD, RLPD-AC x seeds 0-2
    assert all(n.startswith("ogb8/") and "transformer" not in n for n in names)
    assert not any(tmp_path.iterdir())  # --list starts nothing and writes nothing


def test_report_groups_seeds_and_counts_failures(suite, tmp_path, capsys):
    (tmp_path / "manifest.tsv").write_text(
        "lift/rlpd\t0\t100\t10:00:00\n"
        "ogb8/cube-single/rlpd/s0\t0\t300\t10:05:00\n"
        "ogb8/cube-single/rlpd/s1\t1\t20\t10:06:00\n"
        "ogb8/cube-single/rlpd/s2\t0\t500\t10:15:00\n")
    assert suite.main(["--out", str(tmp_path), "--report"]) == 0
    out = {ln.split()[0]: ln.split()[1:] for ln in capsys.readouterr().out.splitlines()}
    assert out["lift/rlpd"][:4] == ["ok", "1", "failed", "0"]
    assert out["ogb8/cube-single/rlpd"][:4] == ["ok", "2", "failed", "1"]
    assert out["ogb8/cube-single/rlpd"][5] == "400"  # mean wall time of the finished runs
