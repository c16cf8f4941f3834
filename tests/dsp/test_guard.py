"""The input guard (``rtclass.dsp.guard``): NaN and Inf samples of a float stream become 0, are
counted, and finite data passes untouched."""

import numpy as np

from rtclass.dsp.guard import NonFiniteGuard, zero_nonfinite


def test_guard_zeroes_and_counts_nonfinite_values():
    x = np.ones((10, 4), np.float32)
    x[2, 1] = np.nan
    x[5, 3] = np.inf
    x[7, 0] = -np.inf
    g = NonFiniteGuard()
    assert g.process(x) == 3
    assert np.isfinite(x).all() and x[2, 1] == x[5, 3] == x[7, 0] == 0 and g.repaired == 3
    expect = np.ones((10, 4), np.float32)
    expect[2, 1] = expect[5, 3] = expect[7, 0] = 0
    assert np.array_equal(x, expect)  # nothing else touched


def test_the_count_accumulates_over_chunks():
    g = NonFiniteGuard()
    for k in range(1, 4):
        x = np.zeros((5, 3), np.float32)
        x[:k, 0] = np.nan
        assert g.process(x) == k
    assert g.repaired == 6


def test_finite_data_is_left_bit_for_bit():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1e30, (300, 64)).astype(np.float32)  # large but finite
    x[0, 0], x[1, 1] = np.finfo(np.float32).max, -np.finfo(np.float32).tiny
    before = x.copy()
    assert zero_nonfinite(x) == 0
    assert np.array_equal(x, before)


def test_a_chunk_of_only_bad_values_and_an_empty_chunk():
    x = np.full((3, 2), np.nan, np.float32)
    assert zero_nonfinite(x) == 6 and not x.any()
    assert zero_nonfinite(np.zeros((0, 384), np.float32)) == 0
