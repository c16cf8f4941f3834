"""The matching kernel (``rtclass.matching.kernels``) called directly, on a small probe with two
hand-made templates: a spike that is a template's copy gets that unit and its amplitude, peaks wait
for their window, a fit of the wrong size or shape is left unassigned, and the ranking's prior
favours the unit with more spikes."""

import numpy as np
import pytest

from rtclass.dsp.detection import PEAK_DTYPE
from rtclass.matching.kernels import (
    AMPLITUDE_NOISE_SDS,
    MIN_AMPLITUDE_OBSERVATIONS,
    N_COUNTERS,
    RATE_PRIOR,
    ChannelWeights,
    MatchSettings,
    RecentSpikes,
    _log_prior,
    _outside_gate,
    drop_repeats,
    match_step,
)
from rtclass.matching.matcher import ALWAYS, ASSIGNED_DTYPE, bank_arrays, channel_weights, new_late_spikes
from rtclass.matching.templates import TemplateBank
from rtclass.probe import Probe

WIDTH, PRE, SHIFT = 20, 8, 2
N_CH = 12
NOISE_UV = 5.0


def _probe():
    return Probe("line", np.stack([np.zeros(N_CH), 20.0 * np.arange(N_CH)], 1))


def _shape(width):
    t = np.arange(WIDTH)
    s = -np.exp(-0.5 * ((t - PRE) / width) ** 2) + 0.4 * np.exp(-0.5 * ((t - PRE - 6) / 2.5) ** 2)
    return s / -s[PRE]


def _bank():
    """Unit 10 peaks on channel 3 (narrow), unit 20 on channel 8 (broad); 100 and 60 uV deep."""
    bank = TemplateBank(_probe(), WIDTH, PRE, match_radius_um=30.0, candidate_radius_um=50.0)
    for uid, peak, depth, width in ((10, 3, 100.0, 1.5), (20, 8, 60.0, 3.5)):
        chans = bank.local_channels(peak)
        fall = np.exp(-np.abs(chans - peak) * 0.7)
        bank.add((depth * _shape(width)[:, None] * fall[None, :]).astype(np.float32), peak, uid, weight=100)
    return bank


def _data(n, spikes, seed=0):
    """Noise plus each (sample of trough, unit index, depth uV) spike of the bank's templates."""
    bank = _bank()
    x = np.random.default_rng(seed).normal(0, NOISE_UV, (n, N_CH)).astype(np.float32)
    for t, u, depth in spikes:
        x[t - PRE : t - PRE + WIDTH] += depth * bank.waves[u].T
    return x


def _peaks(*sample_channel):
    p = np.zeros(len(sample_channel), PEAK_DTYPE)
    for i, (s, c) in enumerate(sample_channel):
        p[i] = (s, c, -50.0, True)
    return p


def _matcher_state(bank):
    """What a matcher keeps between calls: the pending peaks and the overlap state."""
    return {
        "pending": np.zeros(64, PEAK_DTYPE),
        "recent": RecentSpikes(
            np.zeros(64, np.int64),
            np.zeros(64, np.int64),
            np.zeros(64, np.float32),
            np.zeros(64, np.int64),
            np.zeros(64, np.int64),
            np.zeros(64, np.float32),
            np.zeros(N_COUNTERS, np.int64),
        ),
        "n_pending": 0,
    }


