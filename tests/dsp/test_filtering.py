import numpy as np
from scipy.signal import sosfilt

from rtclass.config import PreprocessConfig
from rtclass.dsp.filtering import BandpassFilter, CommonMedianReference
from rtclass.dsp.guard import NonFiniteGuard
from tests.conftest import random_cuts

FS = 30000.0


def _chunked(stage_factory, x, cuts):
    stage, out, a = stage_factory(), [], 0
    for b in cuts:
        out.append(stage.process(x[a:b].copy()))
        a = b
    return np.concatenate(out)


def test_bandpass_matches_scipy_reference(sim_data):
    x = sim_data[:30000, :64].copy()
    f = BandpassFilter(PreprocessConfig(), 64, FS)
    ref = sosfilt(f.sos.astype(np.float64), x.astype(np.float64), axis=0)
    y = f.process(x)
    # float32 state: error a few 1e-5 of the signal's scale
    assert np.abs(y - ref).max() < 1e-4 * np.abs(ref).max()


def test_bandpass_passes_the_band_and_stops_outside():
    t = np.arange(60000) / FS
    f = BandpassFilter(PreprocessConfig(), 3, FS)
    x = np.stack([np.sin(2 * np.pi * hz * t) for hz in (2.0, 1500.0, 14000.0)], 1).astype(np.float32)
    y = f.process(x)[30000:]
    gains = y.std(0) / x[30000:].std(0)
    assert gains[1] > 0.9 and gains[0] < 0.01 and gains[2] < 0.1


def test_bandpass_chunk_invariance(sim_data):
    x = sim_data[:20000, :96]
    cfg = PreprocessConfig()
    whole = BandpassFilter(cfg, 96, FS).process(x.copy())
    cuts = random_cuts(x.shape[0], np.random.default_rng(1))
    assert np.array_equal(_chunked(lambda: BandpassFilter(cfg, 96, FS), x, cuts), whole)


def test_median_reference_is_the_exact_median(sim_data):
    x = BandpassFilter(PreprocessConfig(), 384, FS).process(sim_data[:6000].copy())
    expect = x - np.median(x, axis=1, keepdims=True)
    got = CommonMedianReference(384).process(x.copy())
    assert np.array_equal(got, expect)
    odd = x[:, :383].copy()  # odd channel counts take the other branch
    assert np.array_equal(CommonMedianReference(383).process(odd.copy()), odd - np.median(odd, axis=1, keepdims=True))


def test_median_reference_with_outlier_channels_and_jumps():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 10, (3000, 384)).astype(np.float32)
    x[:, :20] = 5000.0  # saturated channels
    x[1500:] += 800.0  # a common-mode jump the tracking must survive
    got = CommonMedianReference(384).process(x.copy())
    assert np.array_equal(got, x - np.median(x, axis=1, keepdims=True))


def test_median_reference_chunk_invariance(sim_data):
    x = sim_data[:8000]
    whole = CommonMedianReference(384).process(x.copy())
    cuts = random_cuts(x.shape[0], np.random.default_rng(2))
    assert np.array_equal(_chunked(lambda: CommonMedianReference(384), x, cuts), whole)


def test_guard_zeroes_and_counts_nonfinite_values():
    x = np.ones((10, 4), np.float32)
    x[2, 1] = np.nan
    x[5, 3] = np.inf
    g = NonFiniteGuard()
    assert g.process(x) == 2
    assert np.isfinite(x).all() and x[2, 1] == 0 and g.repaired == 2
