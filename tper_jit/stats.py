"""Mean and confidence interval over seeds: the one helper behind every CI the project shows.

The ``/ci95`` columns of a multi-seed run's ``metrics.jsonl`` (``run.driver`` through
``aggregate_rows``), the bands of ``tper-plot`` (``plots.aggregate``) and the end-point table of
``tper-plot --markdown`` (``summary.endpoint``) all use :func:`t_quantile`, so a number in the
log, the plot and the table agree.  numpy and scipy only (scipy comes with scikit-learn); no
jax, so ``tper-plot`` starts fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _scipy_stats


def t_quantile(n: int | np.ndarray, confidence: float = 0.95) -> float | np.ndarray:
    """t_{(1+c)/2, n−1}: the half-width factor of a two-sided ``confidence`` interval of the
    mean of n values (n ≥ 2; elementwise for arrays)."""
    return _scipy_stats.t.ppf(0.5 + confidence / 2.0, np.maximum(np.asarray(n) - 1, 1))


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, int]:
    """``(mean, half-width, n)`` of the finite entries of ``values``; the half-width is
    ``t · sd / √n`` (NaN with fewer than two values; mean NaN with none)."""
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, 0
    if v.size == 1:
        return float(v[0]), math.nan, 1
    half = float(t_quantile(v.size, confidence)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return float(v.mean()), half, int(v.size)


def aggregate_rows(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    """Per-seed metric rows → ``key`` = mean over the seeds with a finite value and
    ``key/ci95`` = the 95 % half-width (absent with one finite value and for ``time/*``)."""
    out: dict[str, float] = {}
    for k in dict.fromkeys(k for r in rows for k in r):
        mean, half, n = mean_ci([r[k] for r in rows if k in r])
        out[k] = mean
        if n > 1 and not k.startswith("time/"):
            out[f"{k}/ci95"] = half
    return out
