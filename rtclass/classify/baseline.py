"""A physiology baseline beside the deep model: a few interpretable features, nearest centroid.

It reads the same inputs as the network (the 3D-ACG and the 90-sample waveform, as
``rtclass.features.c4`` builds them), so it runs wherever the model runs, live or offline:

* ``log10_rate_hz``: the mean firing rate, read off the ACG's plateau at lags of 300-1000 ms (the
  probability per 1 ms bin there is the rate x 1 ms);
* ``log_burst_index``: the ACG at 1-3 ms over its plateau (bursts of mossy fibres, the refractory
  silence of Purkinje cells);
* ``log_regularity``: the ACG's highest value over its plateau (a regular cell's ACG rings);
* ``log10_recovery_ms``: the first lag at which the ACG reaches half its plateau (the relative
  refractory period: long for complex spikes);
* ``trough_to_peak_ms``, ``peak_to_trough_ratio``, ``trough_halfwidth_ms``, ``pre_peak_ratio``: the
  waveform's width, the size of the positivity after the trough, the trough's width at half depth,
  the positivity before the trough (the triphasic mossy fibre spike).

Each feature is standardised by its pooled within-class spread; a unit's class probabilities are a
softmax of minus half its squared distances to the class centroids (medians of the training units,
robust to outliers). The fitted baseline is a small JSON file (no pickle), ``baseline.json`` beside
a model, with its sha256 in the model card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtclass.classify.layout import ACG_SHAPE, DEFAULT_CONFIDENCE_RATIO, WAVE_SIZE, label_by_confidence
from rtclass.errors import ModelError
from rtclass.features.c4 import ACG_SCALE, C4_SAMPLE_RATE_HZ, LOG_LAGS_MS, WAVEFORM_PEAK

BASELINE_NAME = "baseline.json"
KIND = "rtclass-physiology-nearest-centroid-v1"
FEATURE_NAMES = (
    "log10_rate_hz",
    "log_burst_index",
    "log_regularity",
    "log10_recovery_ms",
    "trough_to_peak_ms",
    "peak_to_trough_ratio",
    "trough_halfwidth_ms",
    "pre_peak_ratio",
)
#: the ACG's plateau (lags, ms) and its short-lag window for bursts
PLATEAU_LAGS_MS = (300.0, 1000.0)
BURST_LAGS_MS = (1.0, 3.0)
#: the ACG's column 0 is a zero column; the 100 log lags follow
FIRST_LAG_COLUMN = 1
#: a floor on ratios of ACG values (log of 0 is not a feature)
RATIO_FLOOR = 1e-3
#: a floor on a feature's spread (a constant feature must not divide by zero)
SPREAD_FLOOR = 1e-3
SAMPLES_PER_MS = C4_SAMPLE_RATE_HZ / 1000.0
MS_PER_S = 1000.0
#: fraction of the plateau the ACG must reach for the recovery lag
RECOVERY_FRACTION = 0.5
HALF_DEPTH = 0.5
#: a median's cumulative weight
HALF_WEIGHT = 0.5


def _lag_mask(lags_ms: tuple[float, float]) -> np.ndarray:
    return (LOG_LAGS_MS >= lags_ms[0]) & (LOG_LAGS_MS <= lags_ms[1])


_PLATEAU = _lag_mask(PLATEAU_LAGS_MS)
_BURST = _lag_mask(BURST_LAGS_MS)


def acg_features(acg3d: np.ndarray) -> np.ndarray:
    """``[n, 4]``: rate, burst index, regularity, recovery lag of ``[n, 10, 101]`` 3D-ACGs. The
    rate bins are averaged, weighting only the bins that hold spikes."""
    acg = np.asarray(acg3d, np.float64).reshape(-1, *ACG_SHAPE)[:, :, FIRST_LAG_COLUMN:] / ACG_SCALE
    filled = acg.sum(2) > 0
    weight = filled / np.maximum(filled.sum(1, keepdims=True), 1)
    mean = np.einsum("nr,nrl->nl", weight, acg)  # [n, 100] probability per 1 ms bin
    plateau = mean[:, _PLATEAU].mean(1)
    floor = np.maximum(plateau, RATIO_FLOOR / MS_PER_S)
    rate_hz = np.maximum(plateau * MS_PER_S, RATIO_FLOOR)
    burst = np.maximum(mean[:, _BURST].mean(1) / floor, RATIO_FLOOR)
    regularity = np.maximum(mean.max(1) / floor, RATIO_FLOOR)
    reached = mean >= RECOVERY_FRACTION * floor[:, None]
    first = np.where(reached.any(1), reached.argmax(1), LOG_LAGS_MS.size - 1)
    return np.column_stack([np.log10(rate_hz), np.log(burst), np.log(regularity), np.log10(LOG_LAGS_MS[first])])


def waveform_features(waveform: np.ndarray) -> np.ndarray:
    """``[n, 4]``: trough-to-peak (ms), peak/trough, trough half-width (ms), pre-trough peak/trough
    of ``[n, 90]`` C4-normalised waveforms (trough at sample 30 = -1)."""
    w = np.asarray(waveform, np.float64).reshape(-1, WAVE_SIZE)
    after = w[:, WAVEFORM_PEAK:]
    peak_at = after.argmax(1)
    trough_to_peak_ms = peak_at / SAMPLES_PER_MS
    peak_ratio = np.maximum(after.max(1), 0.0)
    pre_ratio = np.maximum(w[:, :WAVEFORM_PEAK].max(1), 0.0)
    below = w <= -HALF_DEPTH
    halfwidth = np.zeros(w.shape[0])
    for i in range(w.shape[0]):
        lo = WAVEFORM_PEAK
        while lo > 0 and below[i, lo - 1]:
            lo -= 1
        hi = WAVEFORM_PEAK
        while hi < WAVE_SIZE - 1 and below[i, hi + 1]:
            hi += 1
        halfwidth[i] = (hi - lo + 1) / SAMPLES_PER_MS
    return np.column_stack([trough_to_peak_ms, peak_ratio, halfwidth, pre_ratio])


def physiology_features(acg3d: np.ndarray, waveform: np.ndarray) -> np.ndarray:
    """``[n, len(FEATURE_NAMES)]``: the baseline's features of units."""
    return np.concatenate([acg_features(acg3d), waveform_features(waveform)], axis=1)


