"""Extracellular waveforms per cell type and their spatial footprint on the probe.

The time course on the nearest contact is a sum of Gaussian phases (trough, after-positivity,
an optional pre-trough positivity for mossy fibre boutons, spikelets and a broad positivity for
complex spikes), with parameters drawn per unit from the type's ``ShapeSpec``. On other contacts
the amplitude falls off like ``(z / r) ** FALLOFF_EXPONENT`` (r: distance from the unit, z: its
distance from the probe plane) and the shape broadens with distance, as the high-frequency
content of a spike decays faster than its slow phases.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.ndimage import gaussian_filter1d

from rtclass.sim.celltypes import ShapeSpec

#: samples kept before the trough
PRE_MS = 1.0
#: samples kept after the last phase of the waveform
TAIL_MS = 2.0
#: amplitude fall-off exponent over distance (point source 1, dipole 2, somatic spikes on
#: Neuropixels fade within ~100 um: 2-3)
FALLOFF_EXPONENT = 2.5
#: contacts whose relative amplitude is below this are not part of the footprint
FOOTPRINT_CUTOFF = 0.03
#: at this distance from the unit (um) the shape is half mixed with its smoothed version
BROADENING_HALF_UM = 120.0
#: width (ms) of the smoothing that distant contacts see
BROADENING_SD_MS = 0.15
#: the trough's full width at half depth, in sd of a Gaussian
FWHM_PER_SD = 2.3548200450309493


def draw(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def draw_log(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(r[0]), np.log(r[1])))) if r[1] > r[0] else float(r[0])


def _phase(t_ms: np.ndarray, centre_ms: float, sd_ms: float) -> np.ndarray:
    return np.exp(-0.5 * ((t_ms - centre_ms) / sd_ms) ** 2)


def time_course(spec: ShapeSpec, rng: np.random.Generator, fs: float) -> tuple[np.ndarray, int]:
    """One unit's waveform on its nearest contact, trough depth 1 (value -1), and the index of
    the trough. Shape parameters are drawn from ``spec``."""
    sd = draw(rng, spec.trough_halfwidth_ms) / FWHM_PER_SD
    post_ratio = draw(rng, spec.post_ratio)
    post_delay = draw(rng, spec.post_delay_ms)
    post_width = draw(rng, spec.post_width_ms)
    pre_ratio = draw(rng, spec.pre_ratio)
    pre_delay = draw(rng, spec.pre_delay_ms)
    n_spikelets = int(round(draw(rng, spec.spikelets)))
    interval = draw(rng, spec.spikelet_interval_ms)
    decay = draw(rng, spec.spikelet_decay)
    slow_ratio = draw(rng, spec.slow_positive_ratio)
    last_ms = post_delay + 2 * post_width + n_spikelets * interval
    t = np.arange(-round(PRE_MS * fs / 1000), round((last_ms + TAIL_MS) * fs / 1000) + 1) / fs * 1000
    w = -_phase(t, 0.0, sd) + post_ratio * _phase(t, post_delay, post_width)
    if pre_ratio > 0:
        w += pre_ratio * _phase(t, -pre_delay, sd)
    for i in range(1, n_spikelets + 1):
        centre = i * interval * rng.uniform(0.9, 1.1)
        a = decay**i
        w += a * (-_phase(t, centre, sd * 1.4) + 0.5 * _phase(t, centre + 2.5 * sd, sd * 1.8))
    if slow_ratio > 0:
        span = max(n_spikelets * interval, 1.0)
        w += slow_ratio * _phase(t, 0.6 * span, 0.4 * span)
    trough = int(np.flatnonzero(t >= 0)[0])
    w = w / -w[trough]
    return w.astype(np.float32), trough


def smoothed(course: np.ndarray, fs: float) -> np.ndarray:
    """The waveform as distant contacts see it (high frequencies faded)."""
    return gaussian_filter1d(course, BROADENING_SD_MS * fs / 1000, mode="constant").astype(np.float32)


@numba.jit(nopython=True, nogil=True, cache=True)
def contact_gain_mix(dx, dy, z):
    """Relative amplitude and share of the smoothed shape on a contact at (dx, dy) um from a
    unit that is z um from the probe plane."""
    lateral = np.sqrt(dx * dx + dy * dy)
    r = np.sqrt(lateral * lateral + z * z)
    return (z / r) ** FALLOFF_EXPONENT, lateral / (lateral + BROADENING_HALF_UM)


def footprint_channels(unit_xyz_um: np.ndarray, contacts_um: np.ndarray, drift_um: float) -> np.ndarray:
    """Contacts a unit reaches anywhere within +-drift_um along the probe."""
    reach = np.zeros(contacts_um.shape[0], bool)
    for d in np.linspace(-drift_um, drift_um, 2 * int(np.ceil(drift_um)) + 1 if drift_um > 0 else 1):
        gain, _ = contact_gain_mix(
            contacts_um[:, 0] - unit_xyz_um[0], contacts_um[:, 1] - unit_xyz_um[1] - d, unit_xyz_um[2]
        )
        reach |= gain >= FOOTPRINT_CUTOFF
    return np.flatnonzero(reach).astype(np.int32)


def footprint(
    course: np.ndarray,
    smooth: np.ndarray,
    unit_xyz_um: np.ndarray,
    contacts_um: np.ndarray,
    channels: np.ndarray,
    drift_um: float = 0.0,
) -> np.ndarray:
    """Waveforms ``[T, K]`` on ``channels`` of a unit moved ``drift_um`` along the probe,
    relative amplitude (1 on a contact right under the unit)."""
    gain, mix = contact_gain_mix(
        contacts_um[channels, 0] - unit_xyz_um[0], contacts_um[channels, 1] - unit_xyz_um[1] - drift_um, unit_xyz_um[2]
    )
    waves = (1 - mix)[None, :] * course[:, None] + mix[None, :] * smooth[:, None]
    return (waves * gain[None, :]).astype(np.float32)
