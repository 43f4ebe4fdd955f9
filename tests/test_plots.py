"""tper_jit.plots: curve loading, seed aggregation (mean, Student-t CI), figures and CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from tper_jit import plots

ROOT = Path(__file__).resolve().parents[1]

# Known curves of three seeds: last offline evaluation, then evaluations at these env steps.
ENV_STEPS = [1000, 2000, 3000]
OFFLINE_LAST = [0.1, 0.2, 0.0]
ONLINE = [[0.2, 0.5, 0.8], [0.3, 0.6, 1.0], [0.1, 0.4, 0.9]]


def _write_run(path: Path, rows: list[dict], config: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if config is not None:
        (path / "config.json").write_text(json.dumps({"config": config, "agent": {}}))
    return path


def _seed_rows(seed: int) -> list[dict]:
    """Offline rows (no env/env_steps; two evaluations, the last one counts), then online
    rows with and without evaluation."""
    rows = [
        {"step": 100, "offline_agent/critic/critic_loss": 1.0, "eval/success_rate": 0.9},
        {"step": 150, "offline_agent/critic/critic_loss": 0.9},
        {"step": 200, "offline_agent/critic/critic_loss": 0.8,
         "eval/success_rate": OFFLINE_LAST[seed], "eval/episode.return": -50.0},
    ]
    for i, env_steps in enumerate(ENV_STEPS):
        rows.append({"step": 200 + env_steps - 500, "env/env_steps": env_steps - 500,
                     "online_agent/critic/critic_loss": 0.5})
        rows.append({"step": 200 + env_steps, "env/env_steps": env_steps,
                     "eval/success_rate": ONLINE[seed][i], "eval/episode.return": -10.0 * i})
    return rows


@pytest.fixture
def three_seeds(tmp_path: Path) -> list[Path]:
    return [_write_run(tmp_path / f"seed{s}", _seed_rows(s),
                       {"seed": s, "env_name": "cube-single", "run_group": "tper"})
            for s in range(3)]


def _expected() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hand computation of the mean and 95% CI half-width over the three seeds."""
    vals = np.array([[OFFLINE_LAST[s], *ONLINE[s]] for s in range(3)])  # (seed, x)
    mean = vals.mean(axis=0)
    sd = vals.std(axis=0, ddof=1)
    half = stats.t.ppf(0.975, df=2) * sd / np.sqrt(3)
    return np.array([0.0, *ENV_STEPS]), mean, half


def test_load_curves_offline_rows_map_to_x0(three_seeds):
    (curve,) = plots.load_curves(three_seeds[1])
    x, y = curve
    np.testing.assert_array_equal(x, [0, 1000, 2000, 3000])
    # The last offline evaluation (0.2), not the first (0.9), is the x = 0 point.
    np.testing.assert_allclose(y, [OFFLINE_LAST[1], *ONLINE[1]])
    (ret,) = plots.load_curves(three_seeds[1], metric="eval/episode.return")
    np.testing.assert_allclose(ret[1], [-50.0, 0.0, -10.0, -20.0])
    (by_step,) = plots.load_curves(three_seeds[1], x_key="step")
    np.testing.assert_array_equal(by_step[0], [100, 200, 1200, 2200, 3200])


def test_aggregate_matches_hand_computation(three_seeds):
    curves = [c for d in three_seeds for c in plots.load_curves(d)]
    x, mean, lo, hi, n = plots.aggregate(curves)
    ex, emean, ehalf = _expected()
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_allclose(mean, emean)
    np.testing.assert_allclose(lo, emean - ehalf)
    np.testing.assert_allclose(hi, emean + ehalf)
    np.testing.assert_array_equal(n, [3, 3, 3, 3])


def test_aggregate_interpolates_within_range_only():
    a = (np.array([0.0, 10.0]), np.array([0.0, 1.0]))
    b = (np.array([0.0, 5.0, 10.0]), np.array([0.0, 1.0, 1.0]))
    c = (np.array([5.0, 0.0]), np.array([0.4, 0.2]))  # unsorted input, ends at x = 5
    x, mean, lo, hi, n = plots.aggregate([a, b, c])
    np.testing.assert_array_equal(x, [0, 5, 10])
    np.testing.assert_array_equal(n, [3, 3, 2])
    at5 = np.array([0.5, 1.0, 0.4])  # a is interpolated linearly to 0.5
    np.testing.assert_allclose(mean[1], at5.mean())
    half5 = stats.t.ppf(0.975, 2) * at5.std(ddof=1) / np.sqrt(3)
    np.testing.assert_allclose([lo[1], hi[1]], [at5.mean() - half5, at5.mean() + half5])
    # At x = 10 only a and b (both 1.0) count: c is not extrapolated.
    np.testing.assert_allclose([mean[2], lo[2], hi[2]], [1.0, 1.0, 1.0])


