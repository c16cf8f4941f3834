"""Training sets for the classifier (``rtclass.sim.training``): C4 features of simulated units from
their ground-truth trains and waveforms (no traces rendered), what augmentation does to the trains,
seeded; and the set on disk is one ``rtclass train`` reads."""

import json

import numpy as np
import pytest

from rtclass.classify.train import load_set
from rtclass.config import SimulateConfig
from rtclass.features.c4 import MIN_SPIKES, c4_acg, preprocess_waveform
from rtclass.features.spike_quality import MIN_UNIT_SPIKES
from rtclass.sim.recording import Simulation
from rtclass.sim.training import MISSED_FRACTION, _raw_trace, unit_features, write_training_set

CFG = SimulateConfig(duration_s=20.0, seed=3, units_per_type=2)


@pytest.fixture(scope="module")
def sim():
    return Simulation(CFG)


def test_one_row_per_unit_with_enough_spikes(sim):
    f = unit_features(sim, augment=False, seed=1)
    trains = sim.unit_trains()
    kept = [u for u in sim.units if trains[u.id].size >= MIN_SPIKES]
    assert 0 < len(kept) < len(sim.units)  # 20 s: too few complex spikes
    assert f["unit_id"].tolist() == [u.id for u in kept]
    assert f["cell_type"].tolist() == [u.cell_type for u in kept] and f["layer"].tolist() == [u.layer for u in kept]
    assert f["acg3d"].shape == (len(kept), 10, 101) and f["acg3d"].dtype == np.float32
    assert f["waveform"].shape == (len(kept), 90) and np.allclose(f["waveform"][:, 30], -1.0)
    for row, u in enumerate(kept):  # without augmentation: the unit's own train, C4's ACG of it
        assert f["n_spikes"][row] == trains[u.id].size
        assert np.array_equal(f["acg3d"][row], c4_acg(trains[u.id]))


def test_the_waveform_is_the_units_trough_on_its_peak_channel_plus_averaging_noise(sim):
    f = unit_features(sim, augment=False, seed=1)
    u = sim.units[int(f["unit_id"][0])]
    trace = _raw_trace(u)
    assert trace.size == 120 and trace[60] == pytest.approx(-u.amplitude_uv, rel=1e-5)
    clean = preprocess_waveform(trace)
    assert np.corrcoef(clean, f["waveform"][0])[0, 1] > 0.95


def test_augmentation_removes_and_adds_spikes_and_is_seeded(sim):
    plain = unit_features(sim, augment=False, seed=1)
    aug = unit_features(sim, augment=True, seed=1)
    again = unit_features(sim, augment=True, seed=1)
    other = unit_features(sim, augment=True, seed=2)
    for key in aug:
        assert np.array_equal(aug[key], again[key]), key
    assert not np.array_equal(aug["acg3d"], other["acg3d"])
    common = np.isin(plain["unit_id"], aug["unit_id"])
    ratio = aug["n_spikes"] / plain["n_spikes"][common]
    assert np.all(ratio >= 1 - MISSED_FRACTION[1] - 0.05) and np.all(ratio <= 1.06)
    assert not np.array_equal(aug["n_spikes"], plain["n_spikes"][common])


def test_with_c4s_spike_filter_the_acg_is_built_from_the_spikes_the_live_labeller_keeps(sim):
    plain = unit_features(sim, augment=True, seed=1)
    filtered = unit_features(sim, augment=True, seed=1, spike_filter_min_good_s=0.0)
    assert set(filtered["unit_id"]) <= set(plain["unit_id"])
    for row, uid in enumerate(filtered["unit_id"]):
        k = int(np.flatnonzero(plain["unit_id"] == uid)[0])
        assert filtered["n_spikes"][row] == plain["n_spikes"][k]  # the same unit, its waveform unchanged
        assert np.array_equal(filtered["waveform"][row], plain["waveform"][k])
        if plain["n_spikes"][k] <= MIN_UNIT_SPIKES:  # too few to judge: every spike, as live
            assert np.array_equal(filtered["acg3d"][row], plain["acg3d"][k])
    amplitudes = sim.unit_amplitudes_uv()
    trains = sim.unit_trains()
    for u in sim.units:
        assert amplitudes[u.id].shape == trains[u.id].shape
        if trains[u.id].size:
            assert np.median(amplitudes[u.id]) == pytest.approx(u.amplitude_uv, rel=0.05)


def test_the_set_on_disk_is_what_rtclass_train_reads(tmp_path):
    path = write_training_set(CFG, tmp_path / "set")
    assert path == tmp_path / "set" / "features.npz"
    desc = json.loads((tmp_path / "set" / "simulation.json").read_text())
    assert desc["augmented"] is True and desc["simulate"]["seed"] == 3 and desc["simulate"]["units_per_type"] == 2
    assert desc["spike_filter_min_good_s"] == 0.0  # the live labeller's default
    s = load_set(tmp_path / "set", use_layer=True)
    f = np.load(path)
    assert s.x.shape == (f["acg3d"].shape[0], 1104) and s.y.size == f["cell_type"].size


def test_templates_are_cut_as_other_sorters_store_them():
    from rtclass.sim.training import TEMPLATE_LENGTHS, WAVE_HALF, cut_template

    rng = np.random.default_rng(4)
    trace = np.zeros(2 * WAVE_HALF)
    trace[WAVE_HALF] = -1.0
    lengths = set()
    for _ in range(60):
        cut = cut_template(trace, rng)
        lengths.add(cut.size)
        trough = int(np.argmin(cut))
        assert 0.29 * (cut.size - 1) <= trough <= 0.56 * (cut.size - 1)
        assert np.array_equal(preprocess_waveform(cut), preprocess_waveform(trace))  # C4 re-aligns it
    assert lengths == set(TEMPLATE_LENGTHS)