def _step(bank, st, work, peaks, work_first=0, n_units=None, amplitude_tolerance=0.3, pair_offset=0):
    """One match_step with the matcher's arguments; returns the decided records."""
    inv_var = channel_weights(np.full(N_CH, NOISE_UV, np.float32))
    arrays = bank_arrays(bank)
    settings = MatchSettings(
        pre=PRE,
        max_shift=SHIFT,
        max_residual=8.0,
        min_explained=0.5,
        min_fit_explained=0.3,
        truncated=WIDTH,  # off
        pair_offset=pair_offset,
        tolerance=amplitude_tolerance,
        adapt_spikes=0,  # fixed templates and amplitudes
        shape_spikes=ALWAYS,
    )
    out = np.zeros(2 * (st["n_pending"] + peaks.size), ASSIGNED_DTYPE)
    latest_ready = work_first + work.shape[0] - (WIDTH - PRE) - SHIFT
    n, st["n_pending"], oldest, n_unassigned = match_step(
        st["pending"],
        st["n_pending"],
        peaks,
        work,
        work_first,
        latest_ready,
        work_first + PRE + SHIFT,
        bank.n if n_units is None else n_units,
        bank.ids,
        arrays,
        ChannelWeights(inv_var, inv_var, 0),
        settings,
        out,
        st["recent"],
        new_late_spikes(4),  # (late decisions off)
    )
    st["oldest"], st["n_unassigned"] = oldest, n_unassigned
    return out[:n]


def test_a_copy_of_a_template_gets_its_unit_and_amplitude():
    bank = _bank()
    work = _data(400, [(100, 0, 80.0), (250, 1, 66.0)])
    got = _step(bank, _matcher_state(bank), work, _peaks((100, 3), (250, 8)))
    assert got["sample"].tolist() == [100, 250] and got["unit"].tolist() == [10, 20]
    assert got["fit"].tolist() == pytest.approx([80.0, 66.0], rel=0.05)
    assert got["amplitude"].tolist() == [50.0, 50.0]  # the detected trough depth, as given
    assert np.all(got["score"] < 2.0)  # ~1: what is left is noise


def test_a_spike_detected_on_a_neighbouring_channel_still_gets_its_unit():
    bank = _bank()
    work = _data(400, [(100, 0, 90.0)])
    got = _step(bank, _matcher_state(bank), work, _peaks((100, 4)))
    assert got["unit"].tolist() == [10] and got["channel"].tolist() == [4]


def test_peaks_wait_for_their_window_and_keep_their_order():
    bank = _bank()
    work = _data(600, [(100, 0, 90.0), (300, 1, 60.0), (500, 0, 95.0)])
    st = _matcher_state(bank)
    assert _step(bank, st, work[:110], _peaks((100, 3))).size == 0  # its window ends after 110
    assert st["n_pending"] == 1 and st["oldest"] == 100
    got = _step(bank, st, work[:310], _peaks((300, 8)))  # 300's window ends after 310
    assert got["sample"].tolist() == [100] and st["n_pending"] == 1 and st["oldest"] == 300
    got = _step(bank, st, work, _peaks((500, 3)))
    assert got["sample"].tolist() == [300, 500] and got["unit"].tolist() == [20, 10]
    assert st["n_pending"] == 0 and st["oldest"] == -1


def test_a_peak_without_a_whole_window_at_the_start_is_dropped():
    bank = _bank()
    work = _data(300, [(150, 0, 90.0)])
    got = _step(bank, _matcher_state(bank), work, _peaks((5, 3), (150, 3)))
    assert got["sample"].tolist() == [150]


def test_what_no_template_explains_is_unassigned():
    bank = _bank()
    work = _data(400, [])
    work[85:125, 2:5] -= 80.0  # a slow step, the same on every channel
    work[200:202, 3] -= 200.0  # a two-sample glitch
    st = _matcher_state(bank)
    got = _step(bank, st, work, _peaks((100, 3), (200, 3)))
    assert got["unit"].tolist() == [-1, -1] and st["n_unassigned"] == 2


def test_a_fit_far_from_the_units_typical_amplitude_is_refused():
    bank = _bank()
    assert bank.amp_n[0] >= MIN_AMPLITUDE_OBSERVATIONS  # a template in uV gates its fits at once
    work = _data(400, [(100, 0, 300.0), (250, 0, 110.0)])  # three times its size, and about its size
    got = _step(bank, _matcher_state(bank), work, _peaks((100, 3), (250, 3)))
    assert got["unit"].tolist() == [-1, 10]
    got = _step(bank, _matcher_state(bank), work, _peaks((100, 3)), amplitude_tolerance=5.0)
    assert got["unit"].tolist() == [10]  # a looser gate takes it


