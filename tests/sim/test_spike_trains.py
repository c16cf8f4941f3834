"""Spike-train generators (``rtclass.sim.spike_trains``): the mean rate is the configured rate, the
dead time is never violated, gamma order sets the local regularity, slow modulation keeps the mean,
bursts, and the complex-spike pause; all seeded."""

import numpy as np
import pytest

from rtclass.sim.spike_trains import (
    RATE_GRID_S,
    add_bursts,
    enforce_dead_time,
    modulated_rate,
    pause_after,
    renewal_train,
)


def _cv2(t):
    isi = np.diff(t)
    return float(np.mean(2 * np.abs(np.diff(isi)) / (isi[1:] + isi[:-1])))


def _flat(duration, hz):
    return modulated_rate(duration, hz, 0.0, 1.0, np.random.default_rng(0))


@pytest.mark.parametrize("hz, k, dead_ms", [(100.0, 8.0, 3.0), (20.0, 2.0, 2.0), (1.0, 1.0, 50.0)])
def test_the_mean_rate_is_the_configured_rate_and_the_dead_time_holds(hz, k, dead_ms):
    duration = 200.0 if hz < 5 else 50.0
    t = renewal_train(duration, _flat(duration, hz), k, dead_ms / 1000, np.random.default_rng(1))
    assert np.all(np.diff(t) >= dead_ms / 1000 - 1e-12) and t.min() >= 0 and t.max() < duration
    expected = hz * duration
    assert abs(t.size - expected) < 4 * np.sqrt(expected) + 0.05 * expected  # the rate counts the dead time


def test_a_higher_gamma_order_is_more_regular():
    rates = _flat(60.0, 30.0)
    cv2 = [_cv2(renewal_train(60.0, rates, k, 0.001, np.random.default_rng(2))) for k in (1.0, 3.0, 10.0)]
    assert cv2[0] > cv2[1] > cv2[2]
    assert cv2[0] == pytest.approx(1.0, abs=0.1)  # Poisson
    assert cv2[2] == pytest.approx(0.35, abs=0.08)  # the module's table: 0.35 at k = 10


def test_slow_modulation_keeps_the_mean_and_adds_global_variability():
    r = modulated_rate(200.0, 40.0, 0.4, 1.0, np.random.default_rng(3))
    assert r.size == int(np.ceil(200.0 / RATE_GRID_S)) + 2 and np.all(r > 0)
    assert r.mean() == pytest.approx(40.0, rel=0.1)
    assert np.std(np.log(r)) == pytest.approx(0.4, rel=0.15)
    assert np.all(_flat(1.0, 40.0) == 40.0)
    flat = renewal_train(100.0, _flat(100.0, 40.0), 5.0, 0.002, np.random.default_rng(4))
    mod = renewal_train(100.0, r[: flat.size], 5.0, 0.002, np.random.default_rng(4))
    cv = lambda t: np.std(np.diff(t)) / np.mean(np.diff(t))  # noqa: E731
    assert cv(mod) > cv(flat)


def test_same_generator_state_same_train():
    a = renewal_train(10.0, _flat(10.0, 50.0), 3.0, 0.002, np.random.default_rng(7))
    b = renewal_train(10.0, _flat(10.0, 50.0), 3.0, 0.002, np.random.default_rng(7))
    c = renewal_train(10.0, _flat(10.0, 50.0), 3.0, 0.002, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bursts_add_fast_spikes_and_respect_the_dead_time():
    base = np.sort(np.random.default_rng(5).uniform(0, 100.0, 300))
    base = enforce_dead_time(base, 0.0007)
    t = add_bursts(base, 100.0, 2.0, (2, 4), (0.001, 0.002), 0.0007, np.random.default_rng(6))
    assert t.size > base.size + 2 * 100  # ~200 bursts of 2-4 extra spikes
    isi = np.diff(t)
    assert isi.min() >= 0.0007 - 1e-12 and t.max() < 100.0
    assert np.mean((isi >= 0.001) & (isi <= 0.002)) > 0.4  # many intervals at the intra-burst 500-1000 Hz


def test_enforce_dead_time_drops_spikes_closer_than_it_to_the_last_kept():
    t = np.array([0.0, 0.001, 0.0025, 0.003, 0.0061])
    assert enforce_dead_time(t, 0.002).tolist() == [0.0, 0.0025, 0.0061]


def test_pause_after_each_trigger():
    ss = np.arange(0, 1.0, 0.005)  # simple spikes every 5 ms
    cs = np.array([0.2, 0.6])
    kept = pause_after(ss, cs, pause_s=0.02, before_s=0.003)
    for c in cs:
        assert not np.any((kept > c - 0.003) & (kept < c + 0.02))
    want = [t for t in ss if not any(0 <= t - c < 0.02 or 0 < c - t < 0.003 for c in cs)]
    assert kept.tolist() == want and ss.size - kept.size >= 8  # 4 spikes within 20 ms after each
    assert pause_after(ss, np.zeros(0), 0.02, 0.003) is ss
