"""Learning curves across seeds and runs, and per-trajectory priority histograms.

A run folder (see ``tper_jit.run.train``) holds ``config.json`` (``{"config": {flags}, ...}``)
and ``metrics.jsonl`` (one JSON object per logged step, with ``"step"`` and float metrics).
Online rows carry ``"env/env_steps"``; offline rows do not and are placed at env step 0.
A multi-seed run logs one key per seed (``"eval/success_rate/seed0"``, ``.../seed1``, ...)
instead of the plain key; each such key is one curve.

Command line (``tper-plot``)::

    tper-plot RUN_DIR [RUN_DIR ...] [--metric eval/success_rate] [--out curves.png]
              [--group-by run_group|env_name|none]

All figures are drawn on a :class:`matplotlib.figure.Figure` with an Agg canvas; pyplot and
its global state are never touched, so this is safe to call from a training loop.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tper_jit.stats import t_quantile
from tper_jit.summary import markdown_table, summarize

__all__ = ["load_curves", "aggregate", "band", "plot_learning_curves", "priority_histogram",
           "group_runs", "main"]

Curve = tuple[np.ndarray, np.ndarray]

_SEED_SUFFIX = re.compile(r"/seed(\d+)$")


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------

def _read_rows(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of ``run_dir/metrics.jsonl``; a truncated last line (a run still writing) is
    skipped, a malformed line elsewhere is an error."""
    path = run_dir / "metrics.jsonl"
    if not run_dir.is_dir():
        raise ValueError(f"{run_dir}: not a directory (expected a run folder)")
    if not path.is_file():
        raise ValueError(f"{run_dir}: no metrics.jsonl in this folder (is it a run folder?)")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                continue  # partially written last line
            raise ValueError(f"{path}: line {i + 1} is not valid JSON ({e})") from e
        if isinstance(row, dict):
            rows.append(row)
    if not rows:
        raise ValueError(f"{run_dir}: metrics.jsonl is empty (no rows logged yet)")
    return rows


