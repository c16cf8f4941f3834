"""Live per-unit features against C4's offline definition on the same spikes."""

import numpy as np
import pytest

from rtclass.features.c4 import c4_acg, preprocess_waveform
from rtclass.features.unit_features import EXACT_SPIKES, UnitFeatures
from tests.conftest import c4_reference_maker


@pytest.fixture(scope="module")
def trains():
    return c4_reference_maker().trains()


def _feed(train, seed, unit=7):
    bank = UnitFeatures(4, 30000.0, 100, 4)
    rng = np.random.default_rng(seed)
    i = 0
    while i < train.size:
        n = int(rng.integers(1, 60))
        part = train[i : i + n]
        bank.update(part, np.full(part.size, unit), lambda u: np.arange(4))
        i += n
    return bank


def test_live_3d_acg_equals_offline_while_exact_and_stays_close_after(trains):
    for k, t in enumerate(trains):
        live = _feed(t, k).acg3d(7)
        offline = c4_acg(t)
        err = np.abs(live - offline).max() / np.abs(offline).max()
        if t.size < EXACT_SPIKES:
            assert err < 1e-6, (k, err)  # every reference spike still kept exactly
        else:
            assert err < 0.05, (k, err)  # fine rate bins: a few spikes near the edges move rows


def test_live_features_do_not_depend_on_batching(trains):
    t = trains[1]
    a, b = _feed(t, 1), _feed(t, 2)
    assert np.array_equal(a.acg3d(7), b.acg3d(7))
    assert np.array_equal(a.plain_acg(7), b.plain_acg(7))


def test_plain_acg_counts_pairs_within_the_window():
    ms = np.array([0, 1, 3, 100, 101])
    bank = UnitFeatures(4, 30000.0, 100, 4)
    bank.update(ms * 30, np.zeros(ms.size, int), lambda u: np.arange(4))
    expect = np.zeros(100, int)
    for i in range(ms.size):
        for j in range(i):
            lag = ms[i] - ms[j]
            if 1 <= lag <= 100:
                expect[lag - 1] += 1
    assert np.array_equal(bank.plain_acg(0), expect)
    assert expect.sum() == 9  # (0, 101) is outside the 100 ms window


def test_waveform_is_the_running_mean_of_raw_snippets():
    rng = np.random.default_rng(0)
    n = 40000
    raw = rng.normal(0, 5, (n, 4)).astype(np.float32)
    shape = -80 * np.exp(-0.5 * ((np.arange(120) - 60) / 4.0) ** 2) + 25 * np.exp(
        -0.5 * ((np.arange(120) - 75) / 8.0) ** 2
    )
    times = np.arange(200, n - 200, 400)
    for s in times:
        raw[s - 60 : s + 60, 1] += shape
    bank = UnitFeatures(4, 30000.0, 100, 4)
    for a in range(0, n, 300):  # spikes arrive with the block that contains them
        sel = (times >= a) & (times < a + 300)
        bank.update(times[sel], np.zeros(sel.sum(), int), lambda u: np.arange(4), raw[a : a + 300], a)
    got = bank.waveform(0)
    want = preprocess_waveform(shape)
    assert np.abs(got - want).max() < 0.05


