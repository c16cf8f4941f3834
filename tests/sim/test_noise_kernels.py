"""The simulator's noise kernels (``rtclass.sim.noise_kernels``): a seeded, reproducible generator
(splitmix64), Gaussian values of the right moments, and background noise that is the same in any
chunking, with the configured level, neighbour sharing and common mode."""

import numpy as np
import pytest

from rtclass.sim.noise_kernels import BANK_BITS, fill_background, fill_gaussian, normal_table, splitmix64, white_bank

MASK = (1 << 64) - 1


def _splitmix64_reference(state):
    """Vigna's splitmix64 in plain Python (the generator's published definition)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def test_splitmix64_is_the_published_generator():
    state = np.zeros(1, np.uint64)
    assert int(splitmix64(state)) == 0xE220A8397B1DCDAF  # the reference's first output from state 0
    ref, st = [], 12345
    for _ in range(5):
        st, out = _splitmix64_reference(st)
        ref.append(out)
    state = np.array([12345], np.uint64)
    assert [int(splitmix64(state)) for _ in range(5)] == ref and int(state[0]) == st


def test_normal_table_is_symmetric_standard_normal_quantiles():
    t = normal_table()
    assert t.size == 1 << 16 and t.dtype == np.float32 and np.all(np.diff(t) > 0)
    assert np.allclose(t, -t[::-1], atol=1e-6)
    assert abs(t.mean()) < 1e-6 and t.std() == pytest.approx(1.0, abs=2e-3)


def test_gaussian_values_have_normal_moments_and_chunking_does_not_change_them():
    table = normal_table()
    whole = np.empty(1_000_000, np.float32)
    fill_gaussian(whole, np.array([7], np.uint64), table)
    assert abs(whole.mean()) < 0.005 and whole.std() == pytest.approx(1.0, abs=0.005)
    assert abs(np.mean(whole**3)) < 0.02 and np.mean(whole**4) == pytest.approx(3.0, abs=0.05)
    assert np.abs(whole).max() < 6.0  # tails reach 5.9 sd at most
    state, parts = np.array([7], np.uint64), []
    for n in (2, 400, 123_456, 1_000_000 - 123_858):  # even sizes: whole draws of two values
        part = np.empty(n, np.float32)
        fill_gaussian(part, state, table)
        parts.append(part)
    assert np.array_equal(np.concatenate(parts), whole)
    other = np.empty(1000, np.float32)
    fill_gaussian(other, np.array([8], np.uint64), table)
    assert not np.array_equal(other, whole[:1000])


def _background(n, n_ch, seed=3, sd=None, spatial=(1.0, 0.0, 0.0), cm_sd=0.0, chunks=None):
    table = normal_table()
    state = np.array([seed], np.uint64)
    bank = white_bank(state, table, n_ch)
    assert bank.size == (1 << BANK_BITS) + n_ch + 4
    sd = np.ones(n_ch, np.float32) if sd is None else sd
    lp, lfp = np.zeros(n_ch, np.float32), np.zeros(1)
    args = (state, table, bank, sd, np.array(spatial, np.float32), np.ones(n_ch, np.float32), np.float32(cm_sd))
    parts = []
    for m in chunks or [n]:
        out = np.empty((m, n_ch), np.float32)
        fill_background(out, *args, np.float32(1.0), lp, 0.0, np.float32(0.0), lfp)  # no low-pass, no LFP
        parts.append(out)
    return np.concatenate(parts)


def test_background_is_the_same_in_any_chunking():
    whole = _background(3000, 16, spatial=(0.9, 0.3, 0.1), cm_sd=0.5)
    assert np.array_equal(_background(3000, 16, spatial=(0.9, 0.3, 0.1), cm_sd=0.5, chunks=[1, 7, 992, 2000]), whole)
    assert not np.array_equal(_background(3000, 16, seed=4, spatial=(0.9, 0.3, 0.1), cm_sd=0.5), whole)


def test_background_level_neighbour_sharing_and_common_mode():
    sd = np.linspace(1.0, 4.0, 32).astype(np.float32)
    x = _background(40000, 32, sd=sd)
    np.testing.assert_allclose(x.std(0), sd, rtol=0.05)  # the per-channel level
    c = np.corrcoef(x.T)
    assert np.abs(c[np.triu_indices(32, 1)]).max() < 0.05  # independent channels
    w = np.array([1.0, 0.35, 0.2])
    shared = _background(40000, 32, spatial=w / np.sqrt(w[0] ** 2 + 2 * w[1] ** 2 + 2 * w[2] ** 2))
    c = np.corrcoef(shared.T)
    assert np.mean(np.diag(c, 1)) > 0.3 and np.abs(np.mean(np.diag(c, 8))) < 0.05  # neighbours share noise
    common = _background(40000, 32, cm_sd=1.0)
    c = np.corrcoef(common.T)
    assert np.mean(c[np.triu_indices(32, 10)]) == pytest.approx(0.5, abs=0.05)  # half the power is shared