def _as_float(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def load_curves(run_dir: str | Path, metric: str = "eval/success_rate",
                x_key: str = "env/env_steps") -> list[Curve]:
    """Curves ``(x, y)`` of ``metric`` against ``x_key`` from one run folder.

    * A plain ``metric`` key gives one curve; keys ``metric + "/seed<K>"`` give one curve per
      seed K (ordered by K).  When both forms are present the per-seed keys are used (the
      plain key is then usually their mean).  For seed K the x value is taken from
      ``x_key + "/seed<K>"`` when logged, else from ``x_key``.
    * Rows without ``x_key`` (the offline phase) are placed at x = 0.
    * Several rows with the same x (e.g. several offline evaluations) keep the last one
      written, so the x = 0 point is the last offline evaluation.
    * Rows where the metric is missing or not finite are skipped.  x is sorted ascending.

    * A multi-seed run folder (``--num_seeds``, with ``seeds/seed<K>/metrics.jsonl``) gives
      one curve per seed from those logs (its own ``metrics.jsonl`` holds their mean).

    Raises ``ValueError`` naming the folder if it is missing, has no or an empty
    ``metrics.jsonl``, or never logs ``metric``.
    """
    run_dir = Path(run_dir)
    per_seed = sorted(run_dir.glob("seeds/seed*/metrics.jsonl"),
                      key=lambda p: int(p.parent.name[4:]) if p.parent.name[4:].isdigit() else 0)
    if per_seed:
        return [c for p in per_seed for c in load_curves(p.parent, metric, x_key)]
    rows = _read_rows(run_dir)
    seeds: set[int] = set()
    plain = False
    for row in rows:
        for k in row:
            if k == metric:
                plain = True
            elif k.startswith(metric + "/"):
                m = _SEED_SUFFIX.search(k)
                if m and k[:m.start()] == metric:
                    seeds.add(int(m.group(1)))
    if seeds:
        keys = [(f"{metric}/seed{s}", f"{x_key}/seed{s}") for s in sorted(seeds)]
    elif plain:
        keys = [(metric, x_key)]
    else:
        seen = sorted({k for r in rows for k in r if k != "step"})
        hint = ", ".join(k for k in seen if "/" in k and k.split("/")[0] == metric.split("/")[0])
        raise ValueError(f"{run_dir}: metric {metric!r} never appears in metrics.jsonl"
                         + (f" (similar keys: {hint})" if hint else ""))

    curves: list[Curve] = []
    for y_key, seed_x_key in keys:
        points: dict[float, float] = {}
        for row in rows:
            y = _as_float(row.get(y_key))
            if y is None or not math.isfinite(y):
                continue
            x = _as_float(row.get(seed_x_key, row.get(x_key, 0.0)))
            if x is None or not math.isfinite(x):
                continue
            points.pop(x, None)  # re-insert so the last write wins
            points[x] = y
        if not points:
            continue
        xs = np.array(sorted(points), dtype=np.float64)
        ys = np.array([points[x] for x in xs], dtype=np.float64)
        curves.append((xs, ys))
    if not curves:
        raise ValueError(f"{run_dir}: metric {metric!r} has no finite values in metrics.jsonl")
    return curves


# --------------------------------------------------------------------------------------
# Aggregation
# --------------------------------------------------------------------------------------

def aggregate(curves: Sequence[Curve], confidence: float = 0.95
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t confidence interval of several curves on a common x grid.

    The grid is the sorted union of all curves' x values.  Each curve is **linearly
    interpolated** within its own x range ``[x_min, x_max]`` and is *not* extrapolated:
    outside that range it does not count.  At each grid point with ``n`` covering curves::

        mean = average of the n values
        half = t_{(1 + confidence) / 2, n - 1} * std(ddof=1) / sqrt(n)
        lo, hi = mean - half, mean + half

    With ``n == 1`` the band collapses to the curve itself (``lo == hi == mean``).

    Returns ``(x_grid, mean, lo, hi, n)``, all of the grid's length; ``n`` is an int array
    (the number of curves covering each point; ``n.max()`` is the number of curves when
    they span the same range).
    """
    if len(curves) == 0:
        raise ValueError("aggregate: no curves given")
    clean = []
    for i, (x, y) in enumerate(curves):
        x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
        if x.shape != y.shape or x.size == 0:
            raise ValueError(f"aggregate: curve {i} has x of length {x.size} and y of "
                             f"length {y.size} (need equal, non-zero lengths)")
        order = np.argsort(x, kind="stable")
        clean.append((x[order], y[order]))
    grid = np.unique(np.concatenate([x for x, _ in clean]))
    values = np.full((len(clean), grid.size), np.nan)
    for i, (x, y) in enumerate(clean):
        inside = (grid >= x[0]) & (grid <= x[-1])
        values[i, inside] = np.interp(grid[inside], x, y)
    covered = ~np.isnan(values)
    n = covered.sum(axis=0).astype(np.int64)
    mean = np.nansum(values, axis=0) / n  # every grid point is covered by >= 1 curve
    dev2 = np.where(covered, (values - mean) ** 2, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(dev2 / (n - 1))
        tq = t_quantile(n, confidence)
        half = np.where(n > 1, tq * std / np.sqrt(n), 0.0)
    return grid, mean, mean - half, mean + half, n


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------

def _new_figure(size: tuple[float, float]) -> Figure:
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def band(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What a group's line and band show: :func:`aggregate` restricted to the grid points
    covered by every curve, the band clipped to [0, 1] when every value lies in [0, 1]."""
    x, mean, lo, hi, n = aggregate(curves)
    full = n == n.max()
    x, mean, lo, hi = x[full], mean[full], lo[full], hi[full]
    if all(np.all((np.asarray(y) >= 0.0) & (np.asarray(y) <= 1.0)) for _, y in curves):
        lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
    return x, mean, lo, hi


def plot_learning_curves(groups: dict[str, Sequence[str | Path]], out_png: str | Path,
                         metric: str = "eval/success_rate", title: str | None = None,
                         x_key: str = "env/env_steps") -> Path:
    """One line (mean) and shaded 95% CI per group of run folders; returns the PNG path.

    Every curve found in every folder of a group (one per seed) counts towards that group's
    mean; the legend shows ``"<group> (n=<curves>)"``.  A group is drawn only over the x
    range that all its curves cover (seeds that log slightly different env-step counts would
    otherwise give a jagged end where n drops); bands of a metric whose values all lie in
    [0, 1] (success rates) are clipped to [0, 1].  Raises ``ValueError`` (from
    :func:`load_curves`) naming a folder without the metric, or for an empty group.
    """
    fig = _new_figure((7.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for i, (name, run_dirs) in enumerate(groups.items()):
        curves = [c for d in run_dirs for c in load_curves(d, metric, x_key)]
        if not curves:
            raise ValueError(f"group {name!r}: no run folders given")
        x, mean, lo, hi = band(curves)
        color = f"C{i % 10}"
        ax.plot(x, mean, color=color, marker="o" if x.size < 2 else None,
                label=f"{name} (n={len(curves)})")
        if len(curves) > 1:
            ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel("environment steps" if x_key == "env/env_steps" else x_key)
    ax.set_ylabel(metric)
    ax.set_title(title if title is not None else metric)
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return _save(fig, out_png)


def priority_histogram(priorities: np.ndarray, path: str | Path, title: str = "",
                       online_mask: np.ndarray | None = None) -> Path:
    """Histogram of per-trajectory sampling probabilities ``p(τ) > 0`` on log-spaced bins.

    ``online_mask`` (bool, same length as ``priorities``) splits the episodes into offline
    and online ones, drawn in two colours.  Entries that are ``<= 0`` or not finite (empty
    slots) are left out; the count is in the legend.  When the positive values sum to ~1 a
    dashed line marks the uniform probability ``1 / (number of trajectories with p > 0)``.  Never
    raises on degenerate input (all zero, one value): it writes a figure saying so.
    Returns the PNG path.
    """
    p = np.asarray(priorities, dtype=np.float64).ravel()
    if online_mask is not None:
        mask = np.asarray(online_mask, dtype=bool).ravel()
        if mask.shape != p.shape:
            raise ValueError(f"priority_histogram: online_mask has {mask.size} entries, "
                             f"priorities have {p.size}")
    else:
        mask = None
    keep = np.isfinite(p) & (p > 0)
    fig = _new_figure((6.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    vals = p[keep]
    if vals.size == 0:
        ax.text(0.5, 0.5, f"no positive priorities ({p.size} entries)", ha="center",
                va="center", transform=ax.transAxes)
    else:
        lo, hi = float(vals.min()), float(vals.max())
        if hi <= lo * (1 + 1e-9):
            lo, hi = lo / 1.5, hi * 1.5
        bins = np.geomspace(lo, hi, 41)
        if mask is None:
            ax.hist(vals, bins=bins, color="C0", label=f"episodes (n={vals.size})")
        else:
            on = mask[keep]
            ax.hist([vals[~on], vals[on]], bins=bins, color=["C0", "C1"], alpha=0.6,
                    histtype="stepfilled", stacked=False,
                    label=[f"offline (n={int((~on).sum())})", f"online (n={int(on.sum())})"])
        if abs(vals.sum() - 1.0) < 1e-3:
            ax.axvline(1.0 / vals.size, color="k", linestyle="--", linewidth=1,
                       label="uniform 1/N")
        ax.set_xscale("log")
        dropped = int(p.size - vals.size)
        ax.set_xlabel("sampling probability p(τ)" + (f"  ({dropped} with p=0 not shown)"
                                                    if dropped else ""))
        ax.set_ylabel("trajectories")
        ax.legend(loc="best", fontsize="small")
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def _run_config(run_dir: Path) -> dict[str, Any]:
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    if isinstance(cfg, dict) and isinstance(cfg.get("config"), dict):
        return cfg["config"]
    return {}


def group_runs(run_dirs: Sequence[str | Path], group_by: str = "run_group"
               ) -> dict[str, list[Path]]:
    """Group run folders by the flag ``group_by`` in their ``config.json``.

    Folders whose config lacks the flag (or has it empty), or have no readable
    ``config.json``, form a group named after the folder.  ``group_by="none"`` puts every
    folder in its own group.  Groups keep the order in which they first appear.
    """
    groups: dict[str, list[Path]] = {}
    for d in run_dirs:
        d = Path(d)
        name = d.name or str(d)
        if group_by != "none":
            value = _run_config(d).get(group_by)
            if value not in (None, ""):
                name = str(value)
        groups.setdefault(name, []).append(d)
    return groups


def main(argv: Sequence[str] | None = None) -> int:
    """``tper-plot``: learning curves of run folders grouped by a config flag.

    Prints the PNG path and a table (group, n curves, final mean ± CI half-width).
    Returns 0 on success and 2 on bad input (missing folder, no metrics, unknown metric).
    """
    parser = argparse.ArgumentParser(
        prog="tper-plot", description="Plot mean learning curves with 95% CIs over seeds.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders")
    parser.add_argument("--metric", default="eval/success_rate",
                        help="metric key in metrics.jsonl (default: %(default)s)")
    parser.add_argument("--out", default="curves.png", help="output PNG (default: %(default)s)")
    parser.add_argument("--group-by", default="run_group",
                        choices=["run_group", "env_name", "none"],
                        help="config flag to group runs by; 'none' plots each folder "
                             "separately (default: %(default)s)")
    parser.add_argument("--x-key", default="env/env_steps",
                        help="x axis key; rows without it count as 0 (default: %(default)s)")
    parser.add_argument("--title", default=None, help="figure title (default: the metric)")
    parser.add_argument("--markdown", action="store_true",
                        help="print a Markdown table: per group the seeds, the metric after "
                             "the offline phase and at the end (mean ± 95%% CI)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # usage errors (2) and --help (0)
        return int(e.code or 0)

    try:
        for d in args.run_dirs:
            if not Path(d).is_dir():
                raise ValueError(f"{d}: no such run folder")
        groups = group_runs(args.run_dirs, args.group_by)
        rows = []
        for name, dirs in groups.items():
            curves = [c for d in dirs for c in load_curves(d, args.metric, args.x_key)]
            rows.append(summarize(name, curves))
        out = plot_learning_curves(groups, args.out, args.metric, args.title, args.x_key)
    except (ValueError, OSError) as e:
        print(f"tper-plot: error: {e}", file=sys.stderr)
        return 2

    print(out)
    if args.markdown:
        print(markdown_table(rows, args.metric))
        return 0
    width = max(5, *(len(r.name) for r in rows))
    print(f"{'group':<{width}}  {'n':>3}  {'final x':>10}  final {args.metric} (mean ± 95% CI)")
    for r in rows:
        print(f"{r.name:<{width}}  {r.seeds:>3}  {r.final_x:>10.6g}  {r.final}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
