"""The classifier's input/output contract, shared by training, export, import and the live path.

Input ``features``: float32 ``[batch, 1100]`` (or 1104 with the layer): the 3D-ACG (10 rate bins x
101 log lags, row-major, as ``rtclass.features.c4`` builds it, x10), then the 90-sample
waveform (peak at 30 = -1), then optionally the layer one-hot ``[unknown, GCL, PCL, ML]`` (C4's
order). Output ``probabilities``: float32 ``[batch, n_classes]`` (ensemble mean). Class names and
the layout tag are stored as ONNX metadata.
"""

from __future__ import annotations

import numpy as np

from rtclass.cell_types import C4_CLASS_ORDER, CELL_TYPES, UNLABELED

LAYOUT = "c4-acg3d10x101-wave90"
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
ACG_SHAPE = (10, 101)
ACG_SIZE = ACG_SHAPE[0] * ACG_SHAPE[1]
WAVE_SIZE = 90
#: C4's layer one-hot order
LAYER_ORDER = ("unknown", "GCL", "PCL", "ML")
#: rtclass's own models output the cell types in wire-code order (codes 1..5)
RTCLASS_CLASSES = CELL_TYPES
C4_CLASSES = C4_CLASS_ORDER
#: C4's default confidence-ratio threshold (top probability / second)
DEFAULT_CONFIDENCE_RATIO = 2.0

META_LAYOUT = "rtclass.layout"
META_CLASSES = "rtclass.classes"
META_USE_LAYER = "rtclass.use_layer"
META_MEMBERS = "rtclass.ensemble_members"
META_CALIBRATION = "rtclass.calibration"


def input_size(use_layer: bool) -> int:
    return ACG_SIZE + WAVE_SIZE + (len(LAYER_ORDER) if use_layer else 0)


def layer_one_hot(layers) -> np.ndarray:
    """C4's one-hot of layer names (ML, PCL, GCL; anything else is 'unknown')."""
    out = np.zeros((len(layers), len(LAYER_ORDER)), np.float32)
    for i, name in enumerate(layers):
        out[i, LAYER_ORDER.index(name) if name in LAYER_ORDER else 0] = 1.0
    return out


def assemble(acg3d: np.ndarray, waveform: np.ndarray, layers=None) -> np.ndarray:
    """The network input from features: ``[n, 10, 101]``, ``[n, 90]`` (and layer names)."""
    n = acg3d.shape[0]
    parts = [acg3d.reshape(n, ACG_SIZE).astype(np.float32), waveform.reshape(n, WAVE_SIZE).astype(np.float32)]
    if layers is not None:
        parts.append(layer_one_hot(layers))
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def confidence_ratio(probabilities: np.ndarray) -> np.ndarray:
    """Top probability over the second, per row (C4's confidence)."""
    srt = np.sort(probabilities, axis=1)
    return srt[:, -1] / np.maximum(srt[:, -2], 1e-12)


def label_by_confidence(classes, probabilities: np.ndarray, threshold: float):
    """C4's labelling rule: (class names, top probability, confidence ratio) per row; a row whose
    ratio is below ``threshold`` is ``unlabeled``."""
    ratio = confidence_ratio(probabilities)
    top = probabilities.argmax(1)
    names = np.array([classes[i] if r >= threshold else UNLABELED for i, r in zip(top, ratio)])
    return names, probabilities.max(1), ratio
