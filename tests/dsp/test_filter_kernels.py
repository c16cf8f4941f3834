"""The filtering kernels (``rtclass.dsp.filter_kernels``) called directly: the second-order-section
filter against scipy's ``sosfilt``, the selection behind the median, and the median reference's
carried state."""

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from rtclass.dsp.filter_kernels import (
    DENSITY,
    kth_smallest,
    median_inplace,
    sosfilt_block,
    subtract_median_reference,
)

FS = 30000.0


def _sos(*designs):
    return np.concatenate([butter(*d, fs=FS, output="sos") for d in designs]).astype(np.float32)


def _filter(x, sos, state=None):
    n_sec, n_ch = sos.shape[0], x.shape[1]
    z0, z1 = state if state is not None else (np.zeros((n_sec, n_ch), np.float32), np.zeros((n_sec, n_ch), np.float32))
    out = np.empty_like(x)
    sosfilt_block(x, out, sos, z0, z1, np.zeros(n_ch, np.float32))
    return out, (z0, z1)


@pytest.mark.parametrize(
    "designs",
    [
        [(1, 300.0, "highpass"), (3, 6000.0, "lowpass")],  # the pipeline's default band-pass
        [(4, 300.0, "highpass"), (2, 3000.0, "lowpass")],
        [(2, [500.0, 5000.0], "bandpass")],
    ],
)
def test_sosfilt_block_is_scipys_sosfilt(designs):
    rng = np.random.default_rng(0)
    x = (rng.normal(0, 20, (6000, 16)) + 200 * np.sin(np.arange(6000) / 300)[:, None]).astype(np.float32)
    sos = _sos(*designs)
    ref = sosfilt(sos.astype(np.float64), x.astype(np.float64), axis=0)
    got, _ = _filter(x, sos)
    assert got.dtype == np.float32
    assert np.abs(got - ref).max() < 1e-4 * np.abs(ref).max()


def test_state_carried_between_calls_gives_one_pass_exactly():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 30, (3000, 7)).astype(np.float32)
    sos = _sos((1, 300.0, "highpass"), (3, 6000.0, "lowpass"))
    whole, _ = _filter(x, sos)
    state, parts = None, []
    for a, b in ((0, 1), (1, 250), (250, 251), (251, 3000)):
        out, state = _filter(x[a:b], sos, state)
        parts.append(out)
    assert np.array_equal(np.concatenate(parts), whole)


def test_filter_may_write_over_its_input():
    x = np.random.default_rng(2).normal(size=(500, 3)).astype(np.float32)
    sos = _sos((2, 300.0, "highpass"))
    want, _ = _filter(x.copy(), sos)
    z = np.zeros((1, 3), np.float32), np.zeros((1, 3), np.float32)
    sosfilt_block(x, x, sos, *z, np.zeros(3, np.float32))
    assert np.array_equal(x, want)


def test_kth_smallest_partitions_around_the_kth_value():
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 64, 383, 384):
        a = rng.integers(-5, 5, n).astype(np.float32)  # many ties
        for k in {0, n // 2, n - 1}:
            b = a.copy()
            v = kth_smallest(b, k)
            assert v == np.sort(a)[k] == b[k]
            assert np.all(b[:k] <= v) and np.all(b[k + 1 :] >= v)
            assert np.array_equal(np.sort(b), np.sort(a))  # reordered, nothing lost


def test_median_inplace_is_numpys_median():
    rng = np.random.default_rng(4)
    for n in (1, 2, 3, 4, 383, 384):
        a = rng.normal(0, 10, n).astype(np.float32)
        assert median_inplace(a.copy()) == pytest.approx(float(np.median(a)), abs=1e-5)


def _reference(x, max_passes=20, state=None):
    state = state if state is not None else np.array([0.0, 0.0, 1.0])
    subtract_median_reference(x, state, np.zeros(x.shape[1], np.float32), max_passes)
    return x, state


def test_median_reference_odd_channels_is_exact_and_even_is_a_median():
    rng = np.random.default_rng(5)
    x = (rng.normal(0, 10, (2000, 385)) + rng.normal(0, 50, (2000, 1))).astype(np.float32)
    got, _ = _reference(x.copy())
    assert np.array_equal(got, x - np.median(x, axis=1, keepdims=True))
    even = x[:, :384].copy()
    shift = even - _reference(even.copy())[0]
    middle = np.sort(even, axis=1)[:, 191:193]
    assert np.all(shift[:, 0] >= middle[:, 0] - 1e-3) and np.all(shift[:, 0] <= middle[:, 1] + 1e-3)


def test_without_counting_passes_the_full_selection_gives_numpys_midpoint():
    rng = np.random.default_rng(6)
    x = rng.normal(0, 10, (300, 384)).astype(np.float32)
    got, _ = _reference(x.copy(), max_passes=0)
    np.testing.assert_allclose(got, x - np.median(x, axis=1, keepdims=True), atol=1e-4)


def test_median_reference_state_makes_chunks_one_pass_and_stays_bounded():
    rng = np.random.default_rng(7)
    x = (rng.normal(0, 10, (1500, 96)) + np.linspace(0, 900, 1500)[:, None]).astype(np.float32)  # drifting mode
    x[700:720] = 0.0  # flat rows: every value tied
    whole, _ = _reference(x.copy())
    state, parts = None, []
    for a, b in ((0, 1), (1, 700), (700, 710), (710, 1500)):
        out, state = _reference(x[a:b].copy(), state=state)
        parts.append(out)
    assert np.array_equal(np.concatenate(parts), whole)
    assert 1e-3 <= state[DENSITY] <= 1e6
