"""Generator C's feature set: the folder format ``load_set`` reads, labels, determinism."""

import json

import numpy as np
import pytest

from rtclass.cell_types import CELL_TYPES
from rtclass.classify.train import load_set
from rtclass.features.c4 import MIN_SPIKES, c4_acg
from rtclass.features.spike_quality import labelled_acg_spikes
from rtclass.sim.generator_c.units import simulate_units, write_feature_set

UNITS_PER_TYPE = 3
DURATION_S = 150.0


@pytest.fixture(scope="module")
def feature_set(tmp_path_factory):
    return write_feature_set(tmp_path_factory.mktemp("gc") / "set", 7, UNITS_PER_TYPE, DURATION_S, None)


def test_the_set_loads_and_has_every_type(feature_set):
    loaded = load_set(feature_set, False)
    f = np.load(feature_set / "features.npz")
    n = f["cell_type"].size
    assert loaded.x.shape[0] == n == UNITS_PER_TYPE * len(CELL_TYPES)
    assert f["acg3d"].shape == (n, 10, 101) and f["acg3d"].dtype == np.float32
    assert f["waveform"].shape == (n, 90) and f["waveform"].dtype == np.float32
    assert sorted(set(f["cell_type"].tolist())) == sorted(CELL_TYPES)
    layer = dict(zip(f["cell_type"].tolist(), f["layer"].tolist()))
    assert layer == {"PkC_ss": "PCL", "PkC_cs": "PCL", "MLI": "ML", "GoC": "GCL", "MFB": "GCL"}
    assert f["n_spikes"].dtype == np.int64 and f["n_spikes"].min() >= MIN_SPIKES
    assert np.unique(f["unit_id"]).size == n
    assert np.all(np.isfinite(f["acg3d"])) and f["acg3d"].max() > 0
    np.testing.assert_allclose(f["waveform"][:, 30], -1.0)
    assert load_set(feature_set, True).x.shape[0] == n


def test_simulation_description(feature_set):
    description = json.loads((feature_set / "simulation.json").read_text())
    assert description == {
        "generator": "generator_c",
        "simulate": {
            "seed": 7,
            "duration_s": DURATION_S,
            "units_per_type": UNITS_PER_TYPE,
            "rate_scale": 1.0,
            "width_scale": 1.0,
        },
        "spike_filter_min_good_s": None,
    }


def test_deterministic_per_seed(feature_set, tmp_path):
    again = np.load(write_feature_set(tmp_path / "again", 7, UNITS_PER_TYPE, DURATION_S, None) / "features.npz")
    first = np.load(feature_set / "features.npz")
    for key in first.files:
        np.testing.assert_array_equal(first[key], again[key])
    other = np.load(write_feature_set(tmp_path / "other", 8, UNITS_PER_TYPE, DURATION_S, None) / "features.npz")
    assert not np.array_equal(first["n_spikes"], other["n_spikes"])


def test_units_with_too_few_spikes_are_skipped(tmp_path):
    short = np.load(write_feature_set(tmp_path / "short", 3, 2, 30.0, None) / "features.npz")
    assert "PkC_cs" not in set(short["cell_type"].tolist())  # ~1 Hz for 30 s: < 100 spikes
    assert short["cell_type"].size >= 6


def test_purkinje_units_come_in_pairs_from_one_cell():
    units = list(simulate_units(9, 1, 40.0))
    assert [u.cell_type for u in units] == ["PkC_ss", "PkC_cs", "MLI", "GoC", "MFB"]
    simple, complex_ = units[0].spike_samples, units[1].spike_samples
    after = np.searchsorted(simple, complex_)
    valid = after < simple.size
    gap_ms = (simple[after[valid]] - complex_[valid]) / 30.0
    assert np.median(gap_ms) > 8.0  # simple spikes pause after the same cell's complex spikes


def test_with_c4s_spike_filter_the_acgs_come_from_the_spikes_the_live_labeller_keeps(feature_set, tmp_path):
    units = list(simulate_units(7, UNITS_PER_TYPE, DURATION_S))
    for u in units:
        assert u.spike_amplitudes.shape == u.spike_samples.shape and np.all(u.spike_amplitudes > 0)
    filtered = np.load(write_feature_set(tmp_path / "filtered", 7, UNITS_PER_TYPE, DURATION_S, 0.0) / "features.npz")
    every = np.load(feature_set / "features.npz")
    assert set(filtered["unit_id"].tolist()) <= set(every["unit_id"].tolist())
    for row, uid in enumerate(filtered["unit_id"]):
        k = int(np.flatnonzero(every["unit_id"] == uid)[0])
        expected = labelled_acg_spikes(units[uid].spike_samples, units[uid].spike_amplitudes, 30000.0, 0.0)
        np.testing.assert_array_equal(filtered["acg3d"][row], c4_acg(expected))
        np.testing.assert_array_equal(filtered["waveform"][row], every["waveform"][k])


def _trough_to_peak_samples(template: np.ndarray) -> int:
    trough = int(np.argmin(template))
    return int(np.argmax(template[trough:]))


def test_a_held_out_regime_fires_slower_with_wider_spikes():
    usual = list(simulate_units(9, 2, 60.0))
    regime = list(simulate_units(9, 2, 60.0, rate_scale=0.5, width_scale=1.5))
    assert [u.cell_type for u in regime] == [u.cell_type for u in usual]
    spikes = np.array([[a.spike_samples.size, b.spike_samples.size] for a, b in zip(usual, regime)], float)
    assert np.median(spikes[:, 1] / spikes[:, 0]) < 0.75
    widths = np.array(
        [
            [_trough_to_peak_samples(a.template_uv), _trough_to_peak_samples(b.template_uv)]
            for a, b in zip(usual, regime)
        ]
    )
    assert np.median(widths[:, 1] / widths[:, 0]) > 1.2
    with pytest.raises(ValueError, match="rate_scale"):
        next(simulate_units(9, 1, 10.0, rate_scale=0.0))
