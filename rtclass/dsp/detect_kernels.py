"""Numba kernel for online spike detection with a running per-channel noise estimate.

One pass over time does two things per new sample, in sample order, so that the result depends
only on the sample sequence and never on how it was cut into chunks:

1. noise: every ``subsample``-th sample (by global index) adds ``|x|`` of each channel to a
   per-channel histogram; at every ``update``-th sample the histogram is decayed (exponential
   forgetting) and the median absolute amplitude read from it gives the noise standard deviation
   (MAD / 0.6745) and the threshold;
2. detection: the sample ``sweep`` samples back is now surrounded by ``sweep`` samples on each
   side, so it is decided: it is a peak if it is below ``-threshold`` of its channel and is the
   minimum of the window ``[t - sweep, t + sweep]`` over its neighbouring channels (locally
   exclusive). Ties go to the earlier (time, channel) position, so a flat-bottomed trough yields
   one peak;
3. echo suppression: a causal band-pass turns a spike's after-positivity into a second, smaller
   trough about 1-2 ms later, and a large spike reaches contacts beyond the exclusion radius a
   little later. A peak is dropped if, within ``refractory`` samples after an accepted peak on a
   channel within the suppression radius, it is smaller than ``ratio`` times that peak. Bursts
   of one unit (equal amplitudes) and larger spikes of other units pass.
"""

from __future__ import annotations

import numba
import numpy as np

#: MAD of a standard normal distribution: sigma = MAD / MAD_PER_SD
MAD_PER_SD = 0.6744897501960817

#: indices into ``detect_stream``'s ``params`` (float64 [N_PARAMS]): threshold in noise SDs, the
#: noise histograms' bin width (uV), their decay per update, the sample subsampling of the noise
#: estimate, the update period (samples), the end of the warm-up (global sample index), the echo
#: refractory period (samples) and the echo amplitude ratio
THRESHOLD_SD, BIN_WIDTH_UV, DECAY, SUBSAMPLE, UPDATE_SAMPLES, WARMUP_END, REFRACTORY_SAMPLES, ECHO_RATIO = range(8)
N_PARAMS = 8


def detect_params(
    threshold_sd: float,
    bin_width_uv: float,
    decay: float,
    subsample: int,
    update_samples: int,
    warmup_end: int,
    refractory_samples: int,
    echo_ratio: float,
) -> np.ndarray:
    """``detect_stream``'s ``params`` array, each value at its named index."""
    params = np.zeros(N_PARAMS)
    params[THRESHOLD_SD], params[BIN_WIDTH_UV], params[DECAY] = threshold_sd, bin_width_uv, decay
    params[SUBSAMPLE], params[UPDATE_SAMPLES], params[WARMUP_END] = subsample, update_samples, warmup_end
    params[REFRACTORY_SAMPLES], params[ECHO_RATIO] = refractory_samples, echo_ratio
    return params


@numba.jit(nopython=True, nogil=True, cache=True)
def _median_from_histogram(hist_row, bin_width):
    total = 0.0
    for b in range(hist_row.shape[0]):
        total += hist_row[b]
    if total <= 0.0:
        return np.inf
    half = 0.5 * total
    cum = 0.0
    for b in range(hist_row.shape[0]):
        h = hist_row[b]
        if cum + h >= half and h > 0.0:
            return (b + (half - cum) / h) * bin_width
        cum += h
    return hist_row.shape[0] * bin_width


@numba.jit(nopython=True, nogil=True, cache=True)
def _is_local_minimum(work, p, c, sweep, neighbours_c):
    v = work[p, c]
    for j in range(neighbours_c.shape[0]):
        nc = neighbours_c[j]
        if nc < 0:
            break
        for q in range(p - sweep, p + sweep + 1):
            if q == p and nc == c:
                continue
            w = work[q, nc]
            if q < p or (q == p and nc < c):
                if not v < w:
                    return False
            elif not v <= w:
                return False
    return True


