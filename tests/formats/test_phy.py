"""Kilosort/phy folders (``rtclass.formats.phy``): spike trains per cluster, ``params.py`` read
without executing it, the raw binary it names, C4-style mean waveforms, cluster tables."""

import logging

import numpy as np
import pytest

from rtclass.errors import InputError
from rtclass.formats.phy import WAVE_HALF, open_phy_folder, open_raw, raw_mean_waveform, read_params, write_tsv

N_CH = 8


def _folder(tmp_path, times, clusters, params=None, name="ks"):
    folder = tmp_path / name
    folder.mkdir()
    np.save(folder / "spike_times.npy", np.asarray(times))
    if clusters is not None:
        np.save(folder / "spike_clusters.npy", np.asarray(clusters))
    if params is not None:
        (folder / "params.py").write_text(params)
    return folder


def test_spike_trains_per_cluster_in_either_layout(tmp_path):
    times = np.array([50, 10, 30, 20, 40], np.uint64)
    clusters = np.array([2, 7, 2, 7, 7], np.int32)
    flat = open_phy_folder(_folder(tmp_path, times, clusters, name="ks4"))
    column = open_phy_folder(_folder(tmp_path, times[:, None], clusters[:, None], name="ks2"))  # KS2: a column
    for phy in (flat, column):
        assert phy.spike_times.dtype == np.int64 and phy.spike_times.shape == (5,)
        assert phy.cluster_ids().tolist() == [2, 7]
        assert phy.train(7).tolist() == [10, 20, 40]  # sorted
        assert phy.train(2).tolist() == [30, 50]
        assert phy.train(99).size == 0
        assert phy.params == {}


def test_without_spike_clusters_the_templates_are_the_clusters(tmp_path):
    folder = _folder(tmp_path, [1, 2, 3], None)
    np.save(folder / "spike_templates.npy", np.array([4, 4, 0]))
    assert open_phy_folder(folder).cluster_ids().tolist() == [0, 4]
    np.save(folder / "spike_clusters.npy", np.array([9, 9, 9]))  # phy's curated ids win
    assert open_phy_folder(folder).cluster_ids().tolist() == [9]


def test_folders_that_are_not_a_sort_are_refused(tmp_path):
    with pytest.raises(InputError, match="is not a folder"):
        open_phy_folder(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="spike_times.npy is missing"):
        open_phy_folder(empty)
    with pytest.raises(InputError, match="neither spike_clusters.npy nor spike_templates.npy"):
        open_phy_folder(_folder(tmp_path, [1, 2], None, name="noids"))
    with pytest.raises(InputError, match="has 3 entries but spike_times.npy has 2"):
        open_phy_folder(_folder(tmp_path, [1, 2], [0, 0, 1], name="mismatch"))


def test_params_are_read_as_literals_and_never_executed(tmp_path, caplog):
    path = tmp_path / "params.py"
    marker = tmp_path / "executed"
    path.write_text(
        "dat_path = ['raw.bin']\nn_channels_dat = 385\ndtype = 'int16'\noffset = 0\nsample_rate = 30000.0\n"
        f"hp_filtered = False\nimport os\nevil = os.system('touch {marker}')\nx, y = 1, 2\n"
    )
    with caplog.at_level(logging.WARNING, logger="rtclass.formats.phy"):
        params = read_params(path)
    assert params == {
        "dat_path": ["raw.bin"],
        "n_channels_dat": 385,
        "dtype": "int16",
        "offset": 0,
        "sample_rate": 30000.0,
        "hp_filtered": False,
    }
    assert not marker.exists()
    assert "evil" in caplog.text
    broken = tmp_path / "broken.py"
    broken.write_text("dat_path = [")
    with pytest.raises(InputError, match="cannot read"):
        read_params(broken)


def _raw_folder(tmp_path, raw: np.ndarray, params_extra="", dat="'raw.bin'"):
    folder = _folder(
        tmp_path,
        [100],
        [0],
        f"dat_path = {dat}\nn_channels_dat = {raw.shape[1]}\ndtype = '{raw.dtype.name}'\n{params_extra}",
    )
    raw.tofile(folder / "raw.bin")
    return folder


