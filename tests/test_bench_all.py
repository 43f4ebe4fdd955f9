"""``python -m tper_jit.bench all``: the plan fits the budget, a real tiny run writes the
markdown with the machine header, and a failing or overlong benchmark does not stop the rest.

The real runs use the ``tiny`` sizes and benchmarks injected through the registry (small
modules written to a temporary folder that the benchmark processes import)."""

from __future__ import annotations

import dataclasses
import re
import time

import pytest

from tper_jit.bench import catalog, suite
from tper_jit.bench.__main__ import main as bench_main


def _planned(text: str) -> dict[str, tuple[str, float]]:
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| \d+ \| ([\w-]+) \| ([^|]+) \| (\d+) \|", line)
        if m:
            rows[m[1]] = (m[2].strip(), float(m[3]))
    return rows


@pytest.mark.parametrize("backend,preset", [("cpu", "cpu"), ("gpu", "accel")])
def test_dry_run_lists_every_benchmark_within_the_budget(capsys, backend, preset):
    assert bench_main(["all", "--dry-run", "--backend", backend, "--budget-s", "480"]) == 0
    out = capsys.readouterr().out
    assert f"sizes {preset}" in out
    rows = _planned(out)
    assert list(rows) == [b.name for b in catalog.REGISTRY]
    planned = [est for status, est in rows.values() if status == "planned"]
    assert planned and sum(planned) <= 480
    for name, (status, _) in rows.items():
        assert status == "planned" or status.startswith("skipped ("), name
    for b in catalog.REGISTRY:  # the arguments of the chosen preset are shown
        assert " ".join([b.command, *b.argv(preset)]) in out


def test_dry_run_auto_asks_jax_and_a_small_budget_skips_with_reasons(capsys):
    assert suite.main(["--dry-run", "--budget-s", "100"]) == 0
    out = capsys.readouterr().out
    assert "backend cpu, sizes cpu" in out  # the tests run JAX on the CPU
    rows = _planned(out)
    assert sum(est for status, est in rows.values() if status == "planned") <= 100
    assert any(s.startswith("skipped (estimated") for s, _ in rows.values())


def test_every_preset_parses_with_its_benchmark_flags():
    import argparse
    import importlib

    for b in catalog.REGISTRY:
        module, _, func = b.target.partition(":")
        if func:  # envs_mjx.bench parses its own argv; checked by running it elsewhere
            continue
        p = argparse.ArgumentParser()
        importlib.import_module(module).add_arguments(p)
        for preset in catalog.PRESETS:
            p.parse_args(b.argv(preset))


def _fake(tmp_path, monkeypatch, name: str, body: str, estimate: float) -> catalog.Benchmark:
    (tmp_path / f"{name}.py").write_text(
        "import sys, time\n\ndef main(argv):\n" + "".join(f"    {x}\n" for x in body.split(";")))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    sizes = {p: ((), estimate) for p in catalog.PRESETS}
    return catalog.Benchmark(name, f"fake {name}", f"{name}:main", f"fake {name}", sizes)


def test_tiny_run_writes_header_and_table_records_failure_and_skips(tmp_path, monkeypatch):
    boom = _fake(tmp_path, monkeypatch, "boom_bench",
                 "print('partial line');raise RuntimeError('injected failure')", 1)
    cheap = catalog.by_name()["sampler"]  # the cheapest tiny benchmark
    assert cheap.estimate("tiny") == min(b.estimate("tiny") for b in catalog.REGISTRY)
    # Only the sampler may fit: the others' estimates are raised above any budget, so that a
    # loaded CI machine (a slow sampler) changes nothing but the wall time.
    registry = [boom] + [b if b is cheap else dataclasses.replace(
        b, sizes={p: (argv, 1e4) for p, (argv, _) in b.sizes.items()})
        for b in catalog.REGISTRY]
    # the sampler alone takes ~30 s here, two to three times that on a loaded CI machine
    budget = 150
    out = tmp_path / "bench.md"
    t0 = time.monotonic()
    rc = suite.main(["--sizes", "tiny", "--budget-s", str(budget), "--out", str(out)],
                    registry=registry)
    assert time.monotonic() - t0 < budget + 5
    assert rc == 1  # one benchmark failed
    text = out.read_text()
    assert text.startswith("# tper-jit benchmarks")
    for key in ("| CPU |", "| accelerator | none (JAX backend cpu) |", "| python / jax / jaxlib",
                "| mujoco / mujoco-mjx / ogbench", "| date |", "cores"):
        assert key in text, key
    rows = {m[1]: m[2].strip() for m in re.finditer(r"\| \d+ \| ([\w-]+) \| ([^|]+) \|", text)}
    assert rows["boom_bench"] == "failed"
    assert "RuntimeError: injected failure" in text and "partial line" in text
    assert rows["sampler"] == "done"
    assert "## 3. T-PER sampler" in text and "speed-up" in text  # its table
    assert not list(tmp_path.glob("*.tmp"))
    for b in catalog.REGISTRY:
        if b.name != "sampler":
            assert rows[b.name] == "skipped", b.name
    assert re.search(r"\| update \| skipped \|  \| 10000 \| estimated 10000 s > \d+ s left",
                     text)


def test_a_benchmark_past_the_budget_is_stopped_and_only_flag(tmp_path, monkeypatch):
    sleepy = _fake(tmp_path, monkeypatch, "sleepy_bench",
                   "print('started', flush=True);time.sleep(60)", 1)
    quick = _fake(tmp_path, monkeypatch, "quick_bench", "print('| a | b |')", 1)
    other = _fake(tmp_path, monkeypatch, "other_bench", "raise SystemExit(3)", 1)
    out = tmp_path / "b.md"
    t0 = time.monotonic()
    rc = suite.main(["--budget-s", "6", "--only", "sleepy_bench", "quick_bench", "--out",
                     str(out)], registry=[sleepy, quick, other])
    assert time.monotonic() - t0 < 6 + 3  # stopped at the budget, not after 60 s
    assert rc == 1
    text = out.read_text()
    assert "| sleepy_bench | timed out |" in text and "started" in text
    assert "| quick_bench | skipped |" in text  # no time left after the sleeper
    assert "| other_bench | not selected |" in text


def test_unknown_name_is_rejected():
    with pytest.raises(SystemExit, match="unknown benchmark"):
        suite.main(["--dry-run", "--backend", "cpu", "--only", "nope"])
