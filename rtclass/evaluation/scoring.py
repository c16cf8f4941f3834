"""Scoring detected spikes against ground truth (simulator, or a curated sort).

A unit's SNR and peak channel are those of its template after the pipeline's band-pass (see
``filtered_template_peaks``): what the detector can see, not the raw trough.

A ground-truth spike is found if a detection lies within ``tolerance_ms`` of it on a channel
within ``radius_um`` of its unit's peak channel; each detection is matched at most once
(greedy, nearest in time first). Recall is per unit; precision is over all detections (a
detection that matches any ground-truth spike, of any unit, is a true positive).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from rtclass.config import PreprocessConfig
from rtclass.dsp.detect_kernels import MAD_PER_SD
from rtclass.stage import ms_to_samples

DEFAULT_TOLERANCE_MS = 0.5
DEFAULT_RADIUS_UM = 60.0
#: units at or above this SNR are the ones detection recall is judged on
SNR_FLOOR = 5.0


@numba.jit(nopython=True, nogil=True, cache=True)
def _greedy_match(gt_t, gt_ch, det_t, det_ch, near, tol):
    n_gt = gt_t.shape[0]
    n_det = det_t.shape[0]
    gt_match = np.full(n_gt, -1, np.int64)
    det_hit = np.zeros(n_det, np.bool_)
    lo = 0
    for i in range(n_gt):
        t = gt_t[i]
        while lo < n_det and det_t[lo] < t - tol:
            lo += 1
        best = -1
        best_dt = tol + 1
        j = lo
        while j < n_det and det_t[j] <= t + tol:
            if not det_hit[j] and near[gt_ch[i], det_ch[j]]:
                dt = abs(det_t[j] - t)
                if dt < best_dt:
                    best_dt = dt
                    best = j
            j += 1
        if best >= 0:
            gt_match[i] = best
            det_hit[best] = True
    return gt_match, det_hit


@dataclass
class DetectionScore:
    unit_recall: np.ndarray  # [n_units]
    unit_snr: np.ndarray
    precision: float
    n_detections: int
    n_ground_truth: int

    def recall_above(self, snr_floor: float = SNR_FLOOR) -> float:
        """Mean recall over units with SNR >= snr_floor (nan if there are none)."""
        sel = self.unit_snr >= snr_floor
        return float(self.unit_recall[sel].mean()) if sel.any() else float("nan")

    def as_dict(self) -> dict:
        return {
            "recall_snr_ge_5": self.recall_above(SNR_FLOOR),
            "precision": self.precision,
            "n_detections": self.n_detections,
            "n_ground_truth": self.n_ground_truth,
            "units_snr_ge_5": int((self.unit_snr >= SNR_FLOOR).sum()),
        }


def _match_in_time_order(
    det_samples,
    det_channels,
    gt_samples,
    gt_units,
    unit_peak_channels,
    positions_um,
    sample_rate_hz,
    tolerance_ms,
    radius_um,
):
    """The greedy matching of ``score_detection`` on time-sorted copies: (ground-truth order,
    detection order, the detection (in that order) matched to each ground-truth spike or -1,
    whether each detection matched)."""
    d = positions_um[:, None, :] - positions_um[None, :, :]
    near = np.sqrt((d**2).sum(-1)) <= radius_um
    go = np.argsort(gt_samples, kind="stable")
    do = np.argsort(det_samples, kind="stable")
    gt_match, det_hit = _greedy_match(
        gt_samples[go].astype(np.int64),
        unit_peak_channels[gt_units[go]].astype(np.int64),
        det_samples[do].astype(np.int64),
        det_channels[do].astype(np.int64),
        near,
        ms_to_samples(tolerance_ms, sample_rate_hz),
    )
    return go, do, gt_match, det_hit


def match_detections(
    det_samples,
    det_channels,
    gt_samples,
    gt_units,
    unit_peak_channels,
    positions_um,
    sample_rate_hz,
    tolerance_ms=DEFAULT_TOLERANCE_MS,
    radius_um=DEFAULT_RADIUS_UM,
) -> np.ndarray:
    """Index of the detection matched to each ground-truth spike (-1: missed), by the rule of
    ``score_detection``; inputs in any order."""
    go, do, m, _ = _match_in_time_order(
        det_samples,
        det_channels,
        gt_samples,
        gt_units,
        unit_peak_channels,
        positions_um,
        sample_rate_hz,
        tolerance_ms,
        radius_um,
    )
    out = np.full(gt_samples.size, -1, np.int64)
    out[go] = np.where(m >= 0, do[np.maximum(m, 0)], -1)
    return out


def score_detection(
    det_samples: np.ndarray,
    det_channels: np.ndarray,
    gt_samples: np.ndarray,
    gt_units: np.ndarray,
    unit_peak_channels: np.ndarray,
    unit_snr: np.ndarray,
    positions_um: np.ndarray,
    sample_rate_hz: float,
    tolerance_ms: float = DEFAULT_TOLERANCE_MS,
    radius_um: float = DEFAULT_RADIUS_UM,
) -> DetectionScore:
    go, _, gt_match, det_hit = _match_in_time_order(
        det_samples,
        det_channels,
        gt_samples,
        gt_units,
        unit_peak_channels,
        positions_um,
        sample_rate_hz,
        tolerance_ms,
        radius_um,
    )
    n_units = unit_peak_channels.size
    found = np.bincount(gt_units[go], weights=gt_match >= 0, minlength=n_units)
    total = np.bincount(gt_units, minlength=n_units)
    recall = np.divide(found, total, out=np.zeros(n_units), where=total > 0)
    return DetectionScore(
        unit_recall=recall,
        unit_snr=np.asarray(unit_snr, float),
        precision=float(det_hit.mean()) if det_hit.size else float("nan"),
        n_detections=int(det_samples.size),
        n_ground_truth=int(gt_samples.size),
    )


def filtered_template_peaks(
    templates_uv: np.ndarray, noise_sd_uv: np.ndarray, preprocess: PreprocessConfig, sample_rate_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per unit, the SNR and peak channel a detector sees: templates ``[U, T, C]`` go through the
    pipeline's causal band-pass; SNR = deepest trough / that channel's noise sd."""
    from scipy.signal import sosfilt

    from rtclass.dsp.filtering import BandpassFilter

    sos = BandpassFilter(preprocess, 1, sample_rate_hz).sos.astype(np.float64)
    filtered = sosfilt(sos, templates_uv.astype(np.float64), axis=1)
    depth = -filtered.min(axis=1)  # [U, C]
    peak = depth.argmax(axis=1)
    snr = depth[np.arange(depth.shape[0]), peak] / noise_sd_uv[peak]
    return snr, peak


