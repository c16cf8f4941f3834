"""Binned spike counts per cell type (``rtclass.publish.counts``), what decoders read on
``counts/<cell_type>``: every bin closes once its spikes are all decided, its count is final, and
the counts equal the spikes binned offline."""

import numpy as np

from rtclass.cell_types import CELL_TYPE_NAMES
from rtclass.publish.counts import SpikeCounter, counts_messages
from rtclass.publish.wire import COUNTS_DTYPE, SPIKE_DTYPE


def _spikes(n, seed=0):
    rng = np.random.default_rng(seed)
    s = np.zeros(n, SPIKE_DTYPE)
    s["sample"] = np.sort(rng.integers(0, 300000, n))
    s["cell_type"] = rng.integers(0, 6, n)
    return s


def test_counts_equal_the_spikes_binned_offline():
    spikes = _spikes(5000, seed=3)
    bin_samples, lag = 600, 40
    counter = SpikeCounter(bin_samples, lag)
    starts, counts = [], []
    for end in range(3000, 300000 + 3000, 3000):  # chunks of 100 ms; a spike is decided `lag` after it
        sel = (spikes["sample"] >= end - 3000 - lag) & (spikes["sample"] < end - lag)
        s, c = counter.process(spikes["sample"][sel], spikes["cell_type"][sel].astype(np.int64), end)
        starts.append(s)
        counts.append(c)
    starts, counts = np.concatenate(starts), np.concatenate(counts)
    assert starts[0] == 0 and np.all(np.diff(starts) == bin_samples)
    closed_until = starts[-1] + bin_samples  # the last bin waits for data up to 300000 + lag
    assert counts.sum() == (spikes["sample"] < closed_until).sum() > 4900  # every spike counted once
    for code in range(6):
        t = spikes["sample"][spikes["cell_type"] == code]
        offline = np.histogram(t, bins=np.append(starts, starts[-1] + bin_samples))[0]
        assert np.array_equal(counts[:, code], offline)


def test_a_bin_closes_only_once_its_spikes_are_decided():
    counter = SpikeCounter(bin_samples=100, lag_samples=30)
    starts, closed = counter.process(np.array([10, 20]), np.array([1, 1]), processed_end=120)
    assert starts.size == 0  # bin 0..100 waits until data up to 130 is processed
    starts, closed = counter.process(np.array([95]), np.array([2]), processed_end=130)
    assert starts.tolist() == [0] and closed.shape == (1, len(CELL_TYPE_NAMES))
    assert closed[0].tolist() == [0, 2, 1, 0, 0, 0]
    starts, closed = counter.process(np.zeros(0, np.int64), np.zeros(0, np.int64), processed_end=431)
    assert starts.tolist() == [100, 200, 300] and not closed.any()  # empty bins are published too


def test_the_timeline_starts_at_the_first_spikes_bin_and_late_spikes_do_not_count():
    counter = SpikeCounter(100, 0)
    starts, _ = counter.process(np.array([1234]), np.array([3]), processed_end=1250)
    assert counter.start == 1200 and starts.size == 0
    starts, closed = counter.process(np.array([1150, 1310]), np.array([3, 3]), processed_end=1400)
    assert starts.tolist() == [1200, 1300] and closed[:, 3].tolist() == [1, 1]  # 1150: a closed bin's, dropped


def test_one_message_per_cell_type_with_the_bins():
    starts = np.array([0, 600, 1200])
    counts = np.arange(18).reshape(3, 6)
    msgs = counts_messages(starts, counts, 600)
    assert [m[0] for m in msgs] == [b"counts/" + n.encode() for n in CELL_TYPE_NAMES]
    rec = np.frombuffer(msgs[2][1], COUNTS_DTYPE)  # PkC_cs
    assert rec["bin_start"].tolist() == [0, 600, 1200] and rec["bin_samples"].tolist() == [600] * 3
    assert rec["count"].tolist() == [2, 8, 14]
