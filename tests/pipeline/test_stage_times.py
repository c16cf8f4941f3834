"""Per-stage timing of a live run (``rtclass.pipeline.stage_times``): what metrics.json and the live
view report per chunk (mean, p50, p99, max in microseconds, chunks over budget)."""

import time

import numpy as np
import pytest

from rtclass.pipeline import stage_times
from rtclass.pipeline.stage_times import StageTimes, Stopwatch


def test_summary_percentiles_per_stage_and_total():
    t = StageTimes(("filter", "detect"))
    filt = np.arange(1, 101) * 1e-6  # 1 .. 100 us
    det = np.full(100, 5e-6)
    for f, d in zip(filt, det):
        t.record([f, d], budget_s=1.0)
    s = t.summary()
    assert list(s) == ["filter", "detect", "total"] and t.chunks == 100
    assert s["filter"] == pytest.approx(
        {"mean_us": 50.5, "p50_us": 50.5, "p99_us": 99.01, "max_us": 100.0}  # numpy's linear percentiles of 1..100
    )
    assert s["detect"] == pytest.approx({"mean_us": 5.0, "p50_us": 5.0, "p99_us": 5.0, "max_us": 5.0})
    assert s["total"]["max_us"] == pytest.approx(105.0) and s["total"]["mean_us"] == pytest.approx(55.5)
    assert s["total"]["p50_us"] == pytest.approx(55.5)


def test_chunks_over_budget_are_counted_on_their_total():
    t = StageTimes(("a", "b"))
    budget = 1e-3  # a 1 ms chunk
    t.record([0.4e-3, 0.5e-3], budget)
    t.record([0.6e-3, 0.5e-3], budget)  # 1.1 ms in all: over, though no stage is
    t.record([2e-3, 0.0], budget)
    assert t.over_budget == 2


def test_recent_totals_newest_first():
    t = StageTimes(("a",))
    for k in range(5):
        t.record([k * 1e-6], 1.0)
    assert t.recent_total_us(3).tolist() == pytest.approx([4.0, 3.0, 2.0])
    assert t.recent_total_us(100).tolist() == pytest.approx([4.0, 3.0, 2.0, 1.0, 0.0])


def test_the_window_keeps_the_latest_chunks_and_the_totals_keep_all(monkeypatch):
    monkeypatch.setattr(stage_times, "WINDOW_CHUNKS", 10)
    t = StageTimes(("a",))
    for k in range(25):
        t.record([(1000.0 if k < 15 else 1.0) * 1e-6], 1.0)  # slow early chunks, then fast ones
    s = t.summary()["a"]
    assert t.chunks == 25 and s["max_us"] == pytest.approx(1.0) and s["p99_us"] == pytest.approx(1.0)
    assert s["mean_us"] == pytest.approx((15 * 1000 + 10) / 25)  # every chunk
    assert t.recent_total_us(20).tolist() == pytest.approx([1.0] * 10)


def test_an_empty_run_reports_zeros():
    s = StageTimes(("a",)).summary()
    assert s == {name: {"mean_us": 0.0, "p50_us": 0.0, "p99_us": 0.0, "max_us": 0.0} for name in ("a", "total")}


def test_stopwatch_laps():
    w = Stopwatch()
    time.sleep(0.01)
    first = w.lap()
    second = w.lap()
    assert first >= 0.009 and 0 <= second < first
