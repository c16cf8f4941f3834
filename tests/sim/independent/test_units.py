"""The independent generator's entry point: reproducible units, the sorting imperfections it
promises (misses late in bursts, drift chunks, contamination with refractory violations), C4
feature arrays of the right shapes, and a feature-set folder ``rtclass train`` loads."""

import json

import numpy as np
import pytest

from rtclass.cell_types import CELL_TYPES
from rtclass.classify.train import load_set
from rtclass.features.c4 import MIN_SPIKES
from rtclass.sim.independent import units as U

SEED = 3
UNITS_PER_TYPE = 2
#: long enough for the slowest complex spikes to reach C4's MIN_SPIKES
DURATION_S = 150.0


@pytest.fixture(scope="module")
def units():
    return U.generate_units(SEED, UNITS_PER_TYPE, DURATION_S)


def test_units_are_labelled_and_in_the_recording(units):
    assert len(units) == UNITS_PER_TYPE * len(CELL_TYPES)
    assert [u.unit_id for u in units] == list(range(len(units)))
    assert [u.cell_type for u in units] == [t for t in CELL_TYPES for _ in range(UNITS_PER_TYPE)]
    layers = {u.cell_type: u.layer for u in units}
    assert layers == {"PkC_ss": "PCL", "PkC_cs": "PCL", "MLI": "ML", "GoC": "GCL", "MFB": "GCL"}
    for u in units:
        s = u.spike_times_samples
        assert s.dtype == np.int64
        assert np.all(np.diff(s) > 0)
        assert s[0] >= 0 and s[-1] < DURATION_S * 30000
        assert u.template_uv.ndim == 1 and u.template_uv.size in (61, 82, 90, 121)
        assert {"train", "waveform", "template", "sorting", "realised"} <= set(u.params)


def test_generation_is_reproducible_for_a_seed(units):
    again = U.generate_units(SEED, UNITS_PER_TYPE, DURATION_S)
    for a, b in zip(units, again):
        np.testing.assert_array_equal(a.spike_times_samples, b.spike_times_samples)
        np.testing.assert_array_equal(a.template_uv, b.template_uv)
        assert a.params == b.params
    other = U.generate_units(SEED + 1, UNITS_PER_TYPE, DURATION_S)
    assert not np.array_equal(units[0].spike_times_samples, other[0].spike_times_samples)


def test_purkinje_units_come_in_pairs(units):
    by_id = {u.unit_id: u for u in units}
    for u in units:
        pair = u.params["realised"]["paired_unit_id"]
        if u.cell_type in ("PkC_ss", "PkC_cs"):
            assert {u.cell_type, by_id[pair].cell_type} == {"PkC_ss", "PkC_cs"}
            assert by_id[pair].params["realised"]["paired_unit_id"] == u.unit_id
        else:
            assert pair == -1


def test_neighbours_are_recorded_in_the_same_layer(units):
    by_id = {u.unit_id: u for u in units}
    for u in units:
        j = u.params["realised"]["neighbour_unit_id"]
        assert j != u.unit_id and by_id[j].layer == u.layer


def test_late_burst_spikes_are_smaller():
    t = np.array([0.0, 0.001, 0.002, 0.003, 1.0])
    a = U.burst_attenuation(t, 0.3, 0.005)
    assert a[0] == 1.0
    assert a[1] > a[2] > a[3]
    assert a[4] > 0.999


def test_misses_hit_bursts_more_than_isolated_spikes():
    """Spikes after short intervals (inside bursts) are missed more often."""
    rng = np.random.default_rng(0)
    isolated = np.arange(0.025, 100, 0.05)
    bursts = (np.arange(0, 100, 0.5)[:, None] + np.arange(6)[None, :] * 1.2e-3).ravel()
    t = np.sort(np.concatenate([isolated, bursts]))
    sp = {"burst_attenuation": 0.2, "attenuation_tau_ms": 4.0, "amplitude_jitter": 0.1}
    amp, chunk = U.spike_amplitudes(rng, t, 100.0, sp | {"drift_chunk_frac": 0.0, "drift_ramp_frac": 0.2})
    assert chunk == ()
    isi_before = np.diff(t, prepend=-1.0)
    missed = amp * 1.2 < 1.0
    assert missed[isi_before < 2e-3].mean() > 3 * missed[isi_before > 10e-3].mean()


def test_drift_chunk_holds_no_spikes():
    rng = np.random.default_rng(0)
    sp = {"drift_chunk_frac": 0.2, "drift_ramp_frac": 0.2}
    t = np.linspace(0, 100, 10001)
    gain, (start, stop) = U.drift_gain(t, 100.0, sp, rng)
    assert stop - start == pytest.approx(20.0)
    core = (t > start + 3) & (t < stop - 3)
    assert np.all(gain[core] == 0) and np.all(gain[(t < start) | (t > stop)] == 1)


def test_contamination_brings_refractory_violations():
    """Across a set, contaminated units have intervals shorter than their cell could fire."""
    units = U.generate_units(7, 4, 60.0)
    contaminated = [u for u in units if u.params["realised"]["n_from_neighbour"] + u.params["realised"]["n_background"]]
    assert contaminated
    violations = 0
    for u in contaminated:
        if u.cell_type == "PkC_cs":
            limit_ms = u.params["train"]["abs_refractory_ms"]
        elif u.cell_type in ("PkC_ss", "GoC"):
            limit_ms = u.params["train"]["dead_time_ms"]
        else:
            continue
        violations += int(np.sum(np.diff(u.spike_times_samples) < limit_ms * 30))
    assert violations > 0


