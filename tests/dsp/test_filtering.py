import numpy as np
from scipy.signal import sosfilt

from rtclass.config import PreprocessConfig
from rtclass.dsp.filtering import BandpassFilter, CommonMedianReference
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


def _assert_is_a_median(x, got):
    """Every row shifted by one value with at most half the channels below it and at most half
    above (the definition of a median: for an even count any point between the two middle values
    is one), no further from numpy's midpoint than half the gap between those values."""
    k = x.shape[1] // 2
    shift = (x - got).astype(np.float64)
    assert np.allclose(shift, shift[:, :1], rtol=0, atol=1e-3)
    assert np.all((got < 0).sum(1) <= k) and np.all((got > 0).sum(1) <= k)
    middle = np.sort(x, axis=1)[:, k - 1 : k + 1]
    assert np.all(np.abs(shift[:, 0] - np.median(x, axis=1)) <= (middle[:, 1] - middle[:, 0]) / 2 + 1e-3)


def test_median_reference_subtracts_a_median(sim_data):
    x = BandpassFilter(PreprocessConfig(), 384, FS).process(sim_data[:6000].copy())
    _assert_is_a_median(x, CommonMedianReference(384).process(x.copy()))
    odd = x[:, :383].copy()  # odd channel counts: the middle value, exactly numpy's
    assert np.array_equal(CommonMedianReference(383).process(odd.copy()), odd - np.median(odd, axis=1, keepdims=True))


def test_median_reference_with_outlier_channels_ties_and_jumps():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 10, (3000, 384)).astype(np.float32)
    x[:, :20] = 5000.0  # saturated channels
    x[1500:] += 800.0  # a common-mode jump the tracking must survive
    _assert_is_a_median(x, CommonMedianReference(384).process(x.copy()))
    ties = np.round(x / 4) * 4  # coarse steps: the two middle values are often equal
    ties[:100] = 0.0  # flat rows (a gap the guard zero-filled)
    _assert_is_a_median(ties, CommonMedianReference(384).process(ties.copy()))  # tied middle values: that value
    odd = x[:, :255].copy()
    assert np.array_equal(CommonMedianReference(255).process(odd.copy()), odd - np.median(odd, axis=1, keepdims=True))


def test_median_reference_on_few_channels():
    rng = np.random.default_rng(4)
    for n_ch in (1, 2, 3, 4):
        x = rng.normal(0, 10, (500, n_ch)).astype(np.float32)
        got = CommonMedianReference(n_ch).process(x.copy())
        if n_ch % 2:
            assert np.array_equal(got, x - np.median(x, axis=1, keepdims=True))
        else:
            _assert_is_a_median(x, got)


def test_median_reference_chunk_invariance(sim_data):
    x = sim_data[:8000]
    whole = CommonMedianReference(384).process(x.copy())
    cuts = random_cuts(x.shape[0], np.random.default_rng(2))
    assert np.array_equal(_chunked(lambda: CommonMedianReference(384), x, cuts), whole)