@dataclass(frozen=True)
class PhysiologyBaseline:
    """A fitted nearest-centroid classifier on ``physiology_features``; same interface as
    ``CellTypeModel`` (``classes``, ``use_layer``, ``predict``, ``label``)."""

    classes: tuple[str, ...]
    centroids: np.ndarray  # [n_classes, n_features]
    spread: np.ndarray  # [n_features]
    use_layer: bool = False
    path: Path | None = None
    #: the threshold ``classify.confidence_ratio = 0`` means (the model card's, see ``load_classifier``)
    confidence_ratio: float = DEFAULT_CONFIDENCE_RATIO

    def distances(self, features: np.ndarray) -> np.ndarray:
        z = (features[:, None, :] - self.centroids[None]) / self.spread
        return np.sqrt((z**2).sum(2))

    def predict(self, acg3d: np.ndarray, waveform: np.ndarray, layers=None) -> np.ndarray:
        """Probabilities ``[n, n_classes]`` in ``self.classes`` order."""
        if acg3d.shape[0] == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        logits = -0.5 * self.distances(physiology_features(acg3d, waveform)) ** 2
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        return (p / p.sum(1, keepdims=True)).astype(np.float32)

    def label(self, probabilities: np.ndarray, threshold: float = DEFAULT_CONFIDENCE_RATIO):
        """(class names, top probability, confidence ratio); below the threshold: 'unlabeled'."""
        return label_by_confidence(self.classes, probabilities, threshold)

    def to_json(self) -> dict:
        return {
            "kind": KIND,
            "features": list(FEATURE_NAMES),
            "classes": list(self.classes),
            "centroids": self.centroids.tolist(),
            "spread": self.spread.tolist(),
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The median of each column of ``values`` [n, k] with per-row ``weights`` [n] (>= 0, not all 0):
    the smallest value at which the cumulative weight reaches half the total."""
    order = np.argsort(values, axis=0)
    sorted_values = np.take_along_axis(values, order, axis=0)
    cumulative = np.cumsum(weights[order], axis=0)
    at_half = np.argmax(cumulative >= HALF_WEIGHT * cumulative[-1], axis=0)
    return sorted_values[at_half, np.arange(values.shape[1])]


def fit_baseline(
    acg3d: np.ndarray,
    waveform: np.ndarray,
    y: np.ndarray,
    classes: tuple[str, ...],
    weights: np.ndarray | None = None,
) -> PhysiologyBaseline:
    """Centroids (per-class medians) and the pooled within-class spread (median absolute
    deviation, scaled to an sd) of the training units' features; ``y`` indexes ``classes``.
    ``weights`` (one per unit, default equal) weigh the medians: units of a source that
    contributes more units than another can be given less weight each."""
    f = physiology_features(acg3d, waveform)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64)
    if w.shape != (len(y),) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ModelError(f"baseline weights must be {len(y)} finite values >= 0, one per unit; got shape {w.shape}")
    missing = [classes[k] for k in range(len(classes)) if not np.any((y == k) & (w > 0))]
    if missing:
        raise ModelError(f"the baseline needs training units of every class; none of {missing}")
    centroids = np.stack([weighted_median(f[y == k], w[y == k]) for k in range(len(classes))])
    deviation = np.abs(f - centroids[y])
    mad_to_sd = 1.4826
    spread = np.maximum(weighted_median(deviation, w) * mad_to_sd, SPREAD_FLOOR)
    return PhysiologyBaseline(tuple(classes), centroids, spread)


def load_baseline(path: str | Path) -> PhysiologyBaseline:
    """A baseline from its JSON file; a clear error if it is not one."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"baseline file {path} does not exist; `rtclass train` writes one beside its model")
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not a readable baseline ({exc})") from exc
    if not isinstance(d, dict) or d.get("kind") != KIND or d.get("features") != list(FEATURE_NAMES):
        raise ModelError(f"{path} is not an rtclass physiology baseline of kind {KIND!r} with features {FEATURE_NAMES}")
    centroids = np.asarray(d["centroids"], np.float64)
    spread = np.asarray(d["spread"], np.float64)
    classes = tuple(d["classes"])
    if centroids.shape != (len(classes), len(FEATURE_NAMES)) or spread.shape != (len(FEATURE_NAMES),):
        raise ModelError(f"{path}: centroids {centroids.shape} / spread {spread.shape} do not match its classes")
    if not np.all(np.isfinite(centroids)) or not np.all(spread > 0):
        raise ModelError(f"{path}: centroids must be finite and spreads positive")
    return PhysiologyBaseline(classes, centroids, spread, path=path)
