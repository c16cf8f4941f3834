"""The simulated recording (``rtclass.sim.recording``): the population in its layers, the spike
trains' statistics per type, traces identical for a seed whatever the chunking, noise, drift."""

from dataclasses import replace

import numpy as np
import pytest

from rtclass.cell_types import CELL_TYPES
from rtclass.config import SimulateConfig
from rtclass.errors import ConfigError
from rtclass.sim.celltypes import SPECS
from rtclass.sim.recording import Simulation
from tests.conftest import random_cuts

#: measured statistics each type's trains must show (C4 mouse ground truth, P5-P95 widened)
EXPECTED = {
    "PkC_ss": {"rate": (40, 200), "cv2": (0.15, 0.5)},
    "PkC_cs": {"rate": (0.3, 3.0), "cv2": (0.6, 1.2)},
    "MLI": {"rate": (2, 80), "cv2": (0.45, 0.95)},
    "GoC": {"rate": (3, 50), "cv2": (0.35, 0.8)},
    "MFB": {"rate": (3, 60), "cv2": (0.7, 1.3)},
}


@pytest.fixture(scope="module")
def big():
    return Simulation(SimulateConfig(duration_s=60.0, seed=3, units_per_type=6))


def _cv2(isi):
    return np.mean(2 * np.abs(np.diff(isi)) / (isi[1:] + isi[:-1]))


def test_per_type_statistics_fall_in_the_published_ranges(big):
    trains = big.unit_trains()
    seen = set()
    for unit, t in zip(big.units, trains):
        exp = EXPECTED[unit.cell_type]
        rate = t.size / big.cfg.duration_s
        isi = np.diff(t) / big.fs
        assert exp["rate"][0] <= rate <= exp["rate"][1], (unit.cell_type, rate)
        assert exp["cv2"][0] <= _cv2(isi) <= exp["cv2"][1], (unit.cell_type, _cv2(isi))
        dead_ms = SPECS[unit.cell_type].firing.dead_time_ms[0]
        assert isi.min() * 1000 >= dead_ms - 1000 / big.fs  # refractory violations: none
        seen.add(unit.cell_type)
    assert seen == set(CELL_TYPES)


def test_simple_spikes_pause_after_each_complex_spike(big):
    trains = big.unit_trains()
    for unit in big.units:
        if unit.cell_type != "PkC_ss":
            continue
        ss, cs = trains[unit.id], trains[unit.partner]
        idx = np.searchsorted(cs, ss, side="right") - 1
        since_ms = (ss[idx >= 0] - cs[idx[idx >= 0]]) / big.fs * 1000
        assert since_ms.min() >= 8.0  # CS_PAUSE_MS lower bound


def test_units_sit_in_their_layers(big):
    for unit in big.units:
        y = unit.xyz_um[1]
        layer = [s.name for s in big.layers if s.bottom_um <= y <= s.top_um]
        assert unit.layer in layer


def test_same_seed_same_samples_any_chunking():
    cfg = SimulateConfig(duration_s=1.0, seed=5)
    a = Simulation(cfg).synthesizer().read(30000)
    syn = Simulation(cfg).synthesizer()
    b = np.concatenate([syn.read(n) for n in np.diff([0, *random_cuts(30000, np.random.default_rng(0))])])
    assert np.array_equal(a, b)
    c = Simulation(replace(cfg, seed=6)).synthesizer().read(30000)
    assert not np.array_equal(a, c)


def test_noise_level_and_common_mode(sim, sim_data):
    from rtclass.config import PreprocessConfig
    from rtclass.evaluation.scoring import measured_noise_sd

    quiet = SimulateConfig(duration_s=1.0, seed=1, amplitude_scale=0.01)
    x = Simulation(quiet).synthesizer().read(30000)
    noise = measured_noise_sd(x, PreprocessConfig(), 30000.0)
    assert 6.0 < np.median(noise) < 10.0  # ~8 uV in 300-6000 Hz
    raw_corr = np.corrcoef(x[:, 100], x[:, 300])[0, 1]
    assert raw_corr > 0.3  # far channels share the common mode (and the slow LFP)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"layers": "ML:200,XL:30"}, "unknown layer 'XL'"),
        ({"layers": "ML:3000,GCL:2000"}, "span"),
        ({"layers": "ML:abc"}, "thickness"),
        ({"layers": "GCL:300", "units_per_type": 2}, "no PCL"),
    ],
)
def test_bad_layer_stacks(change, words):
    with pytest.raises(ConfigError, match=words):
        Simulation(replace(SimulateConfig(duration_s=1.0), **change))


