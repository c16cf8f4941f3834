"""The slow inputs of a simulated cell, one value per ms: a behavioural signal (an
Ornstein-Uhlenbeck process mixed with a rest/move telegraph process, zero mean, unit sd), brief
event pulses (sensory or movement-related volleys), down-state epochs, and the inferior olive's
subthreshold oscillation with a diffusing phase."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

MS_PER_S = 1000.0


def ornstein_uhlenbeck(rng: np.random.Generator, n_ms: int, tau_s: float) -> np.ndarray:
    """A stationary OU process, unit sd, sampled every ms."""
    keep = np.exp(-1.0 / (tau_s * MS_PER_S))
    kicks = rng.standard_normal(n_ms) * np.sqrt(1.0 - keep * keep)
    kicks[0] = rng.standard_normal()
    return lfilter([1.0], [1.0, -keep], kicks)


def telegraph(rng: np.random.Generator, n_ms: int, mean_off_s: float, mean_on_s: float) -> np.ndarray:
    """A two-state (0/1) process with exponential dwell times (means per state), every ms; it
    starts in a state drawn with the stationary probabilities."""
    mean_ms = np.array([mean_off_s, mean_on_s]) * MS_PER_S
    state = int(rng.random() < mean_ms[1] / mean_ms.sum())
    out = np.zeros(n_ms)
    start = 0
    while start < n_ms:
        stop = min(start + max(int(rng.exponential(mean_ms[state])), 1), n_ms)
        out[start:stop] = state
        start, state = stop, 1 - state
    return out


def behaviour_signal(
    rng: np.random.Generator, n_ms: int, tau_s: float, movement_dwell_s: float, movement_weight: float
) -> np.ndarray:
    """Zero-mean, unit-sd slow signal: (1 - w) OU + w rest/move switching."""
    slow = ornstein_uhlenbeck(rng, n_ms, tau_s)
    moving = telegraph(rng, n_ms, movement_dwell_s, movement_dwell_s) * 2.0 - 1.0
    mixed = (1.0 - movement_weight) * slow + movement_weight * moving
    sd = mixed.std()
    return (mixed - mixed.mean()) / sd if sd > 0 else mixed - mixed.mean()


def poisson_onsets_ms(rng: np.random.Generator, n_ms: int, rate_hz: float) -> np.ndarray:
    """Event onsets (ms, int64, sorted) of a Poisson process."""
    count = rng.poisson(rate_hz * n_ms / MS_PER_S)
    return np.sort(rng.integers(0, n_ms, count))


def add_pulses(drive: np.ndarray, onsets_ms: np.ndarray, duration_ms: float, amplitude: float) -> np.ndarray:
    """``drive`` with a rectangular pulse of ``amplitude`` and ``duration_ms`` at each onset."""
    out = drive.copy()
    width = max(int(round(duration_ms)), 1)
    mark = np.zeros(drive.size + 1, np.int64)
    np.add.at(mark, onsets_ms, 1)
    np.add.at(mark, np.minimum(onsets_ms + width, drive.size), -1)
    out += amplitude * (np.cumsum(mark)[: drive.size] > 0)
    return out


def oscillation(rng: np.random.Generator, n_ms: int, frequency_hz: float, phase_diffusion: float) -> np.ndarray:
    """cos of a phase advancing at ``frequency_hz`` with Brownian jitter (rad^2/s), every ms."""
    step_sd = np.sqrt(phase_diffusion / MS_PER_S)
    phase_steps = 2 * np.pi * frequency_hz / MS_PER_S + step_sd * rng.standard_normal(n_ms)
    return np.cos(rng.uniform(0, 2 * np.pi) + np.cumsum(phase_steps))
