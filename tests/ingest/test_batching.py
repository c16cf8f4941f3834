"""``[source] batch_ms``: a live source's chunks joined into larger blocks (``BatchedSource``)."""

import numpy as np
import pytest

from rtclass.ingest import batching
from rtclass.ingest.base import SourceStats, StreamInfo
from rtclass.ingest.batching import BatchedSource
from rtclass.ingest.chunk import Chunk

FS = 30000.0
CHUNK = 30  # 1 ms


class _Sender:
    """A live source whose chunks become readable as (fake) time passes: ``queued`` are there at
    once, one more arrives per ``CHUNK`` samples of sleep, and a read that may wait gets the next."""

    def __init__(self, chunks, queued=1):
        self.chunks, self.ready, self.stats = list(chunks), queued, SourceStats()

    def open(self):
        return StreamInfo("fake", 4, FS)

    @property
    def finished(self):
        return not self.chunks

    def read(self, timeout_s):
        if timeout_s > 0 and self.ready == 0:
            self.ready = 1
        if self.ready == 0 or not self.chunks:
            return None
        self.ready -= 1
        return self.chunks.pop(0)

    def sleep(self, seconds):
        self.ready += int(round(seconds * FS / CHUNK))

    def close(self):
        pass


def _chunks(n, gap_at=None, seed=0):
    rng = np.random.default_rng(seed)
    out, first = [], 0
    for i in range(n):
        gap = 90 if i == gap_at else 0
        first += gap
        out.append(Chunk(rng.normal(size=(CHUNK, 4)).astype(np.float32), first, first / FS, gap))
        first += CHUNK
    return out


@pytest.fixture
def sleeps(monkeypatch):
    calls = []
    monkeypatch.setattr(batching.time, "sleep", lambda s: calls.append(s))
    return calls


def _drain(source):
    blocks = []
    while (b := source.read(0.05)) is not None:
        blocks.append(b)
    return blocks


def test_one_ms_chunks_become_ten_ms_blocks_with_every_sample_in_order(monkeypatch):
    chunks = _chunks(40)
    sender = _Sender(chunks)
    monkeypatch.setattr(batching.time, "sleep", sender.sleep)
    src = BatchedSource(sender, 10.0)
    src.open()
    blocks = _drain(src)
    assert [b.n_samples for b in blocks] == [300] * 4
    np.testing.assert_array_equal(np.concatenate([b.data for b in blocks]), np.concatenate([c.data for c in chunks]))
    assert [b.first_sample for b in blocks] == [0, 300, 600, 900]
    assert blocks[-1].t_last == chunks[-1].t_last


def test_a_gap_starts_a_new_block_and_keeps_its_size(monkeypatch):
    chunks = _chunks(12, gap_at=4)
    sender = _Sender(chunks)
    monkeypatch.setattr(batching.time, "sleep", sender.sleep)
    src = BatchedSource(sender, 10.0)
    src.open()
    blocks = _drain(src)
    assert [(b.first_sample, b.n_samples, b.gap_before) for b in blocks] == [(0, 120, 0), (210, 240, 90)]
    assert sum(b.n_samples for b in blocks) == 12 * CHUNK


def test_a_backlog_is_joined_without_waiting(sleeps):
    src = BatchedSource(_Sender(_chunks(25), queued=25), 10.0)
    src.open()
    blocks = _drain(src)
    assert [b.n_samples for b in blocks] == [300, 300, 150]
    assert sleeps == [pytest.approx(0.005)]  # only once the backlog ran out, for the last block


def test_a_sender_slower_than_its_rate_costs_one_wait_per_block_not_more(sleeps):
    src = BatchedSource(_Sender(_chunks(3), queued=1), 10.0)  # nothing arrives while it sleeps
    src.open()
    first = src.read(0.05)
    assert first.n_samples == CHUNK and sleeps == [pytest.approx(0.009)]


def test_batch_ms_must_be_positive():
    with pytest.raises(ValueError, match="batch_ms"):
        BatchedSource(_Sender([]), 0.0)
