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


def test_files_read_back_with_the_right_scale_and_same_seed_same_bytes(tmp_path):
    from rtclass.formats.spikeglx import open_recording
    from rtclass.sim.writer import uv_per_bit, write_simulation

    cfg = SimulateConfig(duration_s=0.5, seed=4, probe="np2")
    path_a, sim = write_simulation(cfg, tmp_path / "a")
    path_b, _ = write_simulation(cfg, tmp_path / "b")
    assert path_a.read_bytes() == path_b.read_bytes()
    rec = open_recording(path_a)
    expect = sim.synthesizer().read(sim.n_samples)
    assert np.abs(rec.read_uv(0, sim.n_samples) - expect).max() <= uv_per_bit("np2") / 2 + 1e-3
    assert rec.samples[:, 384].max() == 0  # sync channel
    gt = tmp_path / "a" / "ground_truth"
    types = (gt / "cluster_cell_type.tsv").read_text().split()
    assert types[:2] == ["cluster_id", "cell_type"] and set(types[3::2]) <= set(CELL_TYPES)
    layers = (gt / "cluster_layer.tsv").read_text().split()[3::2]
    assert set(layers) <= {"ML", "PCL", "GCL", "WM"}
    assert np.load(gt / "templates.npy").shape == (len(sim.units), 90, 384)


def test_bad_simulation_settings(tmp_path):
    from rtclass.config import build_section
    from rtclass.errors import PublishError
    from rtclass.sim.writer import write_simulation

    with pytest.raises(ConfigError, match="duration_s"):
        build_section("simulate", SimulateConfig, {"duration_s": 0.0})
    with pytest.raises(ConfigError, match="probe"):
        build_section("simulate", SimulateConfig, {"probe": "np3"})
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PublishError, match="cannot create output folder"):
        write_simulation(SimulateConfig(duration_s=0.1), blocker / "sub")
