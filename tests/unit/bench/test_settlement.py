"""Outbox figures from two scrapes of quota's metrics."""

import pytest

from bench import settlement

BEFORE = """\
# TYPE llmgw_outbox_batch_size histogram
llmgw_outbox_batch_size_bucket{topic="history",le="1.0"} 2.0
llmgw_outbox_batch_size_bucket{topic="history",le="10.0"} 2.0
llmgw_outbox_batch_size_bucket{topic="history",le="+Inf"} 2.0
llmgw_outbox_batch_size_count{topic="history"} 2.0
llmgw_outbox_batch_size_sum{topic="history"} 2.0
"""
AFTER = """\
# TYPE llmgw_outbox_batch_size histogram
llmgw_outbox_batch_size_bucket{topic="history",le="1.0"} 2.0
llmgw_outbox_batch_size_bucket{topic="history",le="10.0"} 12.0
llmgw_outbox_batch_size_bucket{topic="history",le="+Inf"} 12.0
llmgw_outbox_batch_size_count{topic="history"} 12.0
llmgw_outbox_batch_size_sum{topic="history"} 52.0
# TYPE llmgw_outbox_lag_seconds histogram
llmgw_outbox_lag_seconds_bucket{topic="history",le="0.1"} 50.0
llmgw_outbox_lag_seconds_bucket{topic="history",le="0.5"} 100.0
llmgw_outbox_lag_seconds_bucket{topic="history",le="+Inf"} 100.0
llmgw_outbox_lag_seconds_count{topic="history"} 100.0
llmgw_outbox_lag_seconds_sum{topic="history"} 12.0
# TYPE llmgw_outbox_entries gauge
llmgw_outbox_entries{topic="history",state="pending"} 3.0
llmgw_outbox_entries{topic="history",state="dead"} 1.0
"""


def test_figures_are_the_difference_of_two_scrapes():
    out = settlement.figures(BEFORE, AFTER)
    batch, lag = out["batch_size"], out["lag_ms"]
    assert batch["observations"] == 10 and batch["mean"] == 5.0
    assert batch["p50"] == pytest.approx(5.5)  # rank 5 of 10, all in (1, 10]
    assert lag["observations"] == 100 and lag["mean"] == 120.0
    assert lag["p50"] == pytest.approx(100.0) and lag["p99"] == pytest.approx(492.0)
    assert settlement.pending(AFTER) == 3.0
    assert settlement.pending(BEFORE) is None


def test_quantile_edges():
    assert settlement.quantile({"buckets": [], "sum": 0, "count": 0}, 0.5) is None
    hist = {"buckets": [(1.0, 1.0), (float("inf"), 10.0)], "sum": 50.0, "count": 10.0}
    assert settlement.quantile(hist, 0.99) == 1.0  # in +Inf: the highest finite bound
    assert settlement.figures("", "") == {}
