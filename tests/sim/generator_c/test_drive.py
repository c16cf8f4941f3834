"""The slow inputs: behaviour, telegraph states, pulses, oscillation."""

import numpy as np
import pytest

from rtclass.sim.generator_c.drive import add_pulses, behaviour_signal, oscillation, poisson_onsets_ms, telegraph


def test_behaviour_signal_is_standardised_and_slow():
    rng = np.random.default_rng(0)
    signal = behaviour_signal(rng, 200_000, 1.0, 4.0, 0.5)
    assert signal.mean() == pytest.approx(0.0, abs=1e-9)
    assert signal.std() == pytest.approx(1.0, rel=1e-6)
    assert np.corrcoef(signal[:-100], signal[100:])[0, 1] > 0.8  # correlated over 100 ms


def test_telegraph_spends_the_expected_fraction_on():
    rng = np.random.default_rng(1)
    state = telegraph(rng, 2_000_000, 3.0, 1.0)
    assert set(np.unique(state)) <= {0.0, 1.0}
    assert state.mean() == pytest.approx(0.25, abs=0.07)


def test_pulses_and_onsets():
    rng = np.random.default_rng(2)
    onsets = poisson_onsets_ms(rng, 100_000, 2.0)
    assert 150 < onsets.size < 250 and np.all(np.diff(onsets) >= 0)
    drive = add_pulses(np.zeros(1000), np.array([10, 500]), 5.0, 2.0)
    assert drive.sum() == pytest.approx(20.0)
    assert drive[10:15].min() == 2.0 and drive[15] == 0.0


def test_oscillation_frequency():
    rng = np.random.default_rng(3)
    wave = oscillation(rng, 20_000, 6.0, 0.01)
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.fft.rfftfreq(wave.size, 1e-3)[np.argmax(spectrum)] == pytest.approx(6.0, abs=0.3)