@numba.jit(nopython=True, nogil=True, cache=True)
def _is_echo(gp, v, suppress_c, last_t, last_amp, refractory, ratio):
    for j in range(suppress_c.shape[0]):
        nc = suppress_c[j]
        if nc < 0:
            break
        if gp - last_t[nc] <= refractory and v > ratio * last_amp[nc]:
            return True
    return False


@numba.jit(nopython=True, nogil=True, cache=True)
def detect_stream(
    work,
    n_new,
    first_sample,
    sweep,
    neighbours,
    suppress,
    hist,
    noise_sd,
    channel_threshold_sd,
    threshold,
    last_t,
    last_amp,
    params,
    out_sample,
    out_channel,
    out_amplitude,
    out_strong,
):
    """Feed ``n_new`` new samples and decide every sample that became decidable.

    work: float32 [H + n_new, C]: the last H >= 2 * sweep samples of earlier chunks, then the
        new ones (global index of ``work[H]`` is ``first_sample``).
    neighbours: int32 [C, K] channel indices (-1 padded), symmetric relation.
    suppress: int32 [C, K2] channels within the echo-suppression radius (-1 padded).
    last_t, last_amp: int64 / float32 [C]: last accepted peak per channel (updated).
    hist: float32 [C, n_bins] |amplitude| histograms; noise_sd, threshold: float32 [C] (updated;
        threshold is +inf until the warm-up is over, so nothing is detected before).
    channel_threshold_sd: float32 [C]: each channel's threshold in noise SDs (``threshold_sd``,
        or lower on the channels where a known unit peaks).
    params: float64 [8]: threshold_sd (a peak at least this deep is *strong*), bin_width_uv,
        decay per update, subsample, update period (samples), end of the warm-up (global index; a
        multiple of the update period): thresholds are set from then on and samples from it on
        can be peaks; echo refractory (samples) and amplitude ratio.
    out_*: preallocated outputs (``out_strong``: the peak reaches ``threshold_sd``); returns the
        number of peaks written.
    """
    n_ch = work.shape[1]
    n_bins = hist.shape[1]
    threshold_sd = params[THRESHOLD_SD]
    bin_width = params[BIN_WIDTH_UV]
    decay = params[DECAY]
    subsample = np.int64(params[SUBSAMPLE])
    update = np.int64(params[UPDATE_SAMPLES])
    warmup_end = np.int64(params[WARMUP_END])
    refractory = np.int64(params[REFRACTORY_SAMPLES])
    ratio = params[ECHO_RATIO]
    inv_bin = 1.0 / bin_width
    found = 0
    base = work.shape[0] - n_new
    for i in range(n_new):
        g = first_sample + i
        pos = base + i
        if g % subsample == 0:
            for c in range(n_ch):
                b = np.int64(abs(work[pos, c]) * inv_bin)
                if b >= n_bins:
                    b = n_bins - 1
                hist[c, b] += 1.0
        if (g + 1) % update == 0:
            for c in range(n_ch):
                row = hist[c]
                for b in range(n_bins):
                    row[b] *= decay
                if g + 1 >= warmup_end:
                    sd = _median_from_histogram(row, bin_width) / MAD_PER_SD
                    noise_sd[c] = sd
                    threshold[c] = channel_threshold_sd[c] * sd
        p = pos - sweep
        gp = g - sweep
        if gp < warmup_end:
            continue
        # most time points cross no threshold: a vectorisable test skips them
        crossing = False
        for c in range(n_ch):
            crossing |= work[p, c] <= -threshold[c]
        if not crossing:
            continue
        for c in range(n_ch):
            v = work[p, c]
            if (
                v <= -threshold[c]
                and _is_local_minimum(work, p, c, sweep, neighbours[c])
                and not _is_echo(gp, v, suppress[c], last_t, last_amp, refractory, ratio)
            ):
                last_t[c] = gp
                last_amp[c] = v
                out_sample[found] = gp
                out_channel[found] = c
                out_amplitude[found] = v
                out_strong[found] = v <= -threshold_sd * noise_sd[c]
                found += 1
    return found