def test_the_raw_binary_named_in_params_is_memory_mapped(tmp_path):
    raw = np.arange(200 * N_CH, dtype=np.int16).reshape(200, N_CH)
    got, n_ch = open_raw(open_phy_folder(_raw_folder(tmp_path, raw, dat="['raw.bin']")))  # relative, in a list
    assert n_ch == N_CH and isinstance(got, np.memmap) and np.array_equal(got, raw)
    # an offset skips a header; the dtype comes from params.py
    floats = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "data.bin").write_bytes(b"\0" * 16 + floats.tobytes())
    np.save(folder / "spike_times.npy", np.array([1]))
    np.save(folder / "spike_clusters.npy", np.array([0]))
    (folder / "params.py").write_text(
        f"dat_path = {str(folder / 'data.bin')!r}\nn_channels_dat = 3\ndtype = 'float32'\noffset = 16\n"
    )
    got, _ = open_raw(open_phy_folder(folder))
    assert got.dtype == np.float32 and np.array_equal(got, floats)


def test_no_raw_binary_is_none_with_a_reason(tmp_path, caplog):
    assert open_raw(open_phy_folder(_folder(tmp_path, [1], [0], "n_channels_dat = 4\n", name="a"))) is None
    assert open_raw(open_phy_folder(_folder(tmp_path, [1], [0], "dat_path = []\n", name="b"))) is None
    with caplog.at_level(logging.WARNING, logger="rtclass.formats.phy"):
        missing = _folder(tmp_path, [1], [0], "dat_path = 'gone.bin'\nn_channels_dat = 4\n", name="c")
        assert open_raw(open_phy_folder(missing)) is None
    assert "gone.bin" in caplog.text and "does not exist" in caplog.text


def test_a_raw_size_that_does_not_fit_the_channel_count_is_refused(tmp_path):
    folder = _raw_folder(tmp_path, np.zeros((101, 5), np.int16))  # 1010 bytes: not whole 4-channel frames
    for n_ch in (4, 0):
        (folder / "params.py").write_text(f"dat_path = 'raw.bin'\nn_channels_dat = {n_ch}\ndtype = 'int16'\n")
        with pytest.raises(InputError, match="n_channels_dat in params.py does not fit"):
            open_raw(open_phy_folder(folder))


def test_mean_waveform_has_the_units_shape_peak_at_the_centre(tmp_path):
    rng = np.random.default_rng(1)
    n = 60000
    raw = rng.normal(0, 2, (n, N_CH)).astype(np.float32) + 100.0  # an offset the median removal takes away
    shape = -60 * np.exp(-0.5 * ((np.arange(2 * WAVE_HALF) - WAVE_HALF) / 3.0) ** 2)
    times = np.arange(500, n - 500, 300)
    for t in times:
        raw[t - WAVE_HALF : t + WAVE_HALF, 5] += shape
        raw[t - WAVE_HALF : t + WAVE_HALF, 4] += 0.3 * shape  # a neighbour sees less
    trace = raw_mean_waveform(raw, times, peak_channel=3, n_signal_channels=N_CH)
    assert trace.shape == (2 * WAVE_HALF,)
    assert int(np.argmax(np.abs(trace))) == WAVE_HALF  # the largest value at sample 60
    want = shape - np.median(shape)
    assert np.abs(trace - want).max() < 2.0  # channel 5 found (not the template's channel 3), noise averaged
    # spikes too close to either end of the recording are not used; too few spikes: no waveform
    assert raw_mean_waveform(raw, np.array([10, 20, n - 5]), 3, N_CH) is None
    assert raw_mean_waveform(raw, times[:9], 3, N_CH) is None


def test_cluster_tables_are_phys_tsv(tmp_path):
    path = tmp_path / "cluster_group.tsv"
    write_tsv(path, "group", np.array([0, 3, 12]), ["good", "mua", "noise"])
    assert path.read_text() == "cluster_id\tgroup\n0\tgood\n3\tmua\n12\tnoise\n"
