"""The detection kernel (``rtclass.dsp.detect_kernels``) called directly on hand-made data: the
running MAD noise level, the threshold, locally exclusive peaks (ties to the earlier sample), echo
suppression, and nothing before the warm-up ends."""

import numpy as np
import pytest
from scipy.stats import norm

from rtclass.dsp.detect_kernels import MAD_PER_SD, _median_from_histogram, detect_params, detect_stream

SWEEP = 6
UPDATE = 3000
WARMUP_END = 6000
N_BINS = 512
BIN_UV = 0.5


def _detect(x, neighbours, suppress=None, threshold_sd=5.0, refractory=0, ratio=0.6, subsample=1, channel_sd=None):
    """All peaks of ``x`` [n, C] in one call: (samples, channels, amplitudes), noise sd.
    ``channel_sd``: per-channel thresholds in SDs (default: ``threshold_sd`` everywhere); with it
    the peaks' strong flags are returned too."""
    n, n_ch = x.shape
    work = np.concatenate([np.zeros((2 * SWEEP, n_ch), np.float32), x])
    suppress = neighbours if suppress is None else suppress
    params = detect_params(threshold_sd, BIN_UV, 1.0, subsample, UPDATE, WARMUP_END, refractory, ratio)
    hist = np.zeros((n_ch, N_BINS), np.float32)
    noise_sd, threshold = np.full(n_ch, np.inf, np.float32), np.full(n_ch, np.inf, np.float32)
    last_t, last_amp = np.full(n_ch, -(10**9), np.int64), np.zeros(n_ch, np.float32)
    cap = n_ch * (n // (SWEEP + 1) + 1)
    out_s, out_c, out_a = np.empty(cap, np.int64), np.empty(cap, np.int16), np.empty(cap, np.float32)
    out_strong = np.empty(cap, np.bool_)
    per_channel = np.full(n_ch, threshold_sd, np.float32) if channel_sd is None else channel_sd.astype(np.float32)
    k = detect_stream(
        work,
        n,
        0,
        SWEEP,
        neighbours,
        suppress,
        hist,
        noise_sd,
        per_channel,
        threshold,
        last_t,
        last_amp,
        params,
        out_s,
        out_c,
        out_a,
        out_strong,
    )
    if channel_sd is not None:
        return out_s[:k], out_c[:k], out_a[:k], noise_sd, out_strong[:k]
    return out_s[:k], out_c[:k], out_a[:k], noise_sd


def _line(n_ch):
    """Channels on a line, each with its two neighbours."""
    rows = [[c, c - 1 if c > 0 else -1, c + 1 if c + 1 < n_ch else -1] for c in range(n_ch)]
    return np.array([sorted(r, key=lambda v: v < 0) for r in rows], np.int32)


def _noise(n=12000, n_ch=4, sd=10.0, seed=0):
    return np.random.default_rng(seed).normal(0, sd, (n, n_ch)).astype(np.float32)


def test_mad_per_sd_is_the_normal_quartile():
    assert MAD_PER_SD == pytest.approx(norm.ppf(0.75), rel=1e-12)


def test_median_from_histogram_interpolates_within_its_bin():
    assert _median_from_histogram(np.zeros(8, np.float32), 0.5) == np.inf
    h = np.array([1, 1, 1, 1], np.float32)  # uniform over 0..4 bins
    assert _median_from_histogram(h, 0.5) == pytest.approx(2 * 0.5)
    h = np.array([0, 4, 0, 0], np.float32)  # all in bin 1 (0.5 .. 1.0 uV): the middle of it
    assert _median_from_histogram(h, 0.5) == pytest.approx(0.75)


def test_noise_level_is_mad_over_0_6745_of_the_samples():
    x = _noise(sd=10.0)
    _, _, _, noise_sd = _detect(x, _line(4))
    want = np.median(np.abs(x[: UPDATE * 4]), axis=0) / MAD_PER_SD
    np.testing.assert_allclose(noise_sd, want, rtol=0.02)  # to the histogram's resolution
    np.testing.assert_allclose(noise_sd, 10.0, rtol=0.05)


def test_troughs_below_the_threshold_are_found_once_each_and_others_not():
    x = _noise()
    times = np.arange(WARMUP_END + 100, 12000 - 100, 400)
    for t in times:
        x[t - 2 : t + 3, 2] += [-30.0, -70.0, -120.0, -70.0, -30.0]
    x[WARMUP_END + 50, 0] -= 35.0  # 3.5 sd: below a 5-sd threshold
    s, c, a, _ = _detect(x, _line(4))
    assert np.array_equal(s, times) and np.all(c == 2)
    assert np.array_equal(a, x[times, 2])  # the amplitude is the sample's value


def test_nothing_is_detected_before_the_warm_up_ends():
    x = _noise()
    x[WARMUP_END - 200, 1] -= 300.0
    x[WARMUP_END + 200, 1] -= 300.0
    s, _, _, _ = _detect(x, _line(4))
    assert s.tolist() == [WARMUP_END + 200]


def test_a_peak_must_be_the_minimum_among_its_neighbours():
    x = np.zeros((12000, 4), np.float32)
    x[:WARMUP_END] = _noise(WARMUP_END)  # noise only to set thresholds (~50 uV)
    t = 9000
    x[t, 1] = -200.0
    x[t + 2, 2] = -150.0  # neighbour of 1, within the sweep: not a peak
    x[t + 1, 3] = -150.0  # not a neighbour of 1 (only of 2): a peak of its own
    s, c, _, _ = _detect(x, _line(4))
    assert list(zip(s.tolist(), c.tolist())) == [(t, 1), (t + 1, 3)]


def test_a_flat_bottomed_trough_gives_one_peak_at_its_first_sample():
    x = np.zeros((12000, 4), np.float32)
    x[:WARMUP_END] = _noise(WARMUP_END)
    t = 9000
    x[t : t + 3, 1] = -200.0  # three equal samples
    x[t + 5, 2] = -200.0  # the same depth on a neighbour, later: the earlier one wins
    s, c, _, _ = _detect(x, _line(4))
    assert list(zip(s.tolist(), c.tolist())) == [(t, 1)]


def test_echoes_smaller_than_the_ratio_are_suppressed_within_the_refractory_time():
    x = np.zeros((12000, 4), np.float32)
    x[:WARMUP_END] = _noise(WARMUP_END)
    t = 8000
    x[t, 1] = -200.0
    x[t + 30, 1] = -100.0  # 0.5 of the spike, 1 ms later: an echo
    x[t + 40, 2] = -100.0  # on a channel within the suppression radius: an echo too
    x[t + 60, 1] = -180.0  # 0.9 of it: a burst of the same unit, kept
    x[t + 400, 1] = -100.0  # after the refractory time: a spike
    far = np.array([[0, -1], [1, 2], [2, 1], [3, -1]], np.int32)
    s, c, _, _ = _detect(x, far, far, refractory=90, ratio=0.6)
    assert list(zip(s.tolist(), c.tolist())) == [(t, 1), (t + 60, 1), (t + 400, 1)]
    s, _, _, _ = _detect(x, far, far, refractory=0)  # off: every trough is a peak
    assert s.tolist() == [t, t + 30, t + 40, t + 60, t + 400]


def test_a_lower_threshold_on_a_template_channel_finds_weak_peaks_marked_weak():
    x = _noise(n_ch=2)
    x[9000, 0] = x[9000, 1] = -45.0  # 4.5 SD on both channels (not neighbours here)
    x[10000, 0] = -80.0  # 8 SD
    alone = np.array([[0, -1], [1, -1]], np.int32)
    s, c, _, _, strong = _detect(x, alone, channel_sd=np.array([4.0, 5.0]))
    found = dict(zip(zip(s.tolist(), c.tolist()), strong.tolist()))
    assert found[(9000, 0)] is False  # found on the lowered channel, and marked weak
    assert (9000, 1) not in found  # the other channel keeps threshold_sd
    assert found[(10000, 0)] is True
