"""``RUN_DIR/plots/curve.png``: the run's evaluation curve, redrawn after every evaluation.

Two panels, eval success rate and eval return, against the logged ``step``: offline gradient
steps up to ``offline_steps``, then ``offline_steps`` + online env steps; the offline part is
shaded and a line marks the switch.  Points are the rows that carry the metric (rows without
an evaluation are skipped).  A multi-seed run's rows hold the mean over seeds under the plain
key and the 95 % half-width under ``<key>/ci95`` (``stats.aggregate_rows``): the band is
mean ± that half-width (none where a row has no ``/ci95``: fewer than two finite seeds); the
success-rate band is clipped to [0, 1].

The figure is a :class:`matplotlib.figure.Figure` on an Agg canvas (``plots._new_figure``;
pyplot is never touched) and the PNG is written to a temporary file that then replaces
``curve.png``, so a kill at any moment leaves the previous curve or the new one, never a torn
file.  A call costs well under 0.5 s for a few hundred rows (see the README).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tper_jit.plots import _as_float, _new_figure

__all__ = ["CURVE_METRICS", "Series", "curve_series", "curve_figure", "write_run_curve"]

CURVE_METRICS = (("eval/success_rate", "eval success rate"),
                 ("eval/episode.return", "eval return"))


@dataclasses.dataclass(frozen=True)
class Series:
    """What one panel shows: ``x`` (logged steps, ascending), ``y`` (mean), ``lo`` / ``hi``
    (the band; equal to ``y`` where no ``/ci95`` was logged)."""

    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def curve_series(rows: Sequence[dict[str, Any]], metric: str) -> Series:
    """The points of ``metric`` in ``rows``: every row with a finite ``metric`` and a
    ``step``, sorted by step (a step logged twice keeps its last row); the band from
    ``metric + "/ci95"``, clipped to [0, 1] for a success rate."""
    points: dict[float, tuple[float, float]] = {}
    for row in rows:
        y, x = _as_float(row.get(metric)), _as_float(row.get("step"))
        if y is None or x is None or not (math.isfinite(y) and math.isfinite(x)):
            continue
        half = _as_float(row.get(f"{metric}/ci95"))
        points.pop(x, None)
        points[x] = (y, half if half is not None and math.isfinite(half) else 0.0)
    xs = np.array(sorted(points), dtype=np.float64)
    ys = np.array([points[x][0] for x in xs], dtype=np.float64)
    half = np.array([points[x][1] for x in xs], dtype=np.float64)
    lo, hi = ys - half, ys + half
    if metric.endswith("success_rate"):
        lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
    return Series(xs, ys, lo, hi)


def curve_figure(rows: Sequence[dict[str, Any]], offline_steps: int, num_seeds: int = 1,
                 title: str = ""):
    """The figure ``write_run_curve`` saves (one panel per entry of ``CURVE_METRICS``)."""
    fig = _new_figure((7.0, 6.0))
    axes = fig.subplots(len(CURVE_METRICS), 1, sharex=True)
    offline_steps = max(int(offline_steps), 0)
    seeds = f" (mean ± 95% CI over {num_seeds} seeds)" if num_seeds > 1 else ""
    for i, (ax, (metric, label)) in enumerate(zip(axes, CURVE_METRICS, strict=True)):
        s = curve_series(rows, metric)
        if offline_steps:
            ax.axvspan(0, offline_steps, color="0.92", linewidth=0, zorder=0)
            ax.axvline(offline_steps, color="0.4", linestyle="--", linewidth=1, zorder=1)
        if s.x.size:
            if num_seeds > 1:
                ax.fill_between(s.x, s.lo, s.hi, color=f"C{i}", alpha=0.25, linewidth=0)
            ax.plot(s.x, s.y, color=f"C{i}", marker="o", markersize=3, linewidth=1.5)
        else:
            ax.text(0.5, 0.5, f"no {metric} logged yet", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    top = axes[0]
    if offline_steps:  # phase names at the top of the first panel, either side of the line
        tr = top.get_xaxis_transform()
        top.text(offline_steps, 1.01, "offline ", ha="right", va="bottom", transform=tr,
                 fontsize="small", color="0.3")
        top.text(offline_steps, 1.01, " online", ha="left", va="bottom", transform=tr,
                 fontsize="small", color="0.3")
    top.set_title((title + seeds).strip() or None, pad=14 if offline_steps else 6)
    axes[-1].set_xlabel(f"step (offline gradient steps, then {offline_steps} + env steps)"
                        if offline_steps else "step (env steps)")
    fig.subplots_adjust(left=0.12, right=0.97, top=0.91, bottom=0.09, hspace=0.12)
    return fig


def write_run_curve(rows: Sequence[dict[str, Any]], path: str | Path, offline_steps: int,
                    num_seeds: int = 1, title: str = "") -> Path:
    """Draw ``curve_figure(rows, ...)`` into ``path`` atomically; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = curve_figure(rows, offline_steps, num_seeds, title)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
