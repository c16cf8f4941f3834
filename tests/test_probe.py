import numpy as np
import pytest

from rtclass.errors import InputError
from rtclass.probe import from_phy_folder, from_spikeglx_meta, load_probe, neuropixels


def test_np1_and_np2_geometry():
    p1 = neuropixels("np1")
    assert p1.n_channels == 384
    ys = np.unique(p1.positions_um[:, 1])
    assert np.allclose(np.diff(ys), 20.0)  # NP1.0: 20 um rows, 2 columns
    p2 = neuropixels("np2")
    assert np.allclose(np.diff(np.unique(p2.positions_um[:, 1])), 15.0)  # NP2.0: 15 um rows


def test_neighbours_are_symmetric_and_within_radius():
    p = neuropixels("np1")
    nb = p.neighbours(50.0)
    d = p.distances_um()
    assert (nb[:, 0] == np.arange(p.n_channels)).all()  # each channel first in its own list
    pairs = {(c, int(n)) for c in range(p.n_channels) for n in nb[c] if n >= 0}
    assert all((b, a) in pairs for a, b in pairs)
    assert all(d[a, b] <= 50.0 for a, b in pairs)


def test_geometry_from_meta_and_phy(recording):
    p = from_spikeglx_meta(recording.with_suffix(".meta"))
    assert np.allclose(p.positions_um, neuropixels("np1").positions_um)
    phy = from_phy_folder(recording.parent / "ground_truth")
    assert np.allclose(phy.positions_um, p.positions_um)


def test_bad_geometry_inputs(tmp_path, recording):
    with pytest.raises(InputError, match="unknown probe type"):
        neuropixels("np3")
    with pytest.raises(InputError, match="channel_positions.npy"):
        from_phy_folder(tmp_path)
    with pytest.raises(InputError, match="960 electrodes"):
        load_probe("np1", 10_000)
    with pytest.raises(InputError, match="has 384 channels but the stream has 100"):
        load_probe(str(recording.parent / "ground_truth"), 100)
