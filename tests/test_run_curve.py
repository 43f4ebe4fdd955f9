"""``plots/curve.png`` (tper_jit.run.curve): the plotted series, the band, the PNG, the
atomic write, and the curve of a resumed run (earlier rows included)."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from PIL import Image

from tper_jit.run import curve, resume
from tper_jit.run.curve import curve_figure, curve_series, write_run_curve
from tper_jit.run.driver import Driver
from tper_jit.run.logger import MetricLogger
from tper_jit.stats import aggregate_rows

SR, RET = "eval/success_rate", "eval/episode.return"
T975_2 = 4.30265272975  # t_{0.975, 2}: the 95 % factor for 3 seeds (tables)


def _single_rows():
    return [{"step": 10, "offline_agent/critic/critic_loss": 1.0},
            {"step": 20, SR: 0.0, RET: -5.0},
            {"step": 30, "offline_agent/critic/critic_loss": 0.5},
            {"step": 40, SR: 0.5, RET: 2.0},  # end of the offline phase (offline_steps=40)
            {"step": 48, "env/env_steps": 8.0, SR: float("nan"), RET: 3.0},
            {"step": 56, "env/env_steps": 16.0, SR: 1.0, RET: 7.5}]


def _pixels(path):
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def test_single_seed_series_are_the_eval_rows():
    rows = _single_rows()
    s = curve_series(rows, SR)
    np.testing.assert_array_equal(s.x, [20, 40, 56])  # the NaN at 48 is not a point
    np.testing.assert_array_equal(s.y, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(s.lo, s.y)
    np.testing.assert_array_equal(s.hi, s.y)
    r = curve_series(rows, RET)
    np.testing.assert_array_equal(r.x, [20, 40, 48, 56])
    np.testing.assert_array_equal(r.y, [-5.0, 2.0, 3.0, 7.5])
    # a step logged twice (never in a run; defensive) keeps its last row
    assert curve_series([*rows, {"step": 40, SR: 0.25}], SR).y.tolist() == [0.0, 0.25, 1.0]
    assert curve_series([{"step": 5, "x": 1.0}], SR).x.size == 0

    fig = curve_figure(rows, offline_steps=40)
    ax_sr, ax_ret = fig.axes
    (line,) = ax_sr.get_lines()[1:]  # [0] is the phase line at offline_steps
    np.testing.assert_array_equal(line.get_xydata(), [[20, 0.0], [40, 0.5], [56, 1.0]])
    np.testing.assert_array_equal(ax_ret.get_lines()[1].get_xdata(), [20, 40, 48, 56])
    assert ax_sr.get_lines()[0].get_xdata()[0] == 40  # the offline / online switch
    assert not [c for c in ax_sr.collections if isinstance(c, PolyCollection)]  # no band
    texts = {t.get_text().strip() for t in ax_sr.texts}
    assert {"offline", "online"} <= texts
    assert "40 + env steps" in ax_ret.get_xlabel()
    online_only = curve_figure(rows, offline_steps=0)  # --offline_steps=0: no phase marks
    assert len(online_only.axes[0].get_lines()) == 1 and not online_only.axes[0].texts
    assert online_only.axes[1].get_xlabel() == "step (env steps)"


def _seed_rows():
    """Three seeds' rows at three steps; step 20 has one finite seed (no /ci95 then)."""
    per_seed = {
        10: [{SR: 0.0, RET: 1.0}, {SR: 0.5, RET: 2.0}, {SR: 1.0, RET: 6.0}],
        20: [{SR: 0.2, RET: 4.0}, {SR: math.nan, RET: math.nan}, {SR: math.nan, RET: math.nan}],
        30: [{SR: 0.9, RET: 5.0}, {SR: 1.0, RET: 5.0}, {SR: 0.8, RET: 8.0}],
    }
    rows = [{"step": 5, "offline_agent/critic/critic_loss": 0.1}]
    rows += [{"step": step, **aggregate_rows(r)} for step, r in per_seed.items()]
    return rows


def _band(values):
    v = np.asarray(values, np.float64)
    mean = v.mean()
    half = T975_2 * v.std(ddof=1) / math.sqrt(v.size)
    return mean, mean - half, mean + half


def test_multi_seed_band_is_mean_plus_minus_the_logged_ci95():
    rows = _seed_rows()
    assert f"{SR}/ci95" in rows[1] and f"{SR}/ci95" not in rows[2]  # as aggregate_rows logs
    s = curve_series(rows, SR)
    np.testing.assert_array_equal(s.x, [10, 20, 30])
    m10, lo10, hi10 = _band([0.0, 0.5, 1.0])
    m30, lo30, hi30 = _band([0.9, 1.0, 0.8])
    np.testing.assert_allclose(s.y, [m10, 0.2, m30], rtol=1e-9)
    # success-rate bands are clipped to [0, 1]; one finite seed at step 20: no band
    np.testing.assert_allclose(s.lo, [max(lo10, 0.0), 0.2, max(lo30, 0.0)], rtol=1e-9)
    np.testing.assert_allclose(s.hi, [min(hi10, 1.0), 0.2, min(hi30, 1.0)], rtol=1e-9)
    assert lo10 < 0.0 and hi10 > 1.0  # the clip did something
    r = curve_series(rows, RET)
    m, lo, hi = _band([1.0, 2.0, 6.0])
    assert lo < 0.0  # returns are not clipped
    np.testing.assert_allclose([r.y[0], r.lo[0], r.hi[0]], [m, lo, hi], rtol=1e-9)
    m, lo, hi = _band([5.0, 5.0, 8.0])
    np.testing.assert_allclose([r.y[2], r.lo[2], r.hi[2]], [m, lo, hi], rtol=1e-9)

    fig = curve_figure(rows, offline_steps=20, num_seeds=3)
    ax_ret = fig.axes[1]
    (poly,) = [c for c in ax_ret.collections if isinstance(c, PolyCollection)]  # the band
    verts = poly.get_paths()[0].vertices
    for x, y_lo, y_hi in zip(r.x, r.lo, r.hi, strict=True):
        at = verts[np.isclose(verts[:, 0], x)][:, 1]
        assert np.isclose(at, y_lo).any() and np.isclose(at, y_hi).any(), (x, at)
    assert "3 seeds" in fig.axes[0].get_title()