def test_waveform_does_not_depend_on_chunking():
    rng = np.random.default_rng(1)
    n = 120000
    raw = rng.normal(0, 5, (n, 4)).astype(np.float32)
    times = np.sort(rng.choice(np.arange(100, n - 100), 2000, replace=False))  # ~500 Hz: > 1024 pending in one block
    ids = np.array([5000, 100, 0, -1])  # sparse ids (the id lookup grows), and unassigned spikes
    units = ids[rng.integers(0, 4, times.size)]
    waves, acgs = [], []
    for chunk in (30, 1000, n):
        bank = UnitFeatures(4, 30000.0, 100, 4)
        for a in range(0, n, chunk):
            sel = (times >= a) & (times < a + chunk)
            bank.update(times[sel], units[sel], lambda u: np.arange(4), raw[a : a + chunk], a)
        waves.append([bank.wave[bank.index[u]].copy() for u in ids[:3]])
        acgs.append([bank.plain_acg(u) for u in ids[:3]])
        assert bank.wave_n[:3].sum() > 0.99 * (units >= 0).sum()  # all but the last few snippets are in
        assert sum(bank.spike_count(u) for u in ids[:3]) == (units >= 0).sum()
    for other, other_acg in zip(waves[1:], acgs[1:]):
        for a, b in zip(waves[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
        for a, b in zip(acgs[0], other_acg):
            assert np.array_equal(a, b)


def test_unit_ids_out_of_range_and_mismatched_arrays_are_refused():
    bank = UnitFeatures(4, 30000.0, 100, 4)
    with pytest.raises(ValueError, match="unit id"):
        bank.unit_index(-3, np.arange(4))
    with pytest.raises(ValueError, match="unit id"):
        bank.update(np.array([10]), np.array([1 << 40]), lambda u: np.arange(4))
    with pytest.raises(ValueError, match="unit ids"):
        bank.update(np.array([10, 20]), np.array([1]), lambda u: np.arange(4))


def test_snippets_across_a_gap_or_a_restart_are_skipped():
    raw = np.ones((300, 4), np.float32)
    bank = UnitFeatures(4, 30000.0, 100, 4)
    bank.update(np.array([100, 280]), np.zeros(2, int), lambda u: np.arange(4), raw, 0)
    assert bank.wave_n[0] == 1  # the spike at 280 waits for 60 more samples
    bank.update(np.zeros(0, int), np.zeros(0, int), lambda u: np.arange(4), 5 * raw, 400)  # 100 samples lost
    assert bank.wave_n[0] == 1  # its snippet would mix data from before and after the gap
    bank.update(np.array([730]), np.zeros(1, int), lambda u: np.arange(4), 5 * raw[:60], 700)
    assert bank._pending_ht[1] - bank._pending_ht[0] == 1  # waits for samples up to 790 ...
    bank.update(np.zeros(0, int), np.zeros(0, int), lambda u: np.arange(4), 5 * raw, 0)  # ... but the source restarted
    assert bank.wave_n[0] == 1 and bank._pending_ht[0] == bank._pending_ht[1]  # nothing left waiting forever
    bank.update(np.array([450]), np.zeros(1, int), lambda u: np.arange(4), 5 * raw, 300)
    assert bank.wave_n[0] == 2  # and the stream goes on


def test_as_a_stage_it_takes_the_chains_decided_spike_records():
    """``process`` (the chain's call: decided spike records and the raw block) gives the same
    features as feeding the arrays, and the stage declares when a spike's waveform is final."""
    from rtclass.features.unit_features import WAVE_POST, WAVE_PRE
    from rtclass.matching.matcher import ASSIGNED_DTYPE

    rng = np.random.default_rng(3)
    n = 30000
    raw = rng.normal(0, 5, (n, 4)).astype(np.float32)
    times = np.sort(rng.choice(np.arange(200, n - 200), 300, replace=False))
    units = rng.integers(0, 2, times.size)
    by_records, by_arrays = UnitFeatures(4, 30000.0, 100, 4), UnitFeatures(4, 30000.0, 100, 4)
    for a in range(0, n, 300):
        sel = (times >= a) & (times < a + 300)
        records = np.zeros(sel.sum(), ASSIGNED_DTYPE)
        records["sample"], records["unit"] = times[sel], units[sel]
        by_records.process(records, lambda u: np.arange(4), raw[a : a + 300], a)
        by_arrays.update(times[sel], units[sel], lambda u: np.arange(4), raw[a : a + 300], a)
    for u in (0, 1):
        assert np.array_equal(by_records.acg3d(u), by_arrays.acg3d(u))
        assert np.array_equal(by_records.waveform(u), by_arrays.waveform(u))
    assert by_records.decision_latency_samples == WAVE_POST
    assert by_records.lookback_samples >= WAVE_PRE + WAVE_POST
