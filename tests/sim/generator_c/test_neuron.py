"""The LIF kernel and the rate formula that sets its drive."""

import numpy as np
import pytest

from rtclass.sim.generator_c.neuron import drive_for_rate, drive_per_log_rate, lif_spike_times, siegert_rate_hz

NONE = np.zeros(0, np.int64)
STEP_MS = 0.1
DURATION_MS = 60_000


def _run(drive, rng, tau_m=15.0, tau_n=2.0, sd=0.3, tau_a=50.0, jump=0.0, ref=1.5, reset=0.0, forced=NONE, hold=NONE):
    normals = rng.standard_normal(int(drive.size / STEP_MS), dtype=np.float32)
    return lif_spike_times(drive, normals, STEP_MS, tau_m, tau_n, sd, tau_a, jump, ref, reset, forced, hold, 0.0)


@pytest.mark.parametrize(
    ("rate_hz", "sd", "jump", "reset"),
    [(80.0, 0.15, 0.05, 0.3), (15.0, 0.6, 0.0, 0.0), (8.0, 0.25, 0.15, 0.0), (40.0, 0.4, 0.02, 0.1)],
)
def test_drive_for_rate_gives_the_rate(rate_hz, sd, jump, reset):
    params = dict(noise_sd=sd, tau_m_ms=15.0, tau_noise_ms=2.0, refractory_ms=1.5, reset=reset)
    drive = drive_for_rate(rate_hz, **params, tau_adapt_ms=50.0, adapt_jump=jump)
    spikes_ms = _run(np.full(DURATION_MS, drive), np.random.default_rng(1), sd=sd, jump=jump, reset=reset)
    measured = spikes_ms.size / (DURATION_MS / 1000.0)
    assert measured == pytest.approx(rate_hz, rel=0.15)


def test_siegert_rate_rises_with_drive_and_slope_is_positive():
    rates = [siegert_rate_hz(mu, 0.3, 15.0, 2.0, 1.5, 0.0) for mu in (0.5, 1.0, 1.5, 3.0)]
    assert np.all(np.diff(rates) > 0)
    params = dict(noise_sd=0.3, tau_m_ms=15.0, tau_noise_ms=2.0, refractory_ms=1.5, reset=0.0)
    assert drive_per_log_rate(20.0, **params, tau_adapt_ms=50.0, adapt_jump=0.05) > 0


def test_refractory_period_and_determinism():
    rng = np.random.default_rng(2)
    drive = np.full(5000, 5.0)
    normals = rng.standard_normal(50_000, dtype=np.float32)
    args = (drive, normals, STEP_MS, 5.0, 1.0, 0.5, 20.0, 0.0, 1.2, 0.0, NONE, NONE, 0.0)
    first, second = lif_spike_times(*args), lif_spike_times(*args)
    np.testing.assert_array_equal(first, second)
    assert np.diff(first).min() >= 1.2


def test_forced_reset_silences_the_neuron_for_the_hold():
    rng = np.random.default_rng(3)
    forced_ms = np.arange(100, 5000, 250)
    hold_ms = 20.0
    spikes = _run(
        np.full(5000, 3.0),
        rng,
        forced=(forced_ms / STEP_MS).astype(np.int64),
        hold=np.full(forced_ms.size, int(hold_ms / STEP_MS), np.int64),
    )
    lag = spikes[:, None] - forced_ms[None, :]
    assert not np.any((lag >= 0) & (lag < hold_ms))
    assert spikes.size > 100
