import shutil
import subprocess
import sys

import numpy as np
import pytest

from rtclass.classify.phy_features import extract_features
from rtclass.errors import InputError
from rtclass.features.c4 import c4_acg


def test_features_of_a_phy_folder_with_raw_data(recording, tmp_path):
    folder = recording.parent / "ground_truth"
    feats = extract_features(folder)
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
    feats = extract_features(folder)
    assert feats.waveform_source == "templates" and feats.cluster_id.size > 0


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
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "rtclass.cli",
            "classify",
            str(recording.parent / "ground_truth"),
            "--save-features",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    f = np.load(out)
    assert set(f.files) == {"cluster_id", "acg3d", "waveform"} and f["acg3d"].dtype == np.float32
