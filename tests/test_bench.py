"""The benchmark entry point runs end to end (tiny sizes) so it cannot rot unnoticed.

The sampler and update benches run in CI; the online, per-agent and seeds benches compile
whole trainer programs (minutes on two cores) and are in the slow tier: run
``python3 -m pytest -q -m slow tests/test_bench.py`` before spending device time on the
benchmarks (README "Benchmarks").
"""

import pytest

from tper_jit.bench.__main__ import main as bench_main
from tper_jit.bench.sampler import add_arguments, run


def test_sampler_bench_runs_and_reports_ratios(capsys):
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--n", "50", "--transitions", "2000", "--steps", "3",
                         "--ref-steps", "2", "--repeats", "1", "--update-hidden", "8",
                         "--update-batch", "8", "--update-rows", "500", "--staleness"])
    rows = run(args)
    assert len(rows) == 1 and rows[0]["n"] == 50
    assert rows[0]["ours_ms"] > 0 and rows[0]["ref_ms"] > 0 and rows[0]["exact_ms"] > 0
    assert rows[0]["update_ms"] > 0 and rows[0]["pct_of_update"] > 0
    out = capsys.readouterr().out
    assert "speed-up" in out and "x |" in out and "% of update" in out
    assert "of the 8 update" in out and "TV(buffered law, exact law)" in out


def test_bench_cli_rejects_unknown_benchmark(capsys):
    with pytest.raises(SystemExit):
        bench_main(["nope"])
    assert "invalid choice" in capsys.readouterr().err


def test_update_bench_runs_tiny():
    import argparse

    from tper_jit.bench import update

    p = argparse.ArgumentParser()
    update.add_arguments(p)
    out = update.run(p.parse_args(["--hidden", "16", "--batch", "8", "--rows", "500",
                                   "--chunk", "2", "--repeats", "1", "--agents"]))
    assert out["ref_steps_per_s"] > 0 and out["fused_steps_per_s"] > 0 and out["ratio"] > 0
    assert out["bf16_ratio"] > 0  # the bf16 row is measured next to f32 by default
    assert "agents" not in out


@pytest.mark.slow
def test_update_bench_agent_rows_run_tiny(capsys):
    import argparse

    from tper_jit.bench import update
    from tper_jit.bench.agents import AGENT_ROWS

    p = argparse.ArgumentParser()
    update.add_arguments(p)
    out = update.run(p.parse_args(["--hidden", "8", "--batch", "4", "--rows", "400",
                                   "--chunk", "2", "--repeats", "1", "--utd", "2",
                                   "--critic-d-model", "8", "--critic-heads", "2",
                                   "--critic-layers", "1"]))
    assert sorted(out["agents"]) == sorted(AGENT_ROWS)
    for name, r in out["agents"].items():
        assert r["grad_steps_per_s"] > 0 and r["cost_vs_acfql"] > 0, name
    rl = out["agents"]["rlpd"]
    assert abs(rl["grad_steps_per_s"] - 2 * rl["updates_per_s"]) < 1e-6 * rl["grad_steps_per_s"]
    printed = capsys.readouterr().out
    assert "cost/grad step vs ACFQL" in printed
    assert "acfql-transformer (d 8, 1 blk)" in printed  # the critic size flags reach the row


@pytest.mark.slow
def test_online_bench_runs_tiny():
    import argparse

    from tper_jit.bench import online

    p = argparse.ArgumentParser()
    online.add_arguments(p)
    out = online.run(p.parse_args(["--env", "reach", "--num-envs", "2", "--horizon", "2",
                                   "--batch", "8", "--hidden", "16", "--iterations", "1",
                                   "--repeats", "1"]))
    assert out["fused_grad"] > 0 and out["host_grad"] > 0


@pytest.mark.slow
def test_seeds_bench_runs_tiny_and_reports_per_seed_ratios(capsys):
    out = bench_main(["seeds", "--seeds", "1", "2", "--steps", "3", "--hidden", "8",
                      "--batch", "8", "--rows", "400", "--repeats", "1", "--num-envs", "2"])
    assert out == 0
    text = capsys.readouterr().out
    assert "| 1 |" in text and "| 2 |" in text and "per-seed cost vs S=1" in text
