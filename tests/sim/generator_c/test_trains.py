"""Per-type firing of generator C's true spike trains: rates, regularity, the complex-spike pause,
mossy-fibre bursts, Golgi-cell burst-pauses."""

import numpy as np
import pytest

from rtclass.sim.generator_c import celltypes as ct
from rtclass.sim.generator_c.trains import Neuron, burst_drive, run_neuron, simulate_purkinje_cell, simulate_tonic_cell

DURATION_S = 60.0
CELLS = 12


def cv2(spike_s: np.ndarray) -> float:
    isi = np.diff(spike_s)
    return float(np.mean(2 * np.abs(np.diff(isi)) / (isi[1:] + isi[:-1])))


@pytest.fixture(scope="module")
def tonic():
    rng = np.random.default_rng(11)
    return {t: [simulate_tonic_cell(rng, t, DURATION_S) for _ in range(CELLS)] for t in ("MLI", "GoC", "MFB")}


@pytest.fixture(scope="module")
def purkinje():
    rng = np.random.default_rng(12)
    return [simulate_purkinje_cell(rng, 2 * DURATION_S) for _ in range(CELLS)]


def _median_rate(trains, duration_s):
    return float(np.median([t.size / duration_s for t in trains]))


def test_rates_and_regularity_per_type(tonic, purkinje):
    rates = {t: _median_rate([c.spike_s for c in cells], DURATION_S) for t, cells in tonic.items()}
    regularity = {t: np.median([cv2(c.spike_s) for c in cells]) for t, cells in tonic.items()}
    ss_rate = _median_rate([c.simple_s for c in purkinje], 2 * DURATION_S)
    cs_rate = _median_rate([c.complex_s for c in purkinje], 2 * DURATION_S)
    ss_cv2 = np.median([cv2(c.simple_s) for c in purkinje])
    assert 30.0 < ss_rate < 130.0
    assert 0.4 < cs_rate < 2.5
    assert 5.0 < rates["MLI"] < 45.0
    assert 3.0 < rates["GoC"] < 30.0
    assert 10.0 < rates["MFB"] < 150.0
    assert 0.15 < ss_cv2 < 0.45
    assert regularity["MLI"] > 0.6
    assert 0.3 < regularity["GoC"] < regularity["MLI"]
    assert ss_cv2 < regularity["GoC"]


def test_complex_spikes_are_refractory_and_pause_simple_spikes(purkinje):
    min_refractory_s = ct.CLIMBING_FIBRE.refractory_ms.low / 1000.0
    lags_ms, baseline = [], []
    for cell in purkinje:
        assert np.diff(cell.complex_s).min() >= min_refractory_s
        assert cv2(cell.complex_s) > 0.4
        lag = (cell.simple_s[None, :] - cell.complex_s[:, None]) * 1000.0
        inside = (lag >= 0) & (lag < cell.pause_ms[:, None])
        assert not inside.any()  # no simple spike during any imposed pause
        lags_ms.append(lag[(lag > -50) & (lag < 50)])
        baseline.append(cell.simple_s.size / (2 * DURATION_S))
    lags = np.concatenate(lags_ms)
    after = np.mean((lags >= 0) & (lags < 8))
    before = np.mean((lags >= -20) & (lags < -12))
    assert after < 0.1 * before  # the cross-correlogram is empty for ~10 ms after a complex spike
    assert 1.0 <= np.mean([c.spikelets.mean() for c in purkinje]) <= 5.0


def test_mossy_fibres_burst_at_hundreds_of_hz(tonic):
    burst_fraction = [np.mean(np.diff(c.spike_s) < 0.002) for c in tonic["MFB"]]
    fastest_hz = [1.0 / np.diff(c.spike_s).min() for c in tonic["MFB"]]
    assert np.median(burst_fraction) > 0.01  # > 500 Hz intervals are common
    assert np.mean(np.array(fastest_hz) > 700.0) > 0.5
    other = [np.mean(np.diff(c.spike_s) < 0.002) for c in tonic["MLI"]]
    assert np.median(burst_fraction) > 5 * np.median(other)


def test_golgi_bursts_are_followed_by_pauses(tonic):
    ratios = []
    for cell in tonic["GoC"]:
        isi = np.diff(cell.spike_s)
        short = isi < 0.01
        burst_end = np.flatnonzero(short[:-1] & ~short[1:])  # the last short interval of a burst
        if burst_end.size >= 10:
            ratios.append(np.median(isi[burst_end + 1]) / np.median(isi[~short]))
    assert len(ratios) >= 4
    assert np.median(ratios) > 1.2  # the interval after a burst is longer than the usual one


def test_burst_drive_gives_the_burst_rate():
    neuron = Neuron(3.0, 1e-6, 1.0, 20.0, 0.0, 0.8, 0.0)
    drive = np.full(1000, burst_drive(neuron, 600.0, 10.0))
    spikes = run_neuron(np.random.default_rng(0), neuron, drive, 0.1)
    assert spikes.size / 1.0 == pytest.approx(600.0, rel=0.05)


def test_same_seed_same_trains():
    a = simulate_purkinje_cell(np.random.default_rng(5), 20.0)
    b = simulate_purkinje_cell(np.random.default_rng(5), 20.0)
    np.testing.assert_array_equal(a.simple_s, b.simple_s)
    np.testing.assert_array_equal(a.complex_s, b.complex_s)
    c = simulate_purkinje_cell(np.random.default_rng(6), 20.0)
    assert a.simple_s.size != c.simple_s.size or not np.array_equal(a.simple_s, c.simple_s)