def test_aggregate_single_curve_band_is_the_curve():
    x, mean, lo, hi, n = plots.aggregate([(np.array([0.0, 1.0, 2.0]), np.array([3.0, 1.0, 2.0]))])
    np.testing.assert_allclose(mean, [3, 1, 2])
    np.testing.assert_allclose(lo, mean)
    np.testing.assert_allclose(hi, mean)
    np.testing.assert_array_equal(n, [1, 1, 1])
    with pytest.raises(ValueError, match="no curves"):
        plots.aggregate([])


def test_per_seed_keys_in_one_folder(tmp_path, three_seeds):
    rows = [{"step": 200, "eval/success_rate": 9.0,  # plain mean key: ignored, seeds win
             **{f"eval/success_rate/seed{s}": OFFLINE_LAST[s] for s in range(3)}}]
    for i, env_steps in enumerate(ENV_STEPS):
        rows.append({"step": 200 + env_steps, "env/env_steps": env_steps,
                     "eval/success_rate": 9.0,
                     **{f"eval/success_rate/seed{s}": ONLINE[s][i] for s in range(3)}})
    multi = _write_run(tmp_path / "multi", rows, {"run_group": "tper"})
    curves = plots.load_curves(multi)
    assert len(curves) == 3
    for s, (x, y) in enumerate(curves):
        np.testing.assert_array_equal(x, [0, *ENV_STEPS])
        np.testing.assert_allclose(y, [OFFLINE_LAST[s], *ONLINE[s]])
    # Same numbers as three single-seed folders.
    single = [c for d in three_seeds for c in plots.load_curves(d)]
    for got, want in zip(plots.aggregate(curves), plots.aggregate(single), strict=True):
        np.testing.assert_allclose(got, want)


def test_errors_name_the_folder(tmp_path, three_seeds):
    missing = tmp_path / "nope"
    with pytest.raises(ValueError, match=r"nope.*not a directory"):
        plots.load_curves(missing)
    no_metrics = tmp_path / "bare"
    no_metrics.mkdir()
    with pytest.raises(ValueError, match=r"bare.*no metrics\.jsonl"):
        plots.load_curves(no_metrics)
    (no_metrics / "metrics.jsonl").write_text("\n")
    with pytest.raises(ValueError, match=r"bare.*empty"):
        plots.load_curves(no_metrics)
    with pytest.raises(ValueError, match=r"seed0.*'eval/nothing' never appears"):
        plots.load_curves(three_seeds[0], metric="eval/nothing")


def test_truncated_last_line_is_skipped(tmp_path):
    d = _write_run(tmp_path / "live", _seed_rows(0))
    with (d / "metrics.jsonl").open("a") as f:
        f.write('{"step": 5000, "env/env_steps": 4')
    ((x, _),) = plots.load_curves(d)
    assert x[-1] == 3000


def test_plot_learning_curves_writes_png(tmp_path, three_seeds):
    other = _write_run(tmp_path / "other", _seed_rows(2), {"run_group": "uniform"})
    out = tmp_path / "figs" / "deep" / "curves.png"
    got = plots.plot_learning_curves({"tper": three_seeds, "uniform": [other]}, out,
                                     title="cube")
    assert got == out and out.is_file()
    with Image.open(out) as im:
        im.verify()
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


def test_band_common_range_and_clipping():
    """Seeds whose last x differ slightly: the band stops where every curve still counts;
    a success-rate band is clipped to [0, 1], any other metric's is not."""
    curves = [(np.array([0.0, 3000.0, 5982.0]), np.array([0.0, 0.2, 0.9])),
              (np.array([0.0, 3000.0, 5995.0]), np.array([0.0, 0.0, 0.1])),
              (np.array([0.0, 3000.0, 6000.0]), np.array([0.1, 0.5, 0.0]))]
    x, mean, lo, hi = plots.band(curves)
    np.testing.assert_array_equal(x, [0.0, 3000.0, 5982.0])
    assert lo.min() == 0.0 and hi.max() <= 1.0
    _, _, raw_lo, _, _ = plots.aggregate(curves)
    assert raw_lo.min() < 0.0  # what was clipped
    shifted = [(cx, cy - 5.0) for cx, cy in curves]
    assert plots.band(shifted)[2].min() < -5.0