@pytest.mark.parametrize("make_rows, seeds", [(_single_rows, 1), (_seed_rows, 3)])
def test_png_changes_with_the_rows_and_is_written_atomically(make_rows, seeds, tmp_path,
                                                             monkeypatch):
    path = tmp_path / "plots" / "curve.png"
    rows = make_rows()
    assert write_run_curve(rows, path, 20, seeds) == path
    first = _pixels(path)
    assert first.shape[0] > 300 and first.shape[1] > 400
    write_run_curve(rows, tmp_path / "again.png", 20, seeds)
    np.testing.assert_array_equal(_pixels(tmp_path / "again.png"), first)  # deterministic
    changed = [dict(r) for r in rows]
    changed[-1][SR] = 0.0
    write_run_curve(changed, path, 20, seeds)
    second = _pixels(path)
    assert second.shape == first.shape
    assert (np.abs(second - first).sum(axis=-1) > 0).sum() > 50
    assert sorted(p.name for p in path.parent.iterdir()) == ["curve.png"]  # no temp file

    def broken(self, *a, **k):  # a kill / full disk mid-write: the old curve stays whole
        a[0].write_bytes(b"\x89PNG half")
        raise OSError("No space left on device")

    monkeypatch.setattr(type(curve.curve_figure(rows, 20)), "savefig", broken)
    with pytest.raises(OSError, match="No space"):
        write_run_curve(rows, path, 20, seeds)
    np.testing.assert_array_equal(_pixels(path), second)
    assert sorted(p.name for p in path.parent.iterdir()) == ["curve.png"]


def test_cost_per_write_is_small(tmp_path):
    import time

    rows = []
    for i in range(1, 301):  # 300 rows, every 3rd an evaluation, 5 seeds
        row = {"step": 100 * i, "offline_agent/critic/critic_loss": 1.0}
        if i % 3 == 0:
            row.update({SR: i / 300, f"{SR}/ci95": 0.1, RET: float(i), f"{RET}/ci95": 5.0})
        rows.append(row)
    write_run_curve(rows, tmp_path / "c.png", 10_000, 5)
    t0 = time.perf_counter()
    write_run_curve(rows, tmp_path / "c.png", 10_000, 5)
    assert time.perf_counter() - t0 < 0.5 * 4  # 0.07 s measured; slack for a loaded CI box


class _FakeCkpt:
    """What ``restore_into`` reads from a checkpointer, for an offline-phase checkpoint."""

    def __init__(self, step):
        self.step = step

    def latest_step(self):
        return self.step

    def read_meta(self, step):
        return {"phase": "offline", "done": step, "next_eval": step + 10, "next_save": step,
                "rows": 0, "seeds": [0], "step": step}

    def restore(self, template, step):
        return template, self.read_meta(step)


def test_curve_after_a_resume_includes_the_rows_before_it(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    before = MetricLogger(run_dir, {}, use_wandb=False)
    for step in (10, 20, 30, 40):
        before.log(step, {"offline_agent/critic/critic_loss": 1.0, SR: step / 100,
                          RET: step / 10})
    before.log(50, {SR: 0.9, RET: 9.0})  # after the checkpoint at 40: cut, written again
    cfg = types.SimpleNamespace(offline_steps=100, env_name="reach")
    drv = Driver(cfg=cfg, trainer=None, offline=None, rest={"w": np.zeros(2)}, seed_list=(0,),
                 logger=MetricLogger(run_dir, {}, use_wandb=False), seed_loggers=[],
                 ckpt=_FakeCkpt(40), run_dir=run_dir)
    images = []
    drv.logger.log_image = lambda key, png, step: images.append((key, png, step))
    resume.restore_into(drv)
    assert [r["step"] for r in drv.rows] == [10, 20, 30, 40]
    drv._log(50, [{"offline_agent/critic/critic_loss": 0.5, SR: 0.6, RET: 6.0}])
    drv._write_curve(50)
    png = run_dir / "plots" / "curve.png"
    assert images == [("eval/curve", png, 50)]
    logged = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [10, 20, 30, 40, 50]
    write_run_curve(logged, tmp_path / "all.png", 100, title="reach")
    write_run_curve(logged[-1:], tmp_path / "since_resume.png", 100, title="reach")
    np.testing.assert_array_equal(_pixels(png), _pixels(tmp_path / "all.png"))
    assert (_pixels(png) != _pixels(tmp_path / "since_resume.png")).any()
