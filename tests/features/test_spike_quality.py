from pathlib import Path

import numpy as np
import pytest

from rtclass.features.spike_quality import (
    CHUNK_S,
    MIN_UNIT_SPIKES,
    SpikeQualityFilter,
    c4_period_end_s,
    labelled_acg_spikes,
    missed_percent,
    spike_quality,
)
from rtclass.matching.matcher import ASSIGNED_DTYPE

REFERENCE = Path(__file__).parent / "data" / "npyx_spike_filter.npz"
FS = 30000.0


def _unit(rng, duration_s=300.0, rate_hz=20.0, dead_s=0.002):
    t = np.cumsum(rng.exponential(1 / rate_hz, int(rate_hz * duration_s * 1.3)) + dead_s)
    t = t[t < duration_s]
    return t, rng.normal(60.0, 8.0, t.size)


def test_the_good_spikes_are_exactly_npyx_s():
    """npyx 4.3.1's trn_filtered, run by scripts/npyx_spike_filter_reference.py on 8 units (clean,
    with missed spikes for a while, contaminated for a while, cut by a threshold)."""
    ref = np.load(REFERENCE)
    bounds = np.concatenate([[0], np.cumsum(ref["counts"])])
    verdicts = []
    for u in range(ref["counts"].size):
        times_s = ref["samples"][bounds[u] : bounds[u + 1]].astype(np.int64) / FS
        amps = ref["amplitudes"][bounds[u] : bounds[u + 1]].astype(np.float32)
        q = spike_quality(times_s, amps, c4_period_end_s(times_s))
        np.testing.assert_array_equal(q.good, ref["good"][bounds[u] : bounds[u + 1]], err_msg=f"unit {u}")
        verdicts.append(q.passes)
    assert 0 < sum(verdicts) < len(verdicts)  # the reference holds units that pass and units that do not


def test_a_contaminated_stretch_is_left_out_and_the_rest_kept():
    rng = np.random.default_rng(3)
    t, a = _unit(rng)
    extra = rng.uniform(100.0, 160.0, 600)  # another unit's spikes: refractory violations
    times = np.concatenate([t, extra])
    order = np.argsort(times)
    times, amps = times[order], np.concatenate([a, rng.normal(60.0, 8.0, extra.size)])[order]
    q = spike_quality(times, amps, c4_period_end_s(times), min_good_s=60.0)
    assert q.passes
    inside = (times > 120.0) & (times < 140.0)
    assert not q.good[inside].any()
    assert q.good[times < 80.0][10:].all()  # before it (but for spikes on chunk edges) all good
    clean = spike_quality(t, a, c4_period_end_s(t), min_good_s=60.0)
    assert clean.passes and clean.good[t < 260.0].mean() > 0.99


def test_amplitudes_cut_by_a_threshold_fail_and_a_full_gaussian_passes():
    rng = np.random.default_rng(4)
    full = rng.normal(60.0, 8.0, 1500)
    assert missed_percent(full) < 1.0
    assert missed_percent(full[full > 60.0]) > 20.0  # half the Gaussian missing
    assert np.isnan(missed_percent(np.full(100, 5.0)))  # no spread: no fit


def test_a_unit_with_too_few_spikes_or_good_seconds_has_none_and_says_why():
    rng = np.random.default_rng(5)
    t, a = _unit(rng, duration_s=100.0, rate_hz=2.0)
    q = spike_quality(t, a, c4_period_end_s(t))
    assert not q.passes and not q.good.any() and "spikes" in q.reason
    t, a = _unit(rng, duration_s=150.0)
    q = spike_quality(t, a, c4_period_end_s(t))  # C4 needs 180 s of good sections
    assert not q.passes and "180 s" in q.reason
    with pytest.raises(ValueError, match="amplitudes"):
        spike_quality(t, a[:-1], 120.0)


