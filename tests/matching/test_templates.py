"""Unit templates (``rtclass.matching.templates``): the bank the matcher reads (ids, normalised
shapes, typical amplitudes, candidate lists, merges) and templates read from a Kilosort/phy folder."""

import shutil

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from rtclass.errors import InputError
from rtclass.matching.templates import (
    INITIAL_CAPACITY,
    TemplateBank,
    bandpassed_templates,
    bank_from_dense,
    read_phy_spike_counts,
    read_phy_templates,
    same_shape_and_size,
    shifted_overlaps,
)
from rtclass.probe import Probe

WIDTH, PRE = 20, 8
N_CH = 12


def _probe():
    """One column of contacts 20 um apart."""
    return Probe("line", np.stack([np.zeros(N_CH), 20.0 * np.arange(N_CH)], 1))


def _bank(long_post=0):
    return TemplateBank(_probe(), WIDTH, PRE, match_radius_um=30.0, candidate_radius_um=50.0, long_post=long_post)


def _wave(bank, peak, depth=100.0, width=2.0):
    """A trough of ``depth`` uV at PRE on ``peak``, weaker on the channels around it."""
    chans = bank.local_channels(peak)
    t = np.arange(WIDTH)
    shape = -np.exp(-0.5 * ((t - PRE) / width) ** 2) + 0.3 * np.exp(-0.5 * ((t - PRE - 5) / 3.0) ** 2)
    shape /= -shape[PRE]
    falloff = np.exp(-np.abs(bank.probe.positions_um[chans, 1] - bank.probe.positions_um[peak, 1]) / 20.0)
    return (depth * shape[:, None] * falloff[None, :]).astype(np.float32)


def test_local_channels_are_the_peak_then_the_nearest():
    bank = _bank()
    assert bank.local_channels(5).tolist()[0] == 5
    assert sorted(bank.local_channels(5).tolist()) == [4, 5, 6]  # within 30 um
    assert bank.local_channels(0).tolist() == [0, 1]
    assert set(bank.wide_channels(5).tolist()) == {2, 3, 4, 5, 6, 7, 8}  # 30 + 40 um
    with pytest.raises(ValueError):
        bank.local_channels(5)[0] = 1  # read-only: the bank's own lists


def test_added_templates_are_normalised_and_keep_their_ids():
    bank = _bank()
    assert bank.add(_wave(bank, 5, 120.0), 5) == 0
    assert bank.add(_wave(bank, 8, 80.0), 8, unit_id=17, weight=50) == 17
    assert bank.add(_wave(bank, 2), 2) == 18  # new ids come after every id given so far
    assert bank.n == 3 and bank.ids[:3].tolist() == [0, 17, 18] and bank.index == {0: 0, 17: 1, 18: 2}
    assert bank.waves[0][5, PRE] == -1.0 and bank.waves[0][[4, 6], PRE].max() > -1.0
    assert not bank.waves[0][[0, 1, 2, 3, 7, 8, 9, 10, 11]].any()  # zero off its support
    assert bank.amp[:2].tolist() == pytest.approx([120.0, 80.0])  # in uV: the trough depth
    assert bank.matched[1] == 50 and bank.channels[1][:3].tolist()[0] == 8
    assert bank.norm2[0] == pytest.approx(float((bank.waves[0] ** 2).sum()))
    assert np.array_equal(bank.channels_for(17), bank.local_channels(8))
    assert bank.add(_wave(bank, 3), 3, in_uv=False) == 19 and bank.amp[3] == 0 and bank.amp_n[3] == 0


def test_templates_that_are_not_a_spike_are_refused():
    bank = _bank()
    with pytest.raises(ValueError, match="template shape"):
        bank.add(np.zeros((WIDTH + 1, 3), np.float32), 5)
    with pytest.raises(InputError, match="no negative trough"):
        bank.add(-_wave(bank, 5), 5)
    bad = _wave(bank, 5)
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="no negative trough"):
        bank.add(bad, 5)
    assert bank.n == 0


def test_the_bank_grows_and_keeps_what_it_holds():
    bank = _bank(long_post=30)
    first = _wave(bank, 5)
    for i in range(INITIAL_CAPACITY + 5):
        peak = 5 if i == 0 else i % N_CH
        bank.add(first if i == 0 else _wave(bank, peak, 50.0 + i), peak)
    assert bank.n == INITIAL_CAPACITY + 5 and bank.ids.size >= bank.n
    assert np.array_equal(bank.waves[0][bank.local_channels(5)].T, first / 100.0)
    assert bank.long_waves.shape == (bank.ids.size, N_CH, PRE + 30)
    assert np.array_equal(bank.long_waves[0][:, :WIDTH], bank.waves[0])  # until learnt: the short one


