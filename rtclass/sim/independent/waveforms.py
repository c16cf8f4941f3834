"""Waveform model of the independent generator: from a modelled intracellular action potential to
a sorter's mean waveform on the peak channel.

**Intracellular action potential.** ``v(t) = (1 - exp(-t/rise))**3 * exp(-t/decay)`` for t >= 0
(a Hodgkin-Huxley-like m**3 activation times an exponential repolarisation), normalised to a peak
of 1, minus an after-hyperpolarisation ``ahp_frac * (t/ahp_tau) * exp(1 - t/ahp_tau)`` (an alpha
function). It is computed on a grid 8x finer than the 30 kHz sampling.

**Extracellular spike.** Near a soma the extracellular potential follows the total membrane
current: a capacitive part proportional to dV/dt (Henze 2000: the somatic spike resembles the
negative first derivative) and a resistive (ionic) part that follows V itself (Gold 2006: most
recordings lack a prominent capacitive phase). So ``e = -(w * dV/dt + (1 - w) * V)`` with each
term normalised to unit peak and ``w`` the capacitive weight. Along an axon (mossy fibre boutons)
the membrane current of a propagating spike is proportional to d2V/dx2, i.e. to d2V/dt2: the
narrow triphasic axonal spike (Robbins 2013), ``e = w * d2V/dt2 - (1 - w) * dV/dt``.

**Complex spike.** The initial somatic spike, then 1-5 spikelets at growing intervals (~1.5-3 ms,
Warnaar 2015) whose amplitudes decay geometrically and whose shapes broaden, plus a broad slow
component (an alpha function; usually positive) for the dendritic calcium spike.

**Acquisition.** A causal Butterworth high-pass (~300 Hz, order 1-3) and a 2nd-order low-pass at
8-10 kHz, applied with ``scipy.signal.sosfilt`` on the fine grid before sampling at 30 kHz.
Causal, not zero-phase (``sosfiltfilt``), because the Neuropixels spike band (0.3-10 kHz) is an
analogue filter in the probe: a mean waveform taken from the recorded AP band carries that
filter's phase distortion - an undershoot and a shifted, reshaped repolarisation (Yael 2017) -
and a classifier should see it.

**A sorter's template.** Length 61, 82, 90 or 121 samples with the trough at a drawn fraction of
the length (not always centred), an amplitude of tens to hundreds of uV, residual noise of an
average of N spikes (N = 30-2000; 1/f**exponent coloured, band-passed like the signal, rms
``noise / sqrt(N)``), sometimes a baseline offset or a small slope, and with a small probability
a positive-going (sign-flipped) unit.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt

from rtclass.features.c4 import C4_SAMPLE_RATE_HZ, WAVEFORM_PEAK

SAMPLE_RATE_HZ = C4_SAMPLE_RATE_HZ
#: the action potential is modelled on a grid this many times finer than the sampling
FINE_OVERSAMPLE = 8
FINE_RATE_HZ = SAMPLE_RATE_HZ * FINE_OVERSAMPLE
MS_PER_S = 1e3
#: modelled time before the spike onset and after it (slow components, the high-pass undershoot)
PRE_MS = 3.0
POST_MS = 16.0
#: exponent of the activation in the action potential's rise
AP_ACTIVATION_POWER = 3
#: order of the acquisition low-pass
LOWPASS_ORDER = 2
#: onset of a complex spike's slow component after the initial spike, ms
CS_SLOW_ONSET_MS = 0.3
#: each later spikelet interval grows by this fraction (the late spikelets jitter and spread,
#: Warnaar 2015)
CS_INTERVAL_GROWTH = 0.1
#: spikelets are modelled only up to this long before the end of the modelled span, ms
CS_LAST_SPIKELET_MARGIN_MS = 2.0
#: samples of extra noise on each side, so that the noise's filter transients fall outside
NOISE_PAD_SAMPLES = 512


def fine_time_ms() -> np.ndarray:
    """The fine time axis (ms) the spike is modelled on; onset at 0."""
    n = int(round((PRE_MS + POST_MS) / MS_PER_S * FINE_RATE_HZ))
    return np.arange(n) / FINE_RATE_HZ * MS_PER_S - PRE_MS


def intracellular_ap(
    t_ms: np.ndarray, rise_ms: float, decay_ms: float, ahp_frac: float, ahp_tau_ms: float
) -> np.ndarray:
    """The modelled intracellular action potential (peak 1) with its after-hyperpolarisation."""
    t = np.maximum(t_ms, 0.0)
    v = (-np.expm1(-t / rise_ms)) ** AP_ACTIVATION_POWER * np.exp(-t / decay_ms)
    v = v / v.max()
    ahp = ahp_frac * (t / ahp_tau_ms) * np.exp(1 - t / ahp_tau_ms)
    return np.where(t_ms > 0, v - ahp, 0.0)


def _unit_peak(x: np.ndarray) -> np.ndarray:
    return x / np.abs(x).max()


def somatic_spike(v: np.ndarray, capacitive_weight: float) -> np.ndarray:
    """Extracellular somatic spike: capacitive (dV/dt) and resistive (V) current, both negative."""
    dv = np.gradient(v)
    return -(capacitive_weight * _unit_peak(dv) + (1 - capacitive_weight) * _unit_peak(v))


def axonal_spike(v: np.ndarray, axonal_weight: float) -> np.ndarray:
    """Extracellular axonal spike: mostly d2V/dt2 (triphasic), some -dV/dt."""
    dv = np.gradient(v)
    d2v = np.gradient(dv)
    return axonal_weight * _unit_peak(d2v) - (1 - axonal_weight) * _unit_peak(dv)


def _alpha(t_ms: np.ndarray, tau_ms: float) -> np.ndarray:
    t = np.maximum(t_ms, 0.0)
    return (t / tau_ms) * np.exp(1 - t / tau_ms)


def complex_spike(t_ms: np.ndarray, p: dict[str, float]) -> np.ndarray:
    """Initial spike + decaying, broadening spikelets + a slow component (trough of the initial
    spike normalised to -1)."""

    def spike(shift_ms: float, broadening: float) -> np.ndarray:
        v = intracellular_ap(
            t_ms - shift_ms, p["ap_rise_ms"] * broadening, p["ap_decay_ms"] * broadening, p["ahp_frac"], p["ahp_tau_ms"]
        )
        e = somatic_spike(v, p["capacitive_weight"])
        return e / abs(e.min())

    out = spike(0.0, 1.0)
    shift = 0.0
    for j in range(1, int(p["n_spikelets"]) + 1):
        shift += p["spikelet_interval_ms"] * (1 + CS_INTERVAL_GROWTH * (j - 1))
        if shift >= POST_MS - CS_LAST_SPIKELET_MARGIN_MS:
            break
        out = out + p["spikelet_decay"] ** j * spike(shift, 1 + p["spikelet_broadening"] * j)
    sign = 1.0 if p["slow_positive"] else -1.0
    return out + sign * p["slow_frac"] * _alpha(t_ms - CS_SLOW_ONSET_MS, p["slow_tau_ms"])


def clean_spike(model: str, p: dict[str, float]) -> np.ndarray:
    """The extracellular spike on the fine grid before acquisition: ``model`` is ``somatic``,
    ``axonal`` or ``complex`` (``celltypes.WAVEFORM_OF_TYPE``)."""
    if model not in ("somatic", "axonal", "complex"):
        raise ValueError(f"unknown waveform model {model!r}")
    t = fine_time_ms()
    if model == "complex":
        return complex_spike(t, p)
    v = intracellular_ap(t, p["ap_rise_ms"], p["ap_decay_ms"], p["ahp_frac"], p["ahp_tau_ms"])
    if model == "axonal":
        return axonal_spike(v, p["axonal_weight"])
    return somatic_spike(v, p["capacitive_weight"])


def acquisition_filter(highpass_hz: float, order: int, lowpass_hz: float, rate_hz: float) -> np.ndarray:
    """Second-order sections of the causal band-pass: Butterworth high-pass then low-pass."""
    hp = butter(int(order), highpass_hz, btype="highpass", fs=rate_hz, output="sos")
    lp = butter(LOWPASS_ORDER, lowpass_hz, btype="lowpass", fs=rate_hz, output="sos")
    return np.concatenate([hp, lp])


def acquired_spike(model: str, p: dict[str, float], tp: dict[str, float]) -> np.ndarray:
    """The spike as the probe records it: band-passed on the fine grid, sampled at 30 kHz at the
    drawn sub-sample phase; normalised so that its trough is -1."""
    sos = acquisition_filter(tp["highpass_hz"], tp["highpass_order"], tp["lowpass_hz"], FINE_RATE_HZ)
    fine = sosfilt(sos, clean_spike(model, p))
    phase = min(int(tp["subsample_phase"] * FINE_OVERSAMPLE), FINE_OVERSAMPLE - 1)
    w = fine[phase::FINE_OVERSAMPLE]
    return w / abs(w.min())


def pink_noise(rng: np.random.Generator, n: int, exponent: float, sos: np.ndarray) -> np.ndarray:
    """``n`` samples of unit-rms noise with a 1/f**exponent spectrum, band-passed by ``sos``."""
    m = n + 2 * NOISE_PAD_SAMPLES
    spectrum = np.fft.rfft(rng.standard_normal(m))
    f = np.fft.rfftfreq(m, 1.0 / SAMPLE_RATE_HZ)
    f[0] = f[1]
    x = sosfilt(sos, np.fft.irfft(spectrum * f ** (-exponent / 2), m))[NOISE_PAD_SAMPLES : NOISE_PAD_SAMPLES + n]
    return x / x.std()


def place(w: np.ndarray, length: int, trough_index: int) -> np.ndarray:
    """Cut ``length`` samples of ``w`` with its trough (minimum) at ``trough_index``; zeros pad
    what the modelled span does not cover."""
    start = int(np.argmin(w)) - trough_index
    out = np.zeros(length)
    lo, hi = max(start, 0), min(start + length, w.size)
    out[lo - start : hi - start] = w[lo:hi]
    return out


def template(rng: np.random.Generator, model: str, p: dict[str, float], tp: dict[str, float]) -> np.ndarray:
    """A sorter's mean waveform (uV) on the peak channel: the acquired spike placed in a template
    of the drawn length, scaled, with residual noise, offset/slope and maybe flipped."""
    length = int(tp["length_samples"])
    w = place(acquired_spike(model, p, tp), length, int(round(tp["trough_fraction"] * length)))
    amp = tp["amplitude_uv"]
    sos = acquisition_filter(tp["highpass_hz"], tp["highpass_order"], tp["lowpass_hz"], SAMPLE_RATE_HZ)
    noise = pink_noise(rng, length, tp["noise_exponent"], sos) * tp["noise_rms_uv"] / np.sqrt(tp["n_averaged"])
    out = amp * w + noise + amp * (tp["offset_frac"] + tp["slope_frac"] * np.linspace(-1.0, 1.0, length))
    return -out if tp["flipped"] else out


def trough_to_peak_ms(w90: np.ndarray) -> float:
    """Trough-to-peak time of a preprocessed waveform (``rtclass.features.c4.preprocess_waveform``:
    trough at sample 30): from the trough to the largest value after it."""
    after = np.asarray(w90)[WAVEFORM_PEAK:]
    return float(np.argmax(after)) / SAMPLE_RATE_HZ * MS_PER_S
