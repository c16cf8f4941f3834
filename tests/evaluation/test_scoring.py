"""Scoring against ground truth (``rtclass.evaluation.scoring``) on hand-made spike trains: a
perfect sort scores 1, a shifted one 0, and scores are counted over ALL ground-truth spikes
(missed ones count against recall, unassigned sorted spikes count for nothing)."""

import numpy as np
import pytest
from scipy.signal import sosfilt, sosfreqz

from rtclass.config import PreprocessConfig
from rtclass.dsp.filtering import BandpassFilter
from rtclass.evaluation.scoring import (
    SORTING_DELTA_MS,
    filtered_template_peaks,
    match_detections,
    measured_noise_sd,
    score_detection,
    score_sorting,
)

FS = 30000.0
DELTA = round(SORTING_DELTA_MS * FS / 1000)  # 12 samples


def _ground_truth(seed=0, n_units=3, n=200):
    """``n`` spikes of each of ``n_units`` units, shuffled together; any two spikes are at least
    30 samples (1 ms) apart, so a shift of 13 samples makes no coincidence by chance."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.integers(30, 600, n_units * n))
    units = rng.permutation(np.repeat(np.arange(n_units), n))
    order = rng.permutation(times.size)
    return times[order], units[order]


def test_a_perfect_sort_scores_one_whatever_its_ids_and_order():
    t, u = _ground_truth()
    ids = np.array([70, 5, 12])  # the sort's own cluster ids
    order = np.argsort(t)
    s = score_sorting(t, u, t[order], ids[u][order], 3, FS)
    assert s.matched_unit.tolist() == [70, 5, 12]
    assert s.accuracy.tolist() == s.recall.tolist() == s.precision.tolist() == [1.0, 1.0, 1.0]
    assert s.well_detected(np.ones(3, bool)) == 1.0


def test_spikes_shifted_beyond_the_coincidence_window_score_zero():
    t, u = _ground_truth()
    s = score_sorting(t, u, t + DELTA + 1, u, 3, FS)
    assert s.matched_unit.tolist() == [-1, -1, -1] and not s.accuracy.any() and not s.recall.any()
    within = score_sorting(t, u, t + DELTA, u, 3, FS)  # just inside: still a perfect sort
    assert within.accuracy.tolist() == [1.0, 1.0, 1.0]


def test_missed_spikes_count_against_recall_over_all_ground_truth_spikes():
    t, u = _ground_truth()
    keep = (u != 1) | (np.arange(t.size) % 4 == 0)  # a quarter of unit 1's spikes found
    keep &= u != 2  # unit 2 never found
    s = score_sorting(t, u, t[keep], u[keep], 3, FS)
    n1 = (u == 1).sum()
    assert s.recall[1] == pytest.approx(keep[u == 1].sum() / n1) and s.precision[1] == 1.0
    assert s.accuracy[1] == pytest.approx(keep[u == 1].sum() / n1)  # tp / (tp + fn)
    assert s.matched_unit[2] == -1 and s.recall[2] == 0.0 and s.accuracy[2] == 0.0
    assert s.accuracy[0] == 1.0
    # a ground-truth unit that exists but never fired in this stretch: nothing to find
    s4 = score_sorting(t, u, t, u, 4, FS)
    assert s4.matched_unit[3] == -1 and s4.recall[3] == 0.0


def test_false_positives_lower_precision_and_unassigned_spikes_count_for_nothing():
    t, u = _ground_truth()
    sel = u == 0
    extra = np.arange(1, sel.sum() + 1) * 7919 + 10**7  # as many spikes again, none near a true one
    so_t = np.concatenate([t, extra, t[u == 1] + 2])
    so_u = np.concatenate([u, np.zeros(extra.size, int), np.full((u == 1).sum(), -1)])
    s = score_sorting(t, u, so_t, so_u, 3, FS)
    assert s.recall[0] == 1.0 and s.precision[0] == pytest.approx(0.5) and s.accuracy[0] == pytest.approx(0.5)
    assert s.precision[1] == 1.0  # unit -1 spikes on top of unit 1's: ignored


def test_each_ground_truth_unit_is_paired_with_one_sorted_unit():
    """A unit split in two: the larger part is its match, the smaller one is nobody's."""
    t, u = _ground_truth(n_units=1)
    part = np.arange(t.size) % 3 == 0
    s = score_sorting(t, u, t, np.where(part, 8, 9), 1, FS)
    assert s.matched_unit.tolist() == [9] and s.recall[0] == pytest.approx((~part).mean())