def test_candidates_are_nearby_templates_whose_support_holds_the_channel():
    bank = _bank()
    a, b = bank.add(_wave(bank, 5), 5), bank.add(_wave(bank, 7), 7)
    cand = lambda ch: sorted(int(i) for i in bank.candidates[ch] if i >= 0)  # noqa: E731
    assert cand(5) == [0] and cand(6) == [0, 1] and cand(7) == [1] and cand(0) == []
    bank.retire(a, b)
    assert cand(5) == [] and cand(6) == [1] and bank.merged_into == {a: b}
    c = bank.add(_wave(bank, 9), 9)
    bank.retire(b, c)  # what went into b now goes into c
    assert bank.merged_into == {a: c, b: c}
    assert not bank.active[:2].any() and bank.active[2]


def test_replace_gives_a_unit_a_new_shape_on_its_own_channels():
    bank = _bank()
    uid = bank.add(_wave(bank, 5, 100.0, width=1.5), 5)
    bank.replace(uid, _wave(bank, 5, 60.0, width=3.0), weight=40)
    assert bank.amp[0] == pytest.approx(60.0) and bank.matched[0] == 40 and bank.peak_channel[0] == 5
    np.testing.assert_allclose(bank.waves[0][bank.local_channels(5)].T, _wave(bank, 5, 60.0, 3.0) / 60.0, rtol=1e-6)


def test_same_unit_needs_the_same_shape_and_size():
    bank = _bank()
    bank.add(_wave(bank, 5, 100.0), 5)
    assert bank.same_unit(_wave(bank, 5, 110.0), 5, 2, 0.9, 0.3)
    assert bank.same_unit(np.roll(_wave(bank, 5, 100.0), 1, axis=0), 5, 2, 0.9, 0.3)  # a sample off
    assert not bank.same_unit(_wave(bank, 5, 200.0), 5, 2, 0.9, 0.3)  # twice as large: another unit
    assert not bank.same_unit(-np.abs(_wave(bank, 5, 100.0, width=6.0)), 5, 2, 0.95, 0.3)  # other shape
    assert not bank.same_unit(_wave(bank, 10, 100.0), 10, 2, 0.9, 0.3)  # too far away
    typical = float(bank.amp[0])
    w = _wave(bank, 5, 100.0)
    assert same_shape_and_size(w, bank.local_channels(5), bank.waves[0], bank.channels[0], typical, 0, 0.99, 0.01)
    assert not same_shape_and_size(w, bank.local_channels(5), bank.waves[0], bank.channels[0], 0.0, 0, 0.9, 0.3)


def test_a_template_merged_into_another_unit_is_that_unit_when_found_again():
    """A cluster once promoted and then merged into a unit (an overlap of two units' spikes, a
    unit found twice) is that unit when discovery finds it again: no new unit each time."""
    bank = _bank()
    kept = bank.add(_wave(bank, 5, 100.0), 5)
    other_shape = -np.abs(_wave(bank, 5, 60.0, width=6.0))
    dropped = bank.add(other_shape, 5)
    bank.retire(dropped, kept)
    assert bank.same_unit(other_shape, 5, 2, 0.95, 0.3)
    retired_alone = _bank()
    retired_alone.add(other_shape, 5)
    retired_alone.active[0] = False  # inactive but never merged into a unit: not known
    assert not retired_alone.same_unit(other_shape, 5, 2, 0.95, 0.3)


def test_shifted_overlaps_pair_the_overlapping_samples():
    x, t = np.arange(10.0)[:, None], np.arange(10.0)[:, None] + 100
    pairs = list(shifted_overlaps(x, t, 2))
    assert len(pairs) == 5 and all(a.shape == b.shape for a, b in pairs)
    assert [a.shape[0] for a, _ in pairs] == [8, 9, 10, 9, 8]
    a, b = pairs[0]  # t shifted by -2 against x
    assert (b - a).ravel().tolist() == [102.0] * 8


