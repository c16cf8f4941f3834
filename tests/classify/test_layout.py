"""The classifier's input/output contract (``rtclass.classify.layout``): where each feature sits in
the network input, the layer one-hot, the class orders and C4's confidence ratio."""

import numpy as np
import pytest

from rtclass.cell_types import C4_CLASS_ORDER, CELL_TYPES
from rtclass.classify.layout import (
    ACG_SHAPE,
    ACG_SIZE,
    C4_CLASSES,
    DEFAULT_CONFIDENCE_RATIO,
    LAYER_ORDER,
    RTCLASS_CLASSES,
    WAVE_SIZE,
    assemble,
    confidence_ratio,
    input_size,
    layer_one_hot,
)


def test_sizes_are_c4s():
    assert ACG_SHAPE == (10, 101) and ACG_SIZE == 1010 and WAVE_SIZE == 90
    assert input_size(False) == 1100 and input_size(True) == 1104
    assert RTCLASS_CLASSES == CELL_TYPES and C4_CLASSES == C4_CLASS_ORDER
    assert DEFAULT_CONFIDENCE_RATIO == 2.0


def test_assemble_puts_the_acg_row_major_then_the_waveform_then_the_layer():
    rng = np.random.default_rng(0)
    acg = rng.normal(size=(3, 10, 101))
    wave = rng.normal(size=(3, 90))
    x = assemble(acg, wave)
    assert x.shape == (3, 1100) and x.dtype == np.float32 and x.flags.c_contiguous
    assert np.array_equal(x[1, :1010], acg[1].astype(np.float32).ravel())  # row-major: rate bin by rate bin
    assert x[2, 101] == np.float32(acg[2, 1, 0])
    assert np.array_equal(x[:, 1010:], wave.astype(np.float32))
    with_layer = assemble(acg, wave, ["ML", "GCL", "WM"])
    assert with_layer.shape == (3, 1104) and np.array_equal(with_layer[:, :1100], x)
    assert with_layer[:, 1100:].tolist() == [[0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 0, 0]]


def test_layer_one_hot_in_c4s_order_and_unknown_for_the_rest():
    assert LAYER_ORDER == ("unknown", "GCL", "PCL", "ML")
    got = layer_one_hot(["PCL", "unknown", "WM", "gcl", "ML"])
    assert got.dtype == np.float32 and got.sum(1).tolist() == [1] * 5
    assert got.argmax(1).tolist() == [2, 0, 0, 0, 3]  # white matter and misspellings: unknown


def test_confidence_ratio_is_top_over_second():
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    r = confidence_ratio(p)
    assert r[:3].tolist() == pytest.approx([2.0, 3.0, 1.0])
    assert np.isfinite(r[3]) and r[3] > 1e9  # a certain model: large, not a division by zero
