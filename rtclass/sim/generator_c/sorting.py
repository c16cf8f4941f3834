"""Which of a cell's spikes a spike sorter assigns to its unit, and what else it assigns.

Per spike, an amplitude: the unit's mean (relative to the detection threshold) times a slow
drift of the probe (a log-normal Ornstein-Uhlenbeck process), fades (the unit drifts off the
channel for tens of seconds, a raised-cosine dip), the attenuation of a spike fired shortly after
another (sodium-channel inactivation in bursts), and measurement noise; spikes below the
threshold are missed. A spike that collides with a neighbouring unit's spike (Poisson, within a
window) is lost with some probability. Then the unit is contaminated: by a fraction of another
unit's spikes, by noise events, and (complex-spike units) by spikelets detected as second spikes.
The result is sorted unique spike times in samples at 30 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtclass.features.c4 import C4_SAMPLE_RATE_HZ
from rtclass.sim.generator_c import celltypes as ct

#: the drift process is sampled this often (s) and interpolated
DRIFT_STEP_S = 1.0
MS_PER_S = 1000.0
#: foreign spikes and noise events are 1 to this many times the detection threshold (estimate)
FOREIGN_AMPLITUDE_MAX = 1.5
#: a detected spikelet's amplitude relative to its complex spike's (estimate: decrementing spikelets)
SPIKELET_AMPLITUDE_RATIO = 0.6


@dataclass(frozen=True)
class Sorter:
    """The sorting imperfections drawn for one unit."""

    amplitude_over_threshold: float
    drift_sd: float
    drift_tau_s: float
    fade_count: int
    fade_duration_s: float
    fade_depth: float
    short_interval_attenuation: float
    attenuation_recovery_ms: float
    amplitude_noise: float
    neighbour_rate_hz: float
    collision_window_ms: float
    collision_loss: float
    other_unit_fraction: float
    noise_event_rate_hz: float
    spikelet_detection: float


def draw_sorter(rng: np.random.Generator, complex_spikes: bool) -> Sorter:
    r = ct.SORTING
    fades = r.fades.happens(rng)
    return Sorter(
        amplitude_over_threshold=r.amplitude_over_threshold.draw(rng),
        drift_sd=r.drift_sd.draw(rng),
        drift_tau_s=r.drift_tau_s.draw(rng),
        fade_count=int(round(r.fade_count.draw(rng))) if fades else 0,
        fade_duration_s=r.fade_duration_s.draw(rng),
        fade_depth=r.fade_depth.draw(rng),
        short_interval_attenuation=r.short_interval_attenuation.draw(rng),
        attenuation_recovery_ms=r.attenuation_recovery_ms.draw(rng),
        amplitude_noise=r.amplitude_noise.draw(rng),
        neighbour_rate_hz=r.neighbour_rate_hz.draw(rng),
        collision_window_ms=r.collision_window_ms.draw(rng),
        collision_loss=r.collision_loss.draw(rng),
        other_unit_fraction=r.other_unit_fraction.draw(rng),
        noise_event_rate_hz=r.noise_event_rate_hz.draw(rng),
        spikelet_detection=ct.SPIKELET_DOUBLE_DETECTION.draw(rng) if complex_spikes else 0.0,
    )


def amplitude_gain(rng: np.random.Generator, sorter: Sorter, spike_s: np.ndarray, duration_s: float) -> np.ndarray:
    """Drift x fades at each spike time (1 = the unit's mean amplitude)."""
    grid_s = np.arange(0.0, duration_s + DRIFT_STEP_S, DRIFT_STEP_S)
    keep = np.exp(-DRIFT_STEP_S / sorter.drift_tau_s)
    log_drift = np.empty(grid_s.size)
    log_drift[0] = sorter.drift_sd * rng.standard_normal()
    kicks = sorter.drift_sd * np.sqrt(1.0 - keep * keep) * rng.standard_normal(grid_s.size)
    for i in range(1, grid_s.size):
        log_drift[i] = keep * log_drift[i - 1] + kicks[i]
    gain = np.exp(np.interp(spike_s, grid_s, log_drift))
    for start_s in rng.uniform(0.0, duration_s, sorter.fade_count):
        phase = (spike_s - start_s) / sorter.fade_duration_s
        inside = (phase > 0) & (phase < 1)
        gain[inside] *= 1.0 - sorter.fade_depth * 0.5 * (1.0 - np.cos(2.0 * np.pi * phase[inside]))
    return gain


def detected(rng: np.random.Generator, sorter: Sorter, spike_s: np.ndarray, duration_s: float) -> np.ndarray:
    """Mask of the spikes whose amplitude clears the threshold and that survive collisions."""
    return detected_with_amplitudes(rng, sorter, spike_s, duration_s)[0]


def detected_with_amplitudes(
    rng: np.random.Generator, sorter: Sorter, spike_s: np.ndarray, duration_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """(``detected``'s mask, every spike's amplitude relative to the detection threshold)."""
    interval_ms = np.diff(spike_s, prepend=-np.inf) * MS_PER_S  # the first spike counts as isolated
    attenuation = 1.0 - sorter.short_interval_attenuation * np.exp(-interval_ms / sorter.attenuation_recovery_ms)
    amplitude = sorter.amplitude_over_threshold * amplitude_gain(rng, sorter, spike_s, duration_s) * attenuation
    amplitude += sorter.amplitude_noise * rng.standard_normal(spike_s.size)
    keep = amplitude >= 1.0
    neighbours = np.sort(rng.uniform(0.0, duration_s, rng.poisson(sorter.neighbour_rate_hz * duration_s)))
    if neighbours.size:
        after = np.clip(np.searchsorted(neighbours, spike_s), 0, neighbours.size - 1)
        before = np.clip(after - 1, 0, neighbours.size - 1)
        nearest_ms = np.minimum(np.abs(neighbours[after] - spike_s), np.abs(spike_s - neighbours[before])) * MS_PER_S
        collided = nearest_ms < sorter.collision_window_ms
        keep &= ~(collided & (rng.random(spike_s.size) < sorter.collision_loss))
    return keep, amplitude


def sorted_unit(
    rng: np.random.Generator,
    sorter: Sorter,
    spike_s: np.ndarray,
    duration_s: float,
    other_unit_s: np.ndarray,
    spikelet_s: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(the unit's spike times as the sorter reports them: int64 samples, sorted, unique; each
    spike's amplitude relative to the detection threshold, what C4's spike filter judges). Foreign
    spikes and noise events are just big enough to be detected; a detected spikelet is smaller than
    its complex spike."""
    keep, amplitude = detected_with_amplitudes(rng, sorter, spike_s, duration_s)
    own = spike_s[keep]
    parts, amps = [own], [amplitude[keep]]
    n_foreign = min(rng.poisson(sorter.other_unit_fraction * own.size), other_unit_s.size)
    if n_foreign:
        parts.append(rng.choice(other_unit_s, n_foreign, replace=False))
        amps.append(rng.uniform(1.0, FOREIGN_AMPLITUDE_MAX, n_foreign))
    noise_s = rng.uniform(0.0, duration_s, rng.poisson(sorter.noise_event_rate_hz * duration_s))
    parts.append(noise_s)
    amps.append(rng.uniform(1.0, FOREIGN_AMPLITUDE_MAX, noise_s.size))
    if spikelet_s is not None and spikelet_s.size:
        picked = rng.random(spikelet_s.size) < sorter.spikelet_detection
        parts.append(spikelet_s[picked])
        amps.append(np.maximum(1.0, SPIKELET_AMPLITUDE_RATIO * sorter.amplitude_over_threshold) * np.ones(picked.sum()))
    samples = np.floor(np.concatenate(parts) * C4_SAMPLE_RATE_HZ).astype(np.int64)
    amplitudes = np.concatenate(amps)
    inside = (samples >= 0) & (samples < int(duration_s * C4_SAMPLE_RATE_HZ))
    unique, first = np.unique(samples[inside], return_index=True)
    return unique, amplitudes[inside][first]