def test_features_have_c4_shapes_and_no_nans(units):
    f = U.unit_features(units)
    n = len(units)
    assert f["acg3d"].shape == (n, 10, 101) and f["acg3d"].dtype == np.float32
    assert f["waveform"].shape == (n, 90) and f["waveform"].dtype == np.float32
    assert f["unit_id"].dtype == np.int64 and f["n_spikes"].dtype == np.int64
    assert f["cell_type"].dtype.kind == "U" and f["layer"].dtype.kind == "U"
    assert np.all(np.isfinite(f["acg3d"])) and np.all(np.isfinite(f["waveform"]))
    assert np.all(f["waveform"][:, 30] == -1)
    assert np.all(f["n_spikes"] >= MIN_SPIKES)
    assert list(f["cell_type"]) == [u.cell_type for u in units]


def test_each_spike_has_an_amplitude_and_c4s_filter_drops_units_that_lose_spikes_throughout():
    units = U.generate_units(8, 6, 120.0)
    for u in units:
        assert u.spike_amplitudes.shape == u.spike_times_samples.shape and np.all(u.spike_amplitudes > 0)
    plain = U.unit_features(units)
    filtered = U.unit_features(units, spike_filter_min_good_s=0.0)
    assert set(filtered["unit_id"]) < set(plain["unit_id"])  # some units rejected, none added
    margin = {u.unit_id: u.params["sorting"]["detection_margin"] for u in units}
    rejected = set(plain["unit_id"]) - set(filtered["unit_id"])
    judged = {u.unit_id for u in units if u.spike_times_samples.size > 300}
    # units whose spikes sit near the detection threshold (their amplitude histogram is cut) go first
    assert np.median([margin[k] for k in rejected]) < np.median([margin[k] for k in judged])
    with pytest.raises(ValueError, match="amplitudes"):
        U.unit_features([U.GeneratedUnit(99, "MLI", "ML", units[4].spike_times_samples, units[4].template_uv)], 0.0)


def test_units_below_c4s_minimum_are_skipped(units):
    short = U.GeneratedUnit(99, "MLI", "ML", units[4].spike_times_samples[: MIN_SPIKES - 1], units[4].template_uv)
    f = U.unit_features([*units[:2], short])
    assert list(f["unit_id"]) == [0, 1]
    empty = U.unit_features([short])
    assert empty["acg3d"].shape == (0, 10, 101) and empty["waveform"].shape == (0, 90)


def test_feature_set_round_trips_and_loads_for_training(tmp_path):
    folder = U.write_feature_set(tmp_path / "set", SEED, UNITS_PER_TYPE, DURATION_S)
    assert folder == tmp_path / "set"
    desc = json.loads((folder / "simulation.json").read_text())
    assert desc == {
        "generator": "independent",
        "simulate": {
            "seed": SEED,
            "duration_s": DURATION_S,
            "units_per_type": UNITS_PER_TYPE,
            "rate_scale": 1.0,
            "width_scale": 1.0,
        },
        "spike_filter_min_good_s": 0.0,  # the live labeller's default
    }
    stored = np.load(folder / "features.npz")
    direct = U.unit_features(U.generate_units(SEED, UNITS_PER_TYPE, DURATION_S), 0.0)
    assert set(stored.files) == set(direct)
    for key in direct:
        np.testing.assert_array_equal(stored[key], direct[key])
    labelled = load_set(folder, use_layer=False)
    assert labelled.x.shape == (len(direct["unit_id"]), 10 * 101 + 90)
    assert sorted(set(labelled.y.tolist())) == list(range(len(CELL_TYPES)))
    assert labelled.description["generator"] == "independent"


def test_a_held_out_regime_fires_slower_with_wider_spikes():
    usual = U.generate_units(SEED, UNITS_PER_TYPE, 60.0)
    regime = U.generate_units(SEED, UNITS_PER_TYPE, 60.0, rate_scale=0.5, width_scale=1.5)
    for a, b in zip(usual, regime):
        assert b.params["train"]["rate_hz"] == pytest.approx(0.5 * a.params["train"]["rate_hz"])
        assert b.params["waveform"]["ap_decay_ms"] == pytest.approx(1.5 * a.params["waveform"]["ap_decay_ms"])
    spikes = np.array([[a.spike_times_samples.size, b.spike_times_samples.size] for a, b in zip(usual, regime)], float)
    assert np.median(spikes[:, 1] / spikes[:, 0]) < 0.75

    def trough_to_peak(template):
        trough = int(np.argmin(template))
        return int(np.argmax(template[trough:]))

    widths = np.array([[trough_to_peak(a.template_uv), trough_to_peak(b.template_uv)] for a, b in zip(usual, regime)])
    assert np.median(widths[:, 1] / widths[:, 0]) > 1.2
    with pytest.raises(ValueError, match="rate_scale"):
        U.generate_units(SEED, 1, 10.0, width_scale=-1.0)