def measured_noise_sd(
    data_uv: np.ndarray, preprocess: PreprocessConfig, sample_rate_hz: float, settle_ms: float = 50.0
) -> np.ndarray:
    """Per-channel noise level as SpikeInterface measures it: MAD / 0.6745 of the band-passed,
    median-referenced data (spikes included), after the filter's start-up transient."""
    from rtclass.dsp.filtering import BandpassFilter, CommonMedianReference

    y = BandpassFilter(preprocess, data_uv.shape[1], sample_rate_hz).process(data_uv)
    if preprocess.common_reference == "median":
        CommonMedianReference(data_uv.shape[1]).process(y)
    y = y[int(settle_ms * 1e-3 * sample_rate_hz) :]
    return np.median(np.abs(y), axis=0) / MAD_PER_SD


#: coincidence window of sorting comparisons (SpikeInterface's compare_sorter_to_ground_truth default)
SORTING_DELTA_MS = 0.4


@numba.jit(nopython=True, nogil=True, cache=True)
def _coincidences(gt_t, gt_u, so_t, so_u, n_gt_units, n_so_units, delta):
    """counts[i, j]: spikes of ground-truth unit i matched to a spike of sorted unit j within
    ``delta``, one to one: each ground-truth spike counts once per sorted unit, and each sorted
    spike once per ground-truth unit (the first of that unit's spikes near it takes it).
    ``gt_*`` must be ordered by unit, then time; ``so_t`` by time."""
    counts = np.zeros((n_gt_units, n_so_units), np.int64)
    seen = np.full(n_so_units, -1, np.int64)  # the ground-truth spike a sorted unit last matched
    taken_by = np.full(so_t.shape[0], -1, np.int64)  # the ground-truth unit a sorted spike went to
    n_so = so_t.shape[0]
    for i in range(gt_t.shape[0]):
        t = gt_t[i]
        g = gt_u[i]
        j = np.searchsorted(so_t, t - delta)
        while j < n_so and so_t[j] <= t + delta:
            u = so_u[j]
            if seen[u] != i and taken_by[j] != g:
                seen[u] = i
                taken_by[j] = g
                counts[g, u] += 1
            j += 1
    return counts


