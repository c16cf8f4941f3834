"""``rtclass simulate`` on disk (``rtclass.sim.writer``): a SpikeGLX recording that reads back at the
probe's scale, byte for byte the same for a seed, and a ground-truth phy folder the rest of rtclass
reads (spike trains, templates, cell types, layers, SNR)."""

import numpy as np
import pytest

from rtclass.cell_types import CELL_TYPES
from rtclass.config import ConfigError, PreprocessConfig, SimulateConfig
from rtclass.evaluation.scoring import filtered_template_peaks, measured_noise_sd
from rtclass.formats.phy import open_phy_folder, open_raw
from rtclass.matching.templates import read_phy_templates
from rtclass.sim.writer import RECORDING_NAME, uv_per_bit, write_simulation


def test_uv_per_bit_is_the_probes_adc_step():
    assert uv_per_bit("np1") == pytest.approx(0.6 / 512 / 500 * 1e6)  # 2.34375 uV
    assert uv_per_bit("np2") == pytest.approx(0.5 / 8192 / 80 * 1e6)


def test_files_read_back_with_the_right_scale_and_same_seed_same_bytes(tmp_path):
    from rtclass.formats.spikeglx import open_recording

    cfg = SimulateConfig(duration_s=0.5, seed=4, probe="np2")
    path_a, sim = write_simulation(cfg, tmp_path / "a")
    path_b, _ = write_simulation(cfg, tmp_path / "b")
    assert path_a.name == f"{RECORDING_NAME}.ap.bin"
    assert path_a.read_bytes() == path_b.read_bytes()
    rec = open_recording(path_a)
    expect = sim.synthesizer().read(sim.n_samples)
    assert np.abs(rec.read_uv(0, sim.n_samples) - expect).max() <= uv_per_bit("np2") / 2 + 1e-3
    assert rec.samples[:, 384].max() == 0  # sync channel
    assert rec.meta["rtclassSimSeed"] == "4"
    gt = tmp_path / "a" / "ground_truth"
    types = (gt / "cluster_cell_type.tsv").read_text().split()
    assert types[:2] == ["cluster_id", "cell_type"] and set(types[3::2]) <= set(CELL_TYPES)
    layers = (gt / "cluster_layer.tsv").read_text().split()[3::2]
    assert set(layers) <= {"ML", "PCL", "GCL", "WM"}
    assert np.load(gt / "templates.npy").shape == (len(sim.units), 90, 384)


def test_the_ground_truth_is_a_phy_folder_rtclass_reads(recording):
    gt = recording.parent / "ground_truth"
    phy = open_phy_folder(gt)
    raw, n_ch = open_raw(phy)  # params.py names the recording beside the folder
    assert n_ch == 385 and raw.shape[0] == 3 * 30000
    ids = phy.cluster_ids()
    assert ids.size > 10 and np.all(np.diff(phy.spike_times) >= 0)
    dense, template_ids = read_phy_templates(gt, 384)
    assert dense.shape[0] == int(ids.max()) + 1 and set(template_ids.tolist()) >= set(ids.tolist())
    table = lambda name: dict(line.split("\t") for line in (gt / name).read_text().splitlines()[1:])  # noqa: E731
    snr, peak = table("cluster_snr.tsv"), table("cluster_peak_channel.tsv")
    noise = measured_noise_sd(
        raw[:30000, :384].astype(np.float32) * np.float32(uv_per_bit("np1")), PreprocessConfig(), 30000.0
    )
    want_snr, want_peak = filtered_template_peaks(dense, noise, PreprocessConfig(), 30000.0)
    assert [int(peak[str(i)]) for i in range(dense.shape[0])] == want_peak.tolist()
    got = np.array([float(snr[str(i)]) for i in range(dense.shape[0])])
    np.testing.assert_allclose(got, want_snr, rtol=0.02, atol=0.02)  # the noise measured on what was written
    assert len(table("cluster_depth_um.tsv")) == dense.shape[0]


def test_bad_simulation_settings(tmp_path):
    from rtclass.config import build_section
    from rtclass.errors import PublishError

    with pytest.raises(ConfigError, match="duration_s"):
        build_section("simulate", SimulateConfig, {"duration_s": 0.0})
    with pytest.raises(ConfigError, match="probe"):
        build_section("simulate", SimulateConfig, {"probe": "np3"})
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PublishError, match="cannot create output folder"):
        write_simulation(SimulateConfig(duration_s=0.1), blocker / "sub")
