import json

import numpy as np
import pytest

from rtclass.classify.baseline import (
    FEATURE_NAMES,
    fit_baseline,
    load_baseline,
    physiology_features,
    waveform_features,
    weighted_median,
)
from rtclass.errors import ModelError
from rtclass.features.c4 import c4_acg, preprocess_waveform

FS_HZ = 30000
DURATION_S = 200.0


def _poisson_train(rng, rate_hz, dead_time_ms):
    isi_s = rng.exponential(1.0 / rate_hz, int(rate_hz * DURATION_S * 1.5)) + dead_time_ms / 1000.0
    t = np.cumsum(isi_s)
    return np.unique((t[t < DURATION_S] * FS_HZ).astype(np.int64))


def _biphasic(trough_to_peak_ms, peak_ratio, n=120):
    t_ms = (np.arange(n) - 40) / 30.0
    return -np.exp(-0.5 * (t_ms / 0.12) ** 2) + peak_ratio * np.exp(-0.5 * ((t_ms - trough_to_peak_ms) / 0.2) ** 2)


def test_rate_and_refractoriness_are_read_off_the_acg():
    rng = np.random.default_rng(0)
    slow = c4_acg(_poisson_train(rng, 5.0, 50.0))
    fast = c4_acg(_poisson_train(rng, 80.0, 3.0))
    f = physiology_features(np.stack([slow, fast]), np.stack([preprocess_waveform(_biphasic(0.5, 0.4))] * 2))
    rate = 10 ** f[:, FEATURE_NAMES.index("log10_rate_hz")]
    # 5 Hz with a 50 ms dead time fires at 1/(0.2 + 0.05) = 4 Hz; 80 Hz with 3 ms at 1/(0.0125 + 0.003)
    assert rate[0] == pytest.approx(4.0, rel=0.15)
    assert rate[1] == pytest.approx(64.5, rel=0.15)
    recovery_ms = 10 ** f[:, FEATURE_NAMES.index("log10_recovery_ms")]
    assert 30 < recovery_ms[0] < 70 and recovery_ms[1] < 6


def test_waveform_width_and_peak_ratio():
    w = np.stack([preprocess_waveform(_biphasic(tp, 0.5)) for tp in (0.4, 1.2)])
    f = waveform_features(w)
    assert f[:, 0] == pytest.approx([0.4, 1.2], abs=2 / 30)
    assert f[0, 1] == pytest.approx(0.5, abs=0.05)


def _two_class_set(rng, n):
    acg, wave, y = [], [], []
    for k, (rate, dead, tp) in enumerate(((5.0, 50.0, 1.1), (80.0, 3.0, 0.4))):
        for _ in range(n):
            acg.append(c4_acg(_poisson_train(rng, rate * rng.uniform(0.7, 1.4), dead)))
            wave.append(preprocess_waveform(_biphasic(tp * rng.uniform(0.85, 1.15), 0.4) + rng.normal(0, 0.02, 120)))
            y.append(k)
    return np.stack(acg), np.stack(wave), np.array(y)


def test_fit_separates_classes_and_round_trips_json(tmp_path):
    rng = np.random.default_rng(1)
    acg, wave, y = _two_class_set(rng, 6)
    model = fit_baseline(acg, wave, y, ("slow", "fast"))
    test_acg, test_wave, test_y = _two_class_set(rng, 4)
    p = model.predict(test_acg, test_wave)
    assert np.array_equal(p.argmax(1), test_y)
    assert np.allclose(p.sum(1), 1.0, atol=1e-5)
    names, _, ratio = model.label(p, 2.0)
    assert list(names) == ["slow"] * 4 + ["fast"] * 4 and np.all(ratio >= 2.0)
    loaded = load_baseline(model.save(tmp_path / "baseline.json"))
    assert np.array_equal(loaded.predict(test_acg, test_wave), p)


def test_fit_needs_every_class():
    rng = np.random.default_rng(2)
    acg, wave, y = _two_class_set(rng, 2)
    with pytest.raises(ModelError, match="every class"):
        fit_baseline(acg, wave, y, ("slow", "fast", "absent"))


def test_weighted_median_counts_each_unit_by_its_weight():
    values = np.array([[1.0, 10.0], [2.0, 30.0], [3.0, 20.0], [100.0, 40.0]])
    assert weighted_median(values, np.ones(4)).tolist() == [2.0, 20.0]
    # the outlier row carries as much weight as the other three together: the median moves to it
    assert weighted_median(values, np.array([1.0, 1.0, 1.0, 3.0 + 1e-9])).tolist() == [100.0, 40.0]
    assert weighted_median(values, np.array([0.0, 0.0, 1.0, 0.0])).tolist() == [3.0, 20.0]


def test_a_source_with_many_more_units_weighs_the_same_when_weighted():
    rng = np.random.default_rng(4)
    acg, wave, y = _two_class_set(rng, 4)
    # the same units again 8 times, as if one source had 8 times the training sets
    many = np.concatenate([np.arange(len(y))] * 8)
    pooled_acg = np.concatenate([acg, acg[many]])
    pooled_wave = np.concatenate([wave, wave[many]])
    pooled_y = np.concatenate([y, y[many]])
    weights = np.concatenate([np.full(len(y), 1.0), np.full(len(many), 1.0 / 8)])
    once = fit_baseline(acg, wave, y, ("slow", "fast"))
    weighted = fit_baseline(pooled_acg, pooled_wave, pooled_y, ("slow", "fast"), weights)
    assert np.allclose(weighted.centroids, once.centroids) and np.allclose(weighted.spread, once.spread)
    with pytest.raises(ModelError, match="one per unit"):
        fit_baseline(acg, wave, y, ("slow", "fast"), np.ones(3))
    with pytest.raises(ModelError, match="every class"):
        fit_baseline(acg, wave, y, ("slow", "fast"), (y == 0).astype(float))


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_baseline(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelError, match="not a readable baseline"):
        load_baseline(bad)
    bad.write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(ModelError, match="not an rtclass physiology baseline"):
        load_baseline(bad)


def test_no_units_give_no_rows():
    rng = np.random.default_rng(3)
    acg, wave, y = _two_class_set(rng, 2)
    model = fit_baseline(acg, wave, y, ("slow", "fast"))
    assert model.predict(np.zeros((0, 10, 101), np.float32), np.zeros((0, 90), np.float32)).shape == (0, 2)