def test_a_sorted_spike_is_matched_to_one_ground_truth_spike_at_most():
    s = score_sorting(np.array([100, 108]), np.array([0, 0]), np.array([104]), np.array([0]), 1, FS)
    assert s.precision[0] <= 1.0 and s.accuracy[0] <= 1.0


def _line_positions(n):
    return np.stack([np.zeros(n), 20.0 * np.arange(n)], 1)


def test_detection_scores_count_every_ground_truth_spike_and_every_detection():
    pos = _line_positions(10)
    gt_t = np.array([100, 400, 700, 1000, 1300, 1600])
    gt_u = np.array([0, 1, 0, 1, 0, 1])
    peak = np.array([2, 7])  # unit 0 peaks on channel 2, unit 1 on 7
    det_t = np.array([103, 399, 1000, 1290, 1600, 5000])  # 1290: 10 samples off; 5000: nothing there
    det_c = np.array([3, 7, 0, 2, 7, 5])  # 1000 is found on channel 0: 140 um from unit 1's peak
    score = score_detection(det_t, det_c, gt_t, gt_u, peak, np.array([10.0, 4.0]), pos, FS)
    # unit 0: 100 and 1290 (within 0.5 ms = 15 samples), 700 missed; unit 1: 400 and 1600
    assert score.unit_recall.tolist() == pytest.approx([2 / 3, 2 / 3])
    assert score.precision == pytest.approx(4 / 6) and (score.n_detections, score.n_ground_truth) == (6, 6)
    assert score.recall_above(5.0) == pytest.approx(2 / 3) and np.isnan(score.recall_above(50.0))
    assert score.as_dict()["units_snr_ge_5"] == 1
    hit = match_detections(det_t, det_c, gt_t, gt_u, peak, pos, FS)
    assert hit.tolist() == [0, 1, -1, -1, 3, 4]


def test_a_detection_is_matched_once_to_the_nearest_spike_in_time():
    pos = _line_positions(4)
    gt_t, gt_u = np.array([100, 106]), np.array([0, 0])
    hit = match_detections(np.array([105]), np.array([1]), gt_t, gt_u, np.array([1]), pos, FS)
    assert hit.tolist() == [0, -1]  # greedy in ground-truth order: 100 takes it, 106 finds nothing left
    score = score_detection(np.array([105]), np.array([1]), gt_t, gt_u, np.array([1]), np.ones(1), pos, FS)
    assert score.unit_recall.tolist() == [0.5] and score.precision == 1.0


def test_filtered_template_peaks_are_what_the_causal_band_pass_leaves():
    pre = PreprocessConfig()
    templates = np.zeros((2, 90, 6), np.float32)
    t = np.arange(90)
    templates[0, :, 4] = -100 * np.exp(-0.5 * ((t - 30) / 2.0) ** 2)
    templates[0, :, 3] = -60 * np.exp(-0.5 * ((t - 30) / 2.0) ** 2)
    templates[1, :, 1] = -50 * np.exp(-0.5 * ((t - 30) / 6.0) ** 2)  # broad: the high-pass takes more of it
    noise = np.array([1.0, 5.0, 1.0, 1.0, 10.0, 1.0])
    snr, peak = filtered_template_peaks(templates, noise, pre, FS)
    assert peak.tolist() == [4, 1]
    sos = BandpassFilter(pre, 1, FS).sos.astype(np.float64)
    depth = -sosfilt(sos, templates.astype(np.float64), axis=1).min(1)
    assert snr.tolist() == pytest.approx([depth[0, 4] / 10.0, depth[1, 1] / 5.0])
    assert depth[1, 1] / 50 < depth[0, 4] / 100 < 1.0  # filtering shrinks troughs, broad ones most


def test_measured_noise_is_the_band_limited_sd_and_ignores_the_common_mode():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 20.0, (60000, 64)).astype(np.float32)
    pre = PreprocessConfig()
    sos = BandpassFilter(pre, 1, FS).sos.astype(np.float64)
    _, h = sosfreqz(sos, worN=1 << 16)
    want = 20.0 * np.sqrt(np.mean(np.abs(h) ** 2))  # white noise's sd after the band-pass
    plain = measured_noise_sd(x, PreprocessConfig(common_reference="none"), FS)
    assert np.median(plain) == pytest.approx(want, rel=0.03)
    common = x + (200.0 * np.sin(2 * np.pi * 1000.0 * np.arange(60000) / FS))[:, None].astype(np.float32)
    referenced = measured_noise_sd(common, pre, FS)
    assert np.median(referenced) == pytest.approx(want, rel=0.05)  # the median reference removes it
    assert np.median(measured_noise_sd(common, PreprocessConfig(common_reference="none"), FS)) > 3 * want
