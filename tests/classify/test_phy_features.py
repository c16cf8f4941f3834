import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rtclass.classify.phy_features import extract_features
from rtclass.errors import InputError
from rtclass.features.c4 import c4_acg

REFERENCE = Path(__file__).parents[1] / "features" / "data" / "npyx_spike_filter.npz"


def test_features_of_a_phy_folder_with_raw_data(recording, tmp_path):
    folder = recording.parent / "ground_truth"
    feats = extract_features(folder, spike_filter=False)  # 6 s: C4's filter would keep nothing
    assert feats.waveform_source == "raw"
    assert feats.acg3d.shape == (feats.cluster_id.size, 10, 101) and feats.waveform.shape == (feats.cluster_id.size, 90)
    assert np.allclose(feats.waveform[:, 30], -1.0)
    times, clusters = np.load(folder / "spike_times.npy"), np.load(folder / "spike_clusters.npy")
    c = int(feats.cluster_id[0])
    assert np.array_equal(feats.acg3d[0], c4_acg(np.sort(times[clusters == c])))
    few = [c for c, why in feats.skipped.items() if "fewer than" in why]
    assert all((clusters == c).sum() < 100 for c in few)


def test_without_raw_data_waveforms_come_from_templates(recording, tmp_path):
    folder = tmp_path / "ks"
    shutil.copytree(recording.parent / "ground_truth", folder)
    (folder / "params.py").write_text("dat_path = 'nowhere.bin'\nn_channels_dat = 385\ndtype = 'int16'\n")
    feats = extract_features(folder, spike_filter=False)
    assert feats.waveform_source == "templates" and feats.cluster_id.size > 0


def test_c4_s_spike_filter_decides_which_spikes_build_the_3d_acg(recording, tmp_path):
    """The units of npyx's own reference verdicts (tests/features/data), as a Kilosort folder."""
    ref = np.load(REFERENCE)
    folder = tmp_path / "ks"
    shutil.copytree(recording.parent / "ground_truth", folder)
    (folder / "params.py").write_text("dat_path = 'nowhere.bin'\nn_channels_dat = 385\nsample_rate = 30000.0\n")
    clusters = np.repeat(np.arange(ref["counts"].size), ref["counts"])
    np.save(folder / "spike_times.npy", ref["samples"].astype(np.uint64))
    np.save(folder / "spike_clusters.npy", clusters.astype(np.int32))
    np.save(folder / "spike_templates.npy", clusters.astype(np.int32))  # cluster k uses template k
    np.save(folder / "amplitudes.npy", ref["amplitudes"].astype(np.float32))
    feats = extract_features(folder)
    kept = sorted({int(c) for c in clusters[ref["good"]]})
    assert feats.cluster_id.tolist() == kept and 0 < len(kept) < ref["counts"].size
    assert all("spike filter" in feats.skipped[c] for c in set(range(ref["counts"].size)) - set(kept))
    for k, c in enumerate(kept):
        mine = clusters == c
        np.testing.assert_array_equal(feats.acg3d[k], c4_acg(ref["samples"][mine & ref["good"]].astype(np.int64)))
    assert sum(feats.spikes_left_out.values()) == sum((~ref["good"][clusters == c]).sum() for c in kept)
    short = extract_features(recording.parent / "ground_truth")  # 6 s: no cluster has 180 s of good sections
    assert short.cluster_id.size == 0 and all("spike" in why for why in short.skipped.values())
    (folder / "amplitudes.npy").unlink()  # missed spikes cannot be judged: spikes are not filtered
    assert extract_features(folder).cluster_id.size == ref["counts"].size


def test_inconsistent_folders_are_reported(recording, tmp_path):
    folder = tmp_path / "ks"
    shutil.copytree(recording.parent / "ground_truth", folder)
    np.save(folder / "spike_clusters.npy", np.load(folder / "spike_clusters.npy")[:-3])
    with pytest.raises(InputError, match="do not belong together"):
        extract_features(folder)
    folder2 = tmp_path / "ks2"
    shutil.copytree(recording.parent / "ground_truth", folder2)
    (folder2 / "params.py").write_text(f"dat_path = {str(recording)!r}\nn_channels_dat = 384\ndtype = 'int16'\n")
    with pytest.raises(InputError, match="n_channels_dat in params.py does not fit"):
        extract_features(folder2)


def test_classify_command_writes_the_feature_file(recording, tmp_path):
    out = tmp_path / "f.npz"
    command = [sys.executable, "-m", "rtclass.cli", "classify", str(recording.parent / "ground_truth")]
    # 6 s: C4's spike filter keeps no cluster; the command says so and what to do, and writes nothing
    res = subprocess.run([*command, "--save-features", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "--spike-filter off" in res.stderr and not out.exists()
    res = subprocess.run(
        [*command, "--spike-filter", "off", "--save-features", str(out)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    f = np.load(out)
    assert set(f.files) == {"cluster_id", "acg3d", "waveform"} and f["acg3d"].dtype == np.float32
