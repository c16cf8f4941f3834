"""The C4 classifier's input features, defined as npyx 4.3.1 computes them (Beau et al., Cell 2025).

**Firing-rate-conditioned autocorrelogram ("3D-ACG").** Spike times (samples at 30 kHz) are
floored to 1 ms bins. An instantaneous rate is built between consecutive inter-spike-interval
midpoints: for every spike except the first and the last, the bins from the (floored) midpoint of
its previous interval up to the midpoint of its next interval get 1 / (that span in s); bins before
the first midpoint and after the last stay at 0 Hz. This rate is smoothed with a 250 ms boxcar:
the value at bin i is the mean over bins [i - 125, i + 125), clipped to the recording (edges average
what exists, no zero padding). The rate at every spike is read off; its quantiles at 1/11 ... 10/11
(numpy's linear interpolation, over all spikes) are the 10 rate-bin edges e0..e9 - not deciles. A
spike falls in the first bin whose edge is >= its rate, and in the last bin if it is above e8, so
the last bin holds about 2/11 of the spikes. Reference spikes are used only if they lie at least
1000 ms after time 0 and at least 1001 ms before the last spike. For each used spike, each 1 ms
lag bin within +-1000 ms counts 1 if it holds at least one spike (several spikes in a bin count
once); the sums per rate bin are divided by the number of used spikes in that bin (empty bins give
zero rows) and the lag-0 column is zeroed: a probability per 1 ms bin, not Hz.

**Log-lag resampling.** Only the positive lags 1..1000 ms are kept and linearly interpolated at 100
lags logspace(0, 3); each rate row is smoothed along lags with a 9-tap Gaussian (sd 1 log bin, taps
-4..4, normalised, edges reflected symmetrically). The network sees a zero column followed by these
100 values, times 10: 10 x 101.

**Waveform.** A mean waveform on the peak channel (``preprocess_waveform``): the reference peak is
the first detected extremum in time whose size exceeds 0.75 of the largest one (peaks found with
scipy's find_peaks at half the trace's sd, at least len/20 apart, within 20-80 % of the trace);
the trace is flipped so that peak is negative, shifted so it sits at index 30 of 90 samples
(padding with the edge values), the median of the first 30 samples is subtracted and the trace is
divided by the peak's magnitude, so that sample 30 is exactly -1.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.signal import find_peaks

from rtclass.cell_types import LOG_LAG_DECADES, N_LOG_LAGS, N_RATE_BINS, WAVEFORM_SAMPLES

C4_SAMPLE_RATE_HZ = 30000
SAMPLES_PER_BIN = 30  # 1 ms at 30 kHz
HALF_WINDOW_BINS = 1000  # +-1000 ms of lags
SMOOTH_BINS = 250
ACG_SCALE = 10.0
WAVEFORM_PEAK = 30
#: reference spikes a unit needs (C4 skips units with fewer than 100 spikes)
MIN_SPIKES = 100

LOG_LAGS_MS = np.logspace(*LOG_LAG_DECADES, N_LOG_LAGS)
_GAUSS = np.exp(-0.5 * np.arange(-4, 5) ** 2)
_GAUSS /= _GAUSS.sum()


@numba.jit(nopython=True, nogil=True, cache=True)
def instantaneous_rate(bins, length):
    """Piecewise-constant rate (Hz) between ISI midpoints, over ``length`` 1 ms bins."""
    fr = np.zeros(length)
    for i in range(1, bins.shape[0] - 1):
        start = bins[i - 1] + (bins[i] - bins[i - 1]) // 2
        stop = bins[i] + (bins[i + 1] - bins[i]) // 2
        if stop > start:
            fr[start:stop] = 1.0 / ((stop - start) * 1e-3)
    return fr


def smoothed_rate(fr: np.ndarray) -> np.ndarray:
    """Boxcar mean over bins [i - 125, i + 125), clipped to the array. Computed the way npyx
    does (a 'same' convolution inside, plain means over the first and last 250 bins), so that
    equal rates stay bitwise equal: rate-bin edges fall on spike rates, and ties decide bins."""
    n = fr.size
    half = SMOOTH_BINS // 2
    out = np.convolve(fr, np.ones(SMOOTH_BINS) / SMOOTH_BINS, mode="same")
    for i in (*range(min(SMOOTH_BINS, n)), *range(max(n - SMOOTH_BINS, 0), n)):
        out[i] = np.mean(fr[max(0, i - half) : min(n, i + half)])
    return out


def rate_bin(rate: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Rate bin of each rate: the first edge >= it, the last bin above the 9th edge."""
    return np.minimum(np.searchsorted(edges, rate, side="left"), N_RATE_BINS - 1)


@numba.jit(nopython=True, nogil=True, cache=True)
def _lag_counts(bins, which, used, train, out, n_per_bin):
    for k in range(bins.shape[0]):
        if not used[k]:
            continue
        s = bins[k]
        b = which[k]
        n_per_bin[b] += 1
        for j in range(2 * HALF_WINDOW_BINS + 1):
            if train[s - HALF_WINDOW_BINS + j]:
                out[b, j] += 1


