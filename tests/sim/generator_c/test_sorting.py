"""Generator C's sorting imperfections."""

import dataclasses

import numpy as np

from rtclass.features.c4 import C4_SAMPLE_RATE_HZ
from rtclass.sim.generator_c.sorting import Sorter, amplitude_gain, detected, draw_sorter, sorted_unit

DURATION_S = 100.0
CLEAN = Sorter(
    amplitude_over_threshold=5.0,
    drift_sd=0.0,
    drift_tau_s=50.0,
    fade_count=0,
    fade_duration_s=20.0,
    fade_depth=0.9,
    short_interval_attenuation=0.0,
    attenuation_recovery_ms=2.0,
    amplitude_noise=0.1,
    neighbour_rate_hz=0.0,
    collision_window_ms=1.0,
    collision_loss=1.0,
    other_unit_fraction=0.0,
    noise_event_rate_hz=0.0,
    spikelet_detection=0.0,
)


def _train(rng, rate_hz=50.0):
    return np.sort(rng.uniform(0.0, DURATION_S, int(rate_hz * DURATION_S)))


def test_a_clean_sorter_keeps_every_spike():
    rng = np.random.default_rng(0)
    spikes = _train(rng)
    samples = sorted_unit(rng, CLEAN, spikes, DURATION_S, np.zeros(0))[0]
    assert samples.dtype == np.int64 and np.all(np.diff(samples) > 0)
    assert samples.size == np.unique(np.floor(spikes * C4_SAMPLE_RATE_HZ)).size


def test_small_units_lose_spikes_below_threshold():
    rng = np.random.default_rng(1)
    spikes = _train(rng)
    kept = detected(rng, dataclasses.replace(CLEAN, amplitude_over_threshold=1.05, amplitude_noise=0.2), spikes, 100.0)
    assert 0.5 < kept.mean() < 0.8


def test_fades_remove_spikes_for_a_while():
    rng = np.random.default_rng(2)
    spikes = _train(rng)
    sorter = dataclasses.replace(CLEAN, amplitude_over_threshold=1.5, fade_count=1, fade_depth=0.9)
    gain = amplitude_gain(rng, sorter, spikes, DURATION_S)
    assert gain.min() < 0.2 and np.mean(gain < 0.5) > 0.05
    kept = spikes[detected(rng, sorter, spikes, DURATION_S)]
    assert np.diff(kept).max() > 5.0  # the unit vanishes for seconds (at 50 Hz gaps are < 0.5 s)
    assert kept.size > 0.7 * spikes.size


def test_collisions_and_burst_attenuation_lose_spikes():
    rng = np.random.default_rng(3)
    spikes = _train(rng)
    collide = dataclasses.replace(CLEAN, neighbour_rate_hz=300.0, collision_window_ms=1.0)
    expected_loss = 1.0 - np.exp(-2 * 300.0 * 1e-3)
    assert abs((1.0 - detected(rng, collide, spikes, DURATION_S).mean()) - expected_loss) < 0.05
    burst = np.sort(np.concatenate([spikes, spikes + 0.0012]))
    attenuated = dataclasses.replace(CLEAN, amplitude_over_threshold=1.2, short_interval_attenuation=0.4)
    kept = detected(rng, attenuated, burst, DURATION_S)
    second = np.diff(burst, prepend=-1.0) < 0.0015
    assert kept[second].mean() < 0.5 * kept[~second].mean()


def test_contamination_adds_foreign_spikes_and_noise_events():
    rng = np.random.default_rng(4)
    spikes, other = _train(rng, 20.0), _train(rng, 100.0)
    sorter = dataclasses.replace(CLEAN, other_unit_fraction=0.2, noise_event_rate_hz=5.0)
    samples = sorted_unit(rng, sorter, spikes, DURATION_S, other)[0]
    extra = samples.size - spikes.size
    assert 0.2 * spikes.size + 5.0 * DURATION_S - 150 < extra < 0.2 * spikes.size + 5.0 * DURATION_S + 150


def test_drawn_sorters_are_mostly_good():
    rng = np.random.default_rng(5)
    spikes = _train(rng)
    kept = [detected(rng, draw_sorter(rng, False), spikes, DURATION_S).mean() for _ in range(60)]
    assert 0.8 < np.median(kept) < 1.0 and min(kept) < 0.8