def test_training_sets_take_the_spikes_the_live_labeller_would():
    """All spikes of a unit too small to judge, C4's good ones of a judged unit, none of a rejected one."""
    rng = np.random.default_rng(6)
    t, a = _unit(rng, duration_s=100.0, rate_hz=2.0)
    samples = np.round(t * FS).astype(np.int64)
    assert samples.size <= MIN_UNIT_SPIKES
    np.testing.assert_array_equal(labelled_acg_spikes(samples, a, FS, 0.0), samples)
    t, a = _unit(rng)
    extra = rng.uniform(100.0, 160.0, 600)
    order = np.argsort(np.concatenate([t, extra]))
    times = np.concatenate([t, extra])[order]
    amps = np.concatenate([a, rng.normal(60.0, 8.0, extra.size)])[order]
    samples = np.round(times * FS).astype(np.int64)
    kept = labelled_acg_spikes(samples, amps, FS, 0.0)
    expected = spike_quality(samples / FS, amps, c4_period_end_s(samples / FS), min_good_s=0.0).good
    np.testing.assert_array_equal(kept, samples[expected])
    assert 0 < kept.size < samples.size
    cut = amps > np.median(amps)  # only the upper half of the amplitudes: missed spikes everywhere
    assert labelled_acg_spikes(samples[cut], amps[cut], FS, 0.0) is None


def _records(times_s, amps, unit):
    r = np.zeros(times_s.size, ASSIGNED_DTYPE)
    r["sample"] = np.round(times_s * FS).astype(np.int64)
    r["unit"], r["fit"] = unit, amps
    return r


@pytest.mark.parametrize("block_s", [0.05, 1.0, 7.3])
def test_the_live_filter_judges_the_recording_so_far_whatever_the_blocks(block_s):
    rng = np.random.default_rng(6)
    t, a = _unit(rng, duration_s=95.0)
    extra = rng.uniform(40.0, 70.0, 400)
    times = np.sort(np.concatenate([t, extra]))
    amps = rng.normal(60.0, 8.0, times.size)
    noise = _records(np.sort(rng.uniform(0, 95, 50)), np.full(50, 30.0), -1)  # unassigned: ignored
    spikes = np.sort(np.concatenate([_records(times, amps, 7), noise]), order="sample")
    live = SpikeQualityFilter(FS, 0.05, 0.05, 0.0)
    edges = np.arange(0.0, 95.0 + block_s, block_s)
    verdicts = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        block = spikes[(spikes["sample"] >= lo * FS) & (spikes["sample"] < hi * FS)]
        live.process(block, int(round(min(hi, 95.0) * FS)))
        if int(hi / CHUNK_S) != int(lo / CHUNK_S):
            verdicts.append(live.judge(7)[0])  # judged as chunks complete, so windows are remembered
    verdict, judged = live.judge(7)
    # offline, C4 on the same spikes cut at the last complete chunk (90 s)
    before = times < 90.0
    offline = spike_quality(times[before], amps[before].astype(np.float32), 90.0, min_good_s=0.0)
    assert judged.size == before.sum()
    np.testing.assert_array_equal(verdict.good, offline.good)
    assert verdict.passes and not verdict.good[(times[before] > 50) & (times[before] < 60)].any()
    assert verdicts[0] is None  # under 30 s: not judged yet
    unseen, none = live.judge(99)  # a unit it never saw
    assert unseen is None and none.size == 0


def test_a_spike_decided_late_is_kept_in_time_order():
    live = SpikeQualityFilter(FS, 0.05, 0.05, 0.0)
    live.process(_records(np.array([1.0, 2.0, 3.0]), np.array([50.0, 51.0, 52.0]), 4), int(3.5 * FS))
    live.process(_records(np.array([2.5, 4.0]), np.array([53.0, 54.0]), 4), int(4.5 * FS))
    assert (live.spikes_of(4) / FS).tolist() == [1.0, 2.0, 2.5, 3.0, 4.0]
    assert live.amplitudes_of(4).tolist() == [50.0, 51.0, 53.0, 52.0, 54.0]