def test_bandpassed_templates_are_filtered_along_time():
    rng = np.random.default_rng(0)
    dense = rng.normal(0, 10, (3, 90, N_CH)).astype(np.float32)
    sos = butter(1, 300.0, "highpass", fs=30000.0, output="sos")
    got = bandpassed_templates(dense, sos.astype(np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, sosfilt(sos, dense.astype(np.float64), axis=1), rtol=1e-4, atol=1e-4)


def test_bank_from_dense_finds_each_units_peak_channel_and_trough():
    bank = _bank()
    dense = np.zeros((2, 60, N_CH), np.float32)
    for u, (peak, at) in enumerate(((3, 25), (9, 32))):
        dense[u, at - PRE : at - PRE + WIDTH][:, bank.local_channels(peak)] = _wave(bank, peak, 90.0 + u)
    bank_from_dense(bank, dense, np.array([40, 41]), trough_index=30, weight=10, in_uv=True)
    assert bank.ids[:2].tolist() == [40, 41] and bank.peak_channel[:2].tolist() == [3, 9]
    assert bank.amp[:2].tolist() == pytest.approx([90.0, 91.0]) and bank.matched[:2].tolist() == [10, 10]


def _phy(tmp_path, n_templates=3, n_time=30):
    folder = tmp_path / "ks"
    folder.mkdir()
    rng = np.random.default_rng(1)
    tpl = rng.normal(0, 1, (n_templates, n_time, 4)).astype(np.float32)
    winv = (np.eye(4) * 2 + 0.1).astype(np.float32)
    np.save(folder / "templates.npy", tpl)
    np.save(folder / "whitening_mat_inv.npy", winv)
    np.save(folder / "channel_map.npy", np.array([[2], [3], [6], [7]], np.int32))  # a column, as Kilosort saves it
    return folder, tpl, winv


def test_phy_templates_are_unwhitened_on_the_stream_channels(tmp_path):
    folder, tpl, winv = _phy(tmp_path)
    dense, ids = read_phy_templates(folder, N_CH)
    assert dense.shape == (3, 30, N_CH) and ids.tolist() == [0, 1, 2]  # no spike files: template = cluster
    np.testing.assert_allclose(dense[:, :, [2, 3, 6, 7]], tpl @ winv, rtol=1e-5)
    assert not dense[:, :, [0, 1, 4, 5, 8, 9, 10, 11]].any()


def test_curated_clusters_give_their_ids_and_unused_templates_are_dropped(tmp_path):
    folder, _, _ = _phy(tmp_path)
    # templates 0 and 2 were merged into cluster 9 in phy (template 2: mostly), template 1 never used
    np.save(folder / "spike_templates.npy", np.array([0, 0, 2, 2, 2, 0]))
    np.save(folder / "spike_clusters.npy", np.array([9, 9, 9, 9, 4, 9]))
    dense, ids = read_phy_templates(folder, N_CH)
    assert ids.tolist() == [9, 9] and dense.shape[0] == 2
    assert read_phy_spike_counts(folder).tolist() == [3, 3]  # per template kept, in the same order


def test_a_prior_sorts_spike_counts_are_the_rate_prior_from_the_first_spike():
    bank = _bank()
    dense = np.zeros((2, 60, N_CH), np.float32)
    for u, peak in enumerate((3, 9)):
        dense[u, 30 - PRE : 30 - PRE + WIDTH][:, bank.local_channels(peak)] = _wave(bank, peak, 90.0)
    bank_from_dense(bank, dense, np.array([1, 2]), 30, weight=200, in_uv=False, prior_spikes=np.array([50, 9000]))
    # never below the adaptation weight (a sort's few spikes do not make a unit lighter than a template)
    assert bank.matched[:2].tolist() == [200, 9000]
    assert bank.amp_n[:2].tolist() == [0, 0]  # Kilosort's scale is arbitrary: amplitudes still learnt live


def test_spike_counts_need_matching_files(tmp_path):
    folder, _, _ = _phy(tmp_path)
    assert read_phy_spike_counts(folder) is None  # no spike files: no prior
    np.save(folder / "spike_templates.npy", np.array([0, 5]))
    with pytest.raises(InputError, match="outside 0 .. 2"):
        read_phy_spike_counts(folder)


def test_a_whitening_matrix_of_the_wrong_size_is_refused(tmp_path):
    folder, _, _ = _phy(tmp_path)
    np.save(folder / "whitening_mat_inv.npy", np.eye(5))
    with pytest.raises(InputError, match="expected"):
        read_phy_templates(folder, N_CH)
    np.save(folder / "whitening_mat_inv.npy", np.eye(4))
    np.save(folder / "channel_map.npy", np.arange(3))
    with pytest.raises(InputError, match="lists 3 channels but templates.npy has 4"):
        read_phy_templates(folder, N_CH)
    with pytest.raises(InputError, match="does not exist"):
        read_phy_templates(tmp_path / "nowhere", N_CH)


def test_bad_phy_folders(recording, tmp_path):
    src = recording.parent / "ground_truth"
    missing = tmp_path / "missing"
    shutil.copytree(src, missing)
    (missing / "templates.npy").unlink()
    with pytest.raises(InputError, match="templates.npy is missing"):
        read_phy_templates(missing, 384)
    with pytest.raises(InputError, match="refers to channel 383 but the stream has 100"):
        read_phy_templates(src, 100)
    nan = tmp_path / "nan"
    shutil.copytree(src, nan)
    t = np.load(nan / "templates.npy")
    t[0, 0, 0] = np.nan
    np.save(nan / "templates.npy", t)
    with pytest.raises(InputError, match="NaN"):
        read_phy_templates(nan, 384)
    short = tmp_path / "short"
    shutil.copytree(src, short)
    np.save(short / "spike_clusters.npy", np.load(short / "spike_clusters.npy")[:-1])
    with pytest.raises(InputError, match="different lengths"):
        read_phy_templates(short, 384)
    huge = tmp_path / "huge"
    shutil.copytree(src, huge)
    clusters = np.load(huge / "spike_clusters.npy").astype(np.int64)
    np.save(huge / "spike_clusters.npy", np.where(clusters == clusters[0], 1 << 40, clusters))
    with pytest.raises(InputError, match="renumber the clusters"):
        read_phy_templates(huge, 384)
