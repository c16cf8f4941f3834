"""Fewer, larger blocks from a live source: ``[source] batch_ms``.

Each block costs the pipeline a fixed amount of work (a wake-up, the stages' calls, publishing)
besides the work per sample, so a sender's 1 ms chunks cost about twice the CPU of 10 ms ones.
``BatchedSource`` trades latency for CPU: once a chunk arrives it sleeps until ``batch_ms`` of
samples should be there, then joins what came into one chunk. Every spike waits up to
``batch_ms`` longer; nothing is lost or reordered, and a gap still starts a new chunk.
"""

from __future__ import annotations

import time

from rtclass.ingest.base import Source, StreamInfo
from rtclass.ingest.chunk import Chunk, join_contiguous


class BatchedSource:
    """A live ``source`` whose chunks are joined into blocks of about ``batch_ms`` (see module)."""

    def __init__(self, source: Source, batch_ms: float):
        if batch_ms <= 0:
            raise ValueError("batch_ms must be > 0 (0 means: do not batch; use the source itself)")
        self.source = source
        self.batch_s = batch_ms / 1000.0
        self.stats = source.stats
        self._sample_rate_hz = 0.0
        self._pending: Chunk | None = None  # a chunk after a gap: it starts the next block

    def open(self) -> StreamInfo:
        info = self.source.open()
        self._sample_rate_hz = info.sample_rate_hz
        return info

    @property
    def finished(self) -> bool:
        return self._pending is None and self.source.finished

    def read(self, timeout_s: float) -> Chunk | None:
        """The next block: the first chunk to arrive (within ``timeout_s``), joined with the
        contiguous chunks that arrive until ``batch_ms`` of samples should be in."""
        if self._pending is not None:
            first, self._pending = self._pending, None
        else:
            first = self.source.read(timeout_s)
        if first is None:
            return None
        wanted = self.batch_s * self._sample_rate_hz
        slept = False

        def next_chunk(samples_so_far: int) -> Chunk | None:
            nonlocal slept
            more = self.source.read(0.0)
            if more is None and not slept:
                # one wake-up for the block, not one per chunk (no wait while chunks are queued: a
                # backlog after a stall drains at full speed); a sender slower than its rate gets
                # no second wait
                time.sleep((wanted - samples_so_far) / self._sample_rate_hz)
                slept = True
                more = self.source.read(0.0)
            return more

        joined, self._pending = join_contiguous(first, next_chunk, wanted)
        return joined

    def close(self) -> None:
        self.source.close()
