"""Per-group end points of learning curves: after the offline phase and at the end, as mean
and 95 % t-interval over seeds — the numbers of a results table.

``tper-plot RUN_DIR ... --markdown`` prints them as a Markdown table (one row per group).
Each curve (one per seed, see :func:`tper_jit.plots.load_curves`) contributes

* **after offline**: its value at x = 0 (the last evaluation before any online env step),
  when the run evaluated there (an RLPD run has no offline phase; then the column is "–");
* **final**: its value at its largest x (the last evaluation).

The interval half-width is t_{0.975, n−1} · sd(ddof=1) / √n over the n curves; with one
curve it is not defined and shown as "n=1".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from tper_jit.stats import mean_ci

__all__ = ["Endpoint", "GroupSummary", "endpoint", "summarize", "markdown_table"]


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Mean and 95 % half-width (``nan`` for n < 2) of n per-seed values."""

    mean: float
    half: float
    n: int

    def __str__(self) -> str:
        if self.n == 0:
            return "–"
        if self.n == 1:
            return f"{self.mean:.2f} (n=1)"
        return f"{self.mean:.2f} ± {self.half:.2f}"


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    name: str
    seeds: int  # curves (one per seed)
    offline: Endpoint  # at x = 0
    final: Endpoint  # at each curve's last x
    final_x: float  # the largest x over the group's curves (env steps)


def endpoint(values: Sequence[float]) -> Endpoint:
    """Mean and t-interval half-width of ``values`` (non-finite values are an error)."""
    v = np.asarray(values, np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"endpoint: non-finite values {v.tolist()}")
    return Endpoint(*mean_ci(v))


def summarize(name: str, curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> GroupSummary:
    """End points of one group's curves ``(x, y)`` (x sorted ascending, as loaded)."""
    if not curves:
        raise ValueError(f"group {name!r}: no curves")
    at0 = [float(y[x == 0][-1]) for x, y in curves if np.any(x == 0)]
    last = [float(y[-1]) for _, y in curves]
    return GroupSummary(name, len(curves), endpoint(at0), endpoint(last),
                        float(max(x[-1] for x, _ in curves)))


def markdown_table(rows: Sequence[GroupSummary], metric: str) -> str:
    """A Markdown table: group | seeds | after offline | final (env steps) — mean ± 95 % CI."""
    out = [f"| group | seeds | {metric} after offline | {metric} final | final env steps |",
           "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r.name} | {r.seeds} | {r.offline} | {r.final} | {r.final_x:,.0f} |")
    return "\n".join(out)