def acg_vs_rate(times_samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """C4's ``crosscorr_vs_firing_rate(t, t, 2000, 1)``: rate edges (10,) and the conditional
    ACG (10, 2001), probability per 1 ms lag bin. ``times_samples`` sorted, at 30 kHz."""
    return acg_vs_rate_bins(np.floor(np.asarray(times_samples) / SAMPLES_PER_BIN).astype(np.int64))


def acg_vs_rate_bins(bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``acg_vs_rate`` of spike times already in 1 ms bins."""
    length = int(bins[-1]) + 1
    train = np.zeros(length, np.bool_)
    train[bins] = True
    rate = smoothed_rate(instantaneous_rate(bins, length))
    at_spikes = rate[bins]
    edges = np.quantile(at_spikes, np.linspace(0, 1, N_RATE_BINS + 2)[1:-1])
    which = rate_bin(at_spikes, edges)
    used = (
        (bins - HALF_WINDOW_BINS >= 0) & (bins + HALF_WINDOW_BINS + 1 < length) & (bins >= bins[0]) & (bins < bins[-1])
    )
    counts = np.zeros((N_RATE_BINS, 2 * HALF_WINDOW_BINS + 1))
    n = np.zeros(N_RATE_BINS)
    _lag_counts(bins, which, used, train, counts, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        acg = np.nan_to_num(counts / n[:, None])
    acg[:, HALF_WINDOW_BINS] = 0.0
    return edges, acg


def _log_resampling_matrix() -> np.ndarray:
    """(1000, 100): linear interpolation of lags 1..1000 ms at LOG_LAGS_MS (np.interp's rule),
    then the 9-tap Gaussian smoothing with symmetric edge reflection, as one linear map."""
    interp = np.zeros((HALF_WINDOW_BINS, N_LOG_LAGS))
    for j, x in enumerate(LOG_LAGS_MS):
        lo = int(np.floor(x))
        frac = x - lo
        interp[lo - 1, j] += 1 - frac
        if frac > 0:
            interp[lo, j] += frac
    padded = np.concatenate([np.arange(4)[::-1], np.arange(N_LOG_LAGS), N_LOG_LAGS - 1 - np.arange(4)])
    smooth = np.zeros((N_LOG_LAGS, N_LOG_LAGS))
    for j in range(N_LOG_LAGS):
        for tap in range(9):
            smooth[padded[j + tap], j] += _GAUSS[tap]
    return interp @ smooth


LOG_RESAMPLING = _log_resampling_matrix()


def log_acg_from_positive_lags(positive: np.ndarray) -> np.ndarray:
    """(10, 1000) probabilities at lags 1..1000 ms -> C4's network input (10, 101), x10."""
    out = np.zeros((positive.shape[0], N_LOG_LAGS + 1), np.float64)
    out[:, 1:] = positive @ LOG_RESAMPLING
    return (out * ACG_SCALE).astype(np.float32)


def c4_acg(times_samples: np.ndarray) -> np.ndarray:
    """The 3D-ACG as the C4 network receives it: (10, 101) float32."""
    _, acg = acg_vs_rate(times_samples)
    return log_acg_from_positive_lags(acg[:, HALF_WINDOW_BINS + 1 :])


def c4_acg_from_bins(bins: np.ndarray) -> np.ndarray:
    """``c4_acg`` of spike times already in 1 ms bins."""
    _, acg = acg_vs_rate_bins(bins)
    return log_acg_from_positive_lags(acg[:, HALF_WINDOW_BINS + 1 :])


def _detect_peaks(w: np.ndarray) -> np.ndarray:
    """Extrema as C4 finds them for alignment (npyx.feat.detect_peaks, margin 0.5, onset 0.2):
    maxima and minima beyond half the trace's sd, at least len/20 apart, inside 20-80 % of the
    trace; if the deepest of them is last or followed by another negative one, the first local
    maximum after it is added. With none found, every local extremum of the right sign counts."""
    h = 0.5 * np.std(w)
    distance = len(w) // 20
    maxima, _ = find_peaks(w, height=h, distance=distance)
    minima, _ = find_peaks(-w, height=h, distance=distance)
    peaks = np.concatenate([maxima, minima])
    peaks = peaks[np.argsort(peaks)]
    peaks = peaks[(peaks >= len(w) // (1 / 0.2)) & (peaks <= int(len(w) * (1 - 0.2)))]
    if peaks.size:
        deepest = int(np.argmin(w[peaks]))
        if deepest == peaks.size - 1 or w[peaks[deepest + 1]] < 0:
            rebound, _ = find_peaks(w[peaks[deepest] :])
            if rebound.size:
                peaks = np.sort(np.append(peaks, peaks[deepest] + rebound[0]))
        return peaks
    found = []
    for i in range(1, len(w) - 1):
        if w[i] > w[i - 1] and w[i] >= w[i + 1] and w[i] > 0:
            found.append(i)
        elif w[i] < w[i - 1] and w[i] <= w[i + 1] and w[i] < 0:
            found.append(i)
    return np.array(found, dtype=np.int64)


def preprocess_waveform(w: np.ndarray) -> np.ndarray:
    """C4's ``preprocess_template(w, peak_sign='negative')`` at 30 kHz: (90,), peak at 30 = -1."""
    w = np.asarray(w, np.float64).copy()
    peaks = _detect_peaks(w)
    if peaks.size == 0:  # a flat trace: C4 would fail here; align on the largest value instead
        peaks = np.array([int(np.argmax(np.abs(w)))])
    extremum = np.abs(w[peaks]).max()
    ref = int(peaks[np.flatnonzero(np.abs(w[peaks]) > 0.75 * extremum)[0]])
    if w[ref] > 0:
        w = -w
    if ref < WAVEFORM_PEAK:
        w = np.concatenate([np.full(WAVEFORM_PEAK - ref, w[0]), w])
    elif ref > WAVEFORM_PEAK:
        w = np.concatenate([w[ref - WAVEFORM_PEAK :], np.full(ref - WAVEFORM_PEAK, w[-1])])
    if w.size < WAVEFORM_SAMPLES:
        w = np.concatenate([w, np.full(WAVEFORM_SAMPLES - w.size, w[-1])])
    w = w[:WAVEFORM_SAMPLES]
    w = w - np.median(w[:WAVEFORM_PEAK])
    return (w / abs(w[WAVEFORM_PEAK])).astype(np.float32)
