"""A leaky integrate-and-fire neuron with spike-triggered adaptation, driven by a slow drive and
Ornstein-Uhlenbeck (coloured) input noise, and how to set its drive for a wanted firing rate.

The membrane is dimensionless: reset at ``reset`` (threshold units), threshold at 1.

    tau_m dV/dt = -V + drive(t) - w + eta(t)
    tau_w dw/dt = -w,            w += adapt_jump at each spike
    tau_n deta/dt = -eta + (white noise),   sd(eta) = noise_sd * sqrt(tau_m / (2 tau_n))

``noise_sd`` is the white-noise-equivalent amplitude (Brunel 2000's sigma: the same low-frequency
power), so the Siegert first-passage formula with the Brunel & Sergi (1998) coloured-noise threshold
shift predicts the rate; the mean adaptation current ``adapt_jump * rate * tau_w`` is added to the
drive. The neuron is held at reset for ``refractory_ms`` after a spike, and at ``forced_reset``
steps (a complex spike's effect on the same Purkinje cell's simple spikes) it is hyperpolarised
and held for the given number of steps. Spike times are interpolated within the step.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import erfcx, zeta

THRESHOLD = 1.0
#: Brunel & Sergi 1998 (J Theor Biol): coloured noise moves threshold and reset up by
#: sigma * alpha / 2 * sqrt(tau_n / tau_m), alpha = sqrt(2) |zeta(1/2)|
COLOURED_NOISE_ALPHA = float(np.sqrt(2.0) * abs(zeta(0.5)))
#: the drive the rate inversion searches in (threshold units)
DRIVE_SEARCH_RANGE = (-8.0, 60.0)
#: the relative rate step used for the rate's sensitivity to the drive
RATE_SLOPE_STEP = 0.05
MS_PER_S = 1000.0
#: the smallest rate the inversion takes a log of (a drive far below threshold gives 0 Hz)
TINY_RATE_HZ = 1e-300


@numba.jit(nopython=True, nogil=True, cache=True)
def lif_spike_times(
    drive_per_ms,
    noise_normals,
    dt_ms,
    tau_m_ms,
    tau_noise_ms,
    noise_sd,
    tau_adapt_ms,
    adapt_jump,
    refractory_ms,
    reset,
    forced_reset_steps,
    forced_hold_steps,
    forced_hyperpolarisation,
):
    """Spike times (ms) of the neuron over ``noise_normals.size`` steps of ``dt_ms``.
    ``drive_per_ms``: the drive, one value per ms; ``noise_normals``: standard normals, one per
    step; ``forced_reset_steps`` (sorted) and ``forced_hold_steps``: steps at which the cell is
    reset to ``reset - forced_hyperpolarisation`` and held there that many steps."""
    n_steps = noise_normals.size
    steps_per_ms = 1.0 / dt_ms
    decay_m = dt_ms / tau_m_ms
    noise_keep = np.exp(-dt_ms / tau_noise_ms)
    noise_stationary_sd = noise_sd * np.sqrt(tau_m_ms / (2.0 * tau_noise_ms))
    noise_kick = noise_stationary_sd * np.sqrt(1.0 - noise_keep * noise_keep)
    adapt_keep = np.exp(-dt_ms / tau_adapt_ms)
    refractory_steps = int(round(refractory_ms / dt_ms))
    max_spikes = n_steps // max(refractory_steps, 1) + 1
    out = np.empty(max_spikes)
    n_out = 0
    v = reset
    eta = noise_stationary_sd * noise_normals[0]
    w = 0.0
    hold = 0
    next_forced = 0
    for k in range(n_steps):
        eta = eta * noise_keep + noise_kick * noise_normals[k]
        w *= adapt_keep
        if next_forced < forced_reset_steps.size and k >= forced_reset_steps[next_forced]:
            v = reset - forced_hyperpolarisation
            hold = forced_hold_steps[next_forced]
            next_forced += 1
        if hold > 0:
            hold -= 1
            continue
        drive = drive_per_ms[int(k / steps_per_ms)]
        v_new = v + decay_m * (drive - v - w + eta)
        if v_new >= THRESHOLD:
            frac = (THRESHOLD - v) / (v_new - v)
            out[n_out] = (k + frac) * dt_ms
            n_out += 1
            v = reset
            w += adapt_jump
            hold = refractory_steps
        else:
            v = v_new
    return out[:n_out]


def _passage_integrand(u: float) -> float:
    return float(erfcx(-u))


def siegert_rate_hz(
    drive: float, noise_sd: float, tau_m_ms: float, tau_noise_ms: float, refractory_ms: float, reset: float
) -> float:
    """Stationary rate (Hz) of the LIF without adaptation at a constant ``drive``: the Siegert
    mean first-passage time, threshold and reset shifted for coloured noise."""
    shift = noise_sd * COLOURED_NOISE_ALPHA / 2.0 * np.sqrt(tau_noise_ms / tau_m_ms)
    upper = (THRESHOLD + shift - drive) / noise_sd
    lower = (reset + shift - drive) / noise_sd
    integral, _ = quad(_passage_integrand, lower, upper, limit=200)
    passage_ms = tau_m_ms * np.sqrt(np.pi) * integral
    return MS_PER_S / (refractory_ms + passage_ms)


def drive_for_rate(
    rate_hz: float,
    noise_sd: float,
    tau_m_ms: float,
    tau_noise_ms: float,
    refractory_ms: float,
    reset: float,
    tau_adapt_ms: float,
    adapt_jump: float,
) -> float:
    """The constant drive at which the adapting LIF fires at ``rate_hz`` (Siegert inverted, plus
    the mean adaptation current)."""
    target = np.log(rate_hz)

    def mismatch(drive: float) -> float:
        rate = siegert_rate_hz(drive, noise_sd, tau_m_ms, tau_noise_ms, refractory_ms, reset)
        return np.log(max(rate, TINY_RATE_HZ)) - target

    free_drive = brentq(mismatch, *DRIVE_SEARCH_RANGE, xtol=1e-6)
    return free_drive + adapt_jump * rate_hz / MS_PER_S * tau_adapt_ms


def drive_per_log_rate(rate_hz: float, **params: float) -> float:
    """d drive / d ln(rate) at ``rate_hz``: converts a wanted relative rate change into a drive change."""
    up = drive_for_rate(rate_hz * (1 + RATE_SLOPE_STEP), **params)
    down = drive_for_rate(rate_hz / (1 + RATE_SLOPE_STEP), **params)
    return (up - down) / (2 * np.log1p(RATE_SLOPE_STEP))
