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

DEFAULT_TOLERANCE_MS = 0.5
DEFAULT_RADIUS_UM = 60.0
#: units at or above this SNR are the ones detection recall is judged on
SNR_FLOOR = 5.0


@numba.jit(nopython=True, nogil=True, cache=True)
def _greedy_match(gt_t, gt_ch, det_t, det_ch, near, tol):
    n_gt = gt_t.shape[0]
    n_det = det_t.shape[0]
    gt_hit = np.zeros(n_gt, np.bool_)
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
            gt_hit[i] = True
            det_hit[best] = True
    return gt_hit, det_hit


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
    d = positions_um[:, None, :] - positions_um[None, :, :]
    near = np.sqrt((d**2).sum(-1)) <= radius_um
    go = np.argsort(gt_samples, kind="stable")
    do = np.argsort(det_samples, kind="stable")
    tol = int(round(tolerance_ms * 1e-3 * sample_rate_hz))
    gt_hit, det_hit = _greedy_match(
        gt_samples[go].astype(np.int64), unit_peak_channels[gt_units[go]].astype(np.int64),
        det_samples[do].astype(np.int64), det_channels[do].astype(np.int64), near, tol,
    )
    n_units = unit_peak_channels.size
    found = np.bincount(gt_units[go], weights=gt_hit, minlength=n_units)
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


def measured_noise_sd(data_uv: np.ndarray, preprocess: PreprocessConfig, sample_rate_hz: float,
                      settle_ms: float = 50.0) -> np.ndarray:
    """Per-channel noise level as SpikeInterface measures it: MAD / 0.6745 of the band-passed,
    median-referenced data (spikes included), after the filter's start-up transient."""
    from rtclass.dsp.filtering import BandpassFilter, CommonMedianReference

    y = BandpassFilter(preprocess, data_uv.shape[1], sample_rate_hz).process(data_uv)
    if preprocess.common_reference == "median":
        CommonMedianReference(data_uv.shape[1]).process(y)
    y = y[int(settle_ms * 1e-3 * sample_rate_hz) :]
    return np.median(np.abs(y), axis=0) / MAD_PER_SD