def test_priority_histogram(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.lognormal(size=200)
    p[:20] = 0.0  # empty slots are left out
    p /= p.sum()
    online = np.arange(200) >= 120
    for name, mask in [("split.png", online), ("plain.png", None)]:
        out = plots.priority_histogram(p, tmp_path / "h" / name, title="eval 3", online_mask=mask)
        assert out == tmp_path / "h" / name
        with Image.open(out) as im:
            assert im.format == "PNG"
    # Degenerate input still writes a figure.
    assert plots.priority_histogram(np.zeros(5), tmp_path / "zeros.png").is_file()
    assert plots.priority_histogram(np.full(4, 0.25), tmp_path / "same.png").is_file()
    with pytest.raises(ValueError, match="online_mask"):
        plots.priority_histogram(p, tmp_path / "bad.png", online_mask=online[:10])


def test_group_runs(tmp_path, three_seeds):
    other = _write_run(tmp_path / "other", _seed_rows(0),
                       {"run_group": "uniform", "env_name": "cube-single"})
    no_cfg = _write_run(tmp_path / "orphan", _seed_rows(0))
    dirs = [*three_seeds, other, no_cfg]
    groups = plots.group_runs(dirs)
    assert groups == {"tper": three_seeds, "uniform": [other], "orphan": [no_cfg]}
    assert plots.group_runs(dirs, "env_name") == {"cube-single": dirs[:4], "orphan": [no_cfg]}
    assert list(plots.group_runs(dirs, "none")) == ["seed0", "seed1", "seed2", "other", "orphan"]


def test_cli_groups_and_table(tmp_path, three_seeds, capsys):
    other = _write_run(tmp_path / "other", _seed_rows(0), {"run_group": "uniform"})
    out = tmp_path / "plots" / "c.png"
    rc = plots.main([*map(str, three_seeds), str(other), "--out", str(out)])
    assert rc == 0 and out.is_file()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(out)
    _, emean, ehalf = _expected()
    tper = next(ln for ln in lines if ln.startswith("tper "))
    assert tper.split()[1] == "3"
    assert f"{emean[-1]:.2f} ± {ehalf[-1]:.2f}" in tper
    uniform = next(ln for ln in lines if ln.startswith("uniform "))
    assert uniform.split()[1] == "1" and f"{ONLINE[0][-1]:.2f} (n=1)" in uniform


def test_cli_markdown_table_after_offline_and_final(tmp_path, three_seeds, capsys):
    """The table's two columns are the per-seed last offline eval (x = 0) and last eval, as
    mean ± t_{0.975,2}·sd/√3 by hand; a group that never evaluates at x = 0 shows "–"."""
    online_only = [r for r in _seed_rows(1) if "env/env_steps" in r]
    rlpd = _write_run(tmp_path / "rlpd", online_only, {"run_group": "rlpd"})
    rc = plots.main([*map(str, three_seeds), str(rlpd), "--out", str(tmp_path / "c.png"),
                     "--markdown"])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("| group | seeds |") and lines[2] == "|---|---|---|---|---|"
    cells = [c.strip() for c in lines[3].strip("|").split("|")]
    t = stats.t.ppf(0.975, df=2)
    off, fin = np.array(OFFLINE_LAST), np.array([o[-1] for o in ONLINE])
    assert cells[:2] == ["tper", "3"]
    assert cells[2] == f"{off.mean():.2f} ± {t * off.std(ddof=1) / np.sqrt(3):.2f}"
    assert cells[3] == f"{fin.mean():.2f} ± {t * fin.std(ddof=1) / np.sqrt(3):.2f}"
    assert cells[4] == f"{ENV_STEPS[-1]:,}"
    assert [c.strip() for c in lines[4].strip("|").split("|")][:4] == [
        "rlpd", "1", "–", f"{ONLINE[1][-1]:.2f} (n=1)"]


def test_cli_bad_input_exit_code_2(tmp_path, three_seeds, capsys):
    out = str(tmp_path / "c.png")
    assert plots.main([str(tmp_path / "missing"), "--out", out]) == 2
    assert "missing: no such run folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert plots.main([str(three_seeds[0]), str(empty), "--out", out]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
    assert plots.main([str(three_seeds[0]), "--metric", "eval/x", "--out", out]) == 2
    assert "'eval/x' never appears" in capsys.readouterr().err
    assert plots.main([]) == 2  # argparse usage error
    assert plots.main([str(three_seeds[0]), "--group-by", "bogus"]) == 2
    assert not Path(out).exists()


def test_cli_subprocess_leaves_pyplot_alone(tmp_path, three_seeds):
    out = tmp_path / "c.png"
    code = ("import sys; from tper_jit import plots; rc = plots.main(sys.argv[1:]); "
            "assert 'matplotlib.pyplot' not in sys.modules; sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code, *map(str, three_seeds), "--out", str(out),
                          "--group-by", "none"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert out.is_file() and "seed2" in res.stdout
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "missing")], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.strip().startswith("tper-plot: error:")
