"""Latency histograms and OCPP counters behind /metrics."""

from __future__ import annotations

import pytest

from controller.core.stats import Histogram, OcppStats
from local_api.metrics import render


def test_histogram_buckets_are_cumulative_with_inf_and_the_bound_itself_inclusive() -> None:
    h = Histogram((0.01, 0.1, 1.0))
    for v in (0.005, 0.01, 0.05, 0.5, 7.0):
        h.observe(v)
    snap = h.snapshot()
    # Prometheus "le": a value equal to a bound counts in that bucket.
    assert snap["buckets"] == [[0.01, 2], [0.1, 3], [1.0, 4], ["+Inf", 5]]
    assert snap["count"] == 5 and snap["sum"] == pytest.approx(7.565)


def test_histogram_refuses_unsorted_or_repeated_bounds() -> None:
    for bad in ((0.1, 0.01), (0.1, 0.1)):
        with pytest.raises(ValueError, match="strictly increasing"):
            Histogram(bad)


def test_ocpp_stats_count_by_action_and_outcome_and_time_only_answered_calls() -> None:
    s = OcppStats()
    s.call_received("Heartbeat", "result", 0.002)
    s.call_received("Heartbeat", "result", 0.003)
    s.call_sent("Reset", "timeout", None)
    s.call_sent("Reset", "result", 0.2)
    snap = s.snapshot()
    assert snap["received"] == [["Heartbeat", "result", 2]]
    assert snap["sent"] == [["Reset", "result", 1], ["Reset", "timeout", 1]]
    assert snap["handle_seconds"]["count"] == 2 and snap["roundtrip_seconds"]["count"] == 1


def test_metric_values_are_written_in_full_not_rounded_to_six_digits() -> None:
    stats = OcppStats()
    stats.received[("Heartbeat", "result")] = 1_234_567
    stats.handle_seconds.sum = 123_456.789
    text = render({}, {"ocpp": stats.snapshot()})
    assert 'siteedge_ocpp_calls_received_total{action="Heartbeat",outcome="result"} 1234567\n' in text
    assert "siteedge_ocpp_call_handling_seconds_sum 123456.789\n" in text
    assert 'siteedge_ocpp_call_handling_seconds_bucket{le="0.001"} 0\n' in text