def test_drift_moves_units_along_the_probe():
    cfg = SimulateConfig(duration_s=1.0, seed=2, drift_um=40.0, drift_period_s=4.0)
    sim = Simulation(cfg)
    unit = max(sim.units, key=lambda u: u.amplitude_uv)
    syn = sim.synthesizer()
    from rtclass.sim.recording import add_spikes

    # one spike of the unit at each drift extreme: t = period / 4 (+40 um) and 3 period / 4 (-40 um)
    out_up = np.zeros((200, sim.n_channels), np.float32)
    out_down = np.zeros((200, sim.n_channels), np.float32)
    for out, t in ((out_up, int(1.0 * sim.fs)), (out_down, int(3.0 * sim.fs))):
        add_spikes(
            out,
            t - 50,
            np.array([t], np.int64),
            np.array([unit.id], np.int32),
            np.ones(1, np.float32),
            syn._trough,
            syn._length,
            syn._course,
            syn._smooth,
            syn._channels,
            syn._contacts,
            syn._xyz,
            syn._unit_scale,
            syn._drift,
            syn._drift_period,
        )
    y = sim.probe.positions_um[:, 1]
    peak_up = y[np.argmin(out_up.min(0))]
    peak_down = y[np.argmin(out_down.min(0))]
    assert peak_up - peak_down >= 60  # 80 um apart, to the contact grid's resolution


def test_the_population_and_trains_are_the_seeds():
    cfg = SimulateConfig(duration_s=2.0, seed=21, units_per_type=2)
    a, b = Simulation(cfg), Simulation(cfg)
    assert [u.cell_type for u in a.units] == [u.cell_type for u in b.units]
    assert np.array_equal(a.spike_times, b.spike_times) and np.array_equal(a.spike_units, b.spike_units)
    assert np.array_equal(a.dense_templates(), b.dense_templates())
    c = Simulation(replace(cfg, seed=22))
    assert not np.array_equal(a.spike_times, c.spike_times)


def test_units_per_type_and_purkinje_pairs():
    sim = Simulation(SimulateConfig(duration_s=2.0, seed=21, units_per_type=3))
    types = sim.cell_types()
    assert all(types.count(t) == 3 for t in CELL_TYPES) and len(types) == 15
    for unit in sim.units:
        if unit.cell_type in ("PkC_ss", "PkC_cs"):
            other = sim.units[unit.partner]
            assert other.partner == unit.id and {unit.cell_type, other.cell_type} == {"PkC_ss", "PkC_cs"}
            assert np.array_equal(other.xyz_um, unit.xyz_um)  # one cell, two kinds of spike
        else:
            assert unit.partner == -1


def test_ground_truth_templates_trains_and_snr_agree():
    from rtclass.sim.recording import TEMPLATE_SAMPLES, TEMPLATE_TROUGH

    sim = Simulation(SimulateConfig(duration_s=2.0, seed=21, units_per_type=1))
    dense = sim.dense_templates()
    assert dense.shape == (len(sim.units), TEMPLATE_SAMPLES, sim.n_channels)
    for u in sim.units:
        trough = dense[u.id][TEMPLATE_TROUGH]  # the amplitude is the trough depth on the peak channel
        assert trough[u.peak_channel] == pytest.approx(-u.amplitude_uv, rel=1e-5)
        assert int(trough.argmin()) == u.peak_channel
    trains = sim.unit_trains()
    assert sum(t.size for t in trains) == sim.spike_times.size
    assert all(np.all(np.diff(t) > 0) for t in trains)
    assert np.all(np.diff(sim.spike_times) >= 0) and sim.spike_times.max() < sim.n_samples
    assert np.allclose(sim.raw_snr(), [u.amplitude_uv / sim.noise_sd_uv[u.peak_channel] for u in sim.units])
    assert np.all((sim.spike_scales >= 0.5) & (sim.spike_scales <= 1.5))


def test_blocks_cover_the_recording_once():
    sim = Simulation(SimulateConfig(duration_s=0.1, seed=1))
    blocks = list(sim.synthesizer().blocks(1000))
    assert [b.shape[0] for b in blocks] == [1000, 1000, 1000]
    assert np.array_equal(np.concatenate(blocks), sim.synthesizer().read(3000))


def test_the_layer_stack_as_classify_layers_puts_units_in_their_layer():
    from rtclass.classify.layers import layer_at, parse_layer_ranges

    sim = Simulation(SimulateConfig(duration_s=1.0, seed=2))
    ranges = parse_layer_ranges(sim.layer_ranges())
    assert {r.name for r in ranges} == {"ML", "PCL", "GCL"}
    y = sim.probe.positions_um[:, 1]
    placed = [layer_at(ranges, float(y[u.peak_channel])) == u.layer for u in sim.units if u.layer != "WM"]
    assert np.mean(placed) > 0.8  # the peak contact is in the unit's layer but near a boundary