def test_without_units_every_peak_is_decided_unassigned():
    bank = _bank()
    work = _data(400, [(100, 0, 90.0)])
    st = _matcher_state(bank)
    got = _step(bank, st, work, _peaks((100, 3), (200, 6)), n_units=0)
    assert got["unit"].tolist() == [-1, -1] and st["n_unassigned"] == 2


def test_two_units_firing_together_are_both_reported_as_a_pair():
    """Two neighbours' spikes 2 samples apart on one peak: fitted as a pair, both are published."""
    bank = TemplateBank(_probe(), WIDTH, PRE, match_radius_um=30.0, candidate_radius_um=50.0)
    for uid, peak, width in ((10, 5, 1.5), (20, 6, 3.0)):
        chans = bank.local_channels(peak)
        fall = np.exp(-np.abs(chans - peak) * 1.5)
        bank.add((80.0 * _shape(width)[:, None] * fall[None, :]).astype(np.float32), peak, uid, weight=100)
    x = np.random.default_rng(3).normal(0, NOISE_UV, (400, N_CH)).astype(np.float32)
    for t, u in ((100, 0), (102, 1)):
        x[t - PRE : t - PRE + WIDTH] += 80.0 * bank.waves[u].T
    got = _step(bank, _matcher_state(bank), x, _peaks((100, 5)), pair_offset=6)
    assert sorted(got["unit"].tolist()) == [10, 20]
    assert sorted(got["sample"].tolist()) == pytest.approx([100, 102], abs=SHIFT)


def test_the_amplitude_gate_allows_the_fits_own_noise():
    tt = 4.0  # <T, T> weighted: the fit's noise sd is 1 / sqrt(tt) = 0.5
    margin = 0.3 * 100.0 + AMPLITUDE_NOISE_SDS * 0.5
    assert not _outside_gate(100.0 + margin - 1e-3, 100.0, 0.3, tt)
    assert _outside_gate(100.0 + margin + 1e-3, 100.0, 0.3, tt)
    assert _outside_gate(100.0 - margin - 1e-3, 100.0, 0.3, tt)


def test_the_prior_grows_with_a_units_spikes_per_value():
    assert _log_prior(1, 60) == 0.0 and _log_prior(0, 60) == 0.0
    assert _log_prior(100, 60) == pytest.approx(RATE_PRIOR * 2 * np.log(100) / 60)
    assert _log_prior(1000, 60) > _log_prior(100, 60) > _log_prior(100, 120)


def test_a_unit_given_the_same_spike_twice_keeps_the_first():
    # unit 3 at 100 and again at 108 (0.27 ms: the same spike), unit 5 at 104 (another unit: kept),
    # unit 3 at 140 (a new spike), a pair's second spike of unit 5 decided late at 99 (repeat of 104)
    spikes = np.zeros(6, ASSIGNED_DTYPE)
    spikes["unit"] = [3, 5, 3, -1, 3, 5]
    spikes["sample"] = [100, 104, 108, 109, 140, 99]
    last = np.full(8, -1, np.int64)
    keep = np.empty(spikes.size, np.bool_)
    repeats = drop_repeats(spikes, last, 15, keep)
    assert keep.tolist() == [True, True, False, True, True, False] and repeats == 2
    assert last[3] == 140 and last[5] == 104
    # the state carries over: the next block's spike of unit 3 at 150 repeats the one at 140
    assert drop_repeats(spikes[2:3].copy(), last, 15, keep[:1]) == 0  # 108 is before 140 by 32: not a repeat
    late = spikes[4:5].copy()
    late["sample"] = 150
    assert drop_repeats(late, last, 15, keep[:1]) == 1