@dataclass
class SortingScore:
    """Per ground-truth unit: the sorted unit it was paired with (-1: none), and accuracy =
    tp / (tp + fn + fp), recall = tp / n_gt, precision = tp / n_sorted of that pair."""

    matched_unit: np.ndarray
    accuracy: np.ndarray
    recall: np.ndarray
    precision: np.ndarray

    def well_detected(self, selected: np.ndarray, threshold: float = 0.8) -> float:
        """Fraction of the selected ground-truth units with accuracy >= threshold."""
        return float((self.accuracy[selected] >= threshold).mean()) if selected.any() else float("nan")


def score_sorting(
    gt_samples: np.ndarray,
    gt_units: np.ndarray,
    sorted_samples: np.ndarray,
    sorted_units: np.ndarray,
    n_gt_units: int,
    sample_rate_hz: float,
    delta_ms: float = SORTING_DELTA_MS,
) -> SortingScore:
    """Compare a sort to ground truth the way SpikeInterface's ``compare_sorter_to_ground_truth``
    does: coincidences within ``delta_ms``, agreement = tp / (n_gt + n_sorted - tp), ground-truth
    and sorted units paired one to one by the Hungarian method on agreement. Sorted spikes with
    unit < 0 are ignored."""
    from scipy.optimize import linear_sum_assignment

    keep = sorted_units >= 0
    so_t, so_u = sorted_samples[keep], sorted_units[keep]
    ids, so_idx = np.unique(so_u, return_inverse=True)
    go = np.lexsort((gt_samples, gt_units))  # by unit, then time: a unit's claims on sorted spikes stay together
    oo = np.argsort(so_t, kind="stable")
    counts = _coincidences(
        gt_samples[go].astype(np.int64),
        gt_units[go].astype(np.int64),
        so_t[oo].astype(np.int64),
        so_idx[oo].astype(np.int64),
        n_gt_units,
        max(ids.size, 1),
        ms_to_samples(delta_ms, sample_rate_hz),
    )
    n_gt = np.bincount(gt_units, minlength=n_gt_units).astype(float)
    n_so = np.bincount(so_idx, minlength=max(ids.size, 1)).astype(float)
    agreement = counts / np.maximum(n_gt[:, None] + n_so[None, :] - counts, 1)
    rows, cols = linear_sum_assignment(-agreement)
    matched = np.full(n_gt_units, -1)
    acc, rec, prec = np.zeros(n_gt_units), np.zeros(n_gt_units), np.zeros(n_gt_units)
    for r, c in zip(rows, cols):
        if counts[r, c] == 0 or ids.size == 0:
            continue
        matched[r] = ids[c]
        acc[r] = agreement[r, c]
        rec[r] = counts[r, c] / max(n_gt[r], 1)
        prec[r] = counts[r, c] / max(n_so[c], 1)
    return SortingScore(matched, acc, rec, prec)
