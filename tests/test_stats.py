"""One statistics helper: the log's /ci95, the plot's band and the summary table agree."""

import math

import numpy as np
import pytest

from tper_jit import plots, summary
from tper_jit.stats import aggregate_rows, mean_ci, t_quantile


def test_t_quantile_hand_values():
    # t_{0.975, n-1} from a table: n = 2 → 12.706, n = 5 → 2.776, n = 31 → 2.042
    assert float(t_quantile(2)) == pytest.approx(12.706, abs=1e-3)
    assert float(t_quantile(5)) == pytest.approx(2.776, abs=1e-3)
    assert float(t_quantile(31)) == pytest.approx(2.042, abs=1e-3)
    assert float(t_quantile(5, confidence=0.9)) == pytest.approx(2.132, abs=1e-3)


def test_mean_ci_by_hand_and_edge_cases():
    mean, half, n = mean_ci([1.0, 2.0, 6.0])
    sd = math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (6 - 3) ** 2) / 2)  # sqrt(7)
    assert (mean, n) == (3.0, 3) and half == pytest.approx(4.303 * sd / math.sqrt(3), rel=1e-4)
    assert mean_ci([4.0, float("nan")])[:1] == (4.0,) and math.isnan(mean_ci([4.0])[1])
    assert math.isnan(mean_ci([])[0]) and mean_ci([])[2] == 0


def test_aggregate_rows_skips_non_finite_and_time_cis():
    rows = [{"a": 1.0, "time/x": 1.0}, {"a": 3.0, "time/x": 2.0}, {"a": float("nan")}]
    out = aggregate_rows(rows)
    assert out["a"] == 2.0 and out["a/ci95"] == pytest.approx(12.706 * math.sqrt(2) / math.sqrt(2),
                                                               abs=1e-3)
    assert out["time/x"] == 1.5 and "time/x/ci95" not in out
    assert math.isnan(aggregate_rows([{"b": float("inf")}])["b"])


def test_log_plot_and_table_give_the_same_interval():
    finals = [0.2, 0.5, 0.9, 0.4]
    log = aggregate_rows([{"eval/success_rate": v} for v in finals])
    curves = [(np.array([0.0, 10.0]), np.array([0.0, v])) for v in finals]
    _, mean, lo, hi, n = plots.aggregate(curves)
    end = summary.endpoint(finals)
    assert n[-1] == 4
    assert log["eval/success_rate"] == pytest.approx(mean[-1]) == pytest.approx(end.mean)
    assert log["eval/success_rate/ci95"] == pytest.approx(hi[-1] - mean[-1])
    assert end.half == pytest.approx(mean[-1] - lo[-1])
