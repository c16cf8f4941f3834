"""File source: a SpikeGLX recording read in chunks, paced like a live stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from rtclass.errors import InputError
from rtclass.formats.spikeglx import SpikeGLXRecording, meta_path_for, open_recording
from rtclass.ingest.base import SourceStats, StreamInfo
from rtclass.ingest.chunk import Chunk
from rtclass.stage import ms_to_samples


class FileSource:
    """Reads ``[first, first + chunk)`` blocks of a memory-mapped ``.ap.bin``.

    speed 1 releases each chunk when its last sample would have been recorded (real time),
    speed X runs X times faster, speed 0 as fast as the reader asks. ``t_last`` is file time
    (sample index / rate), the recording's own clock.
    """

    def __init__(self, bin_path: str | Path, chunk_ms: float, speed: float):
        self.bin_path = Path(bin_path)
        self.chunk_ms = chunk_ms
        self.speed = speed
        self.stats = SourceStats()
        self._rec: SpikeGLXRecording | None = None
        self._next = 0
        self._chunk = 0
        self._t0 = 0.0

    @property
    def recording(self) -> SpikeGLXRecording:
        if self._rec is None:
            raise RuntimeError("open() the source first")
        return self._rec

    def open(self) -> StreamInfo:
        self._rec = open_recording(self.bin_path)
        self._chunk = max(1, ms_to_samples(self.chunk_ms, self._rec.sample_rate_hz))
        self._t0 = time.perf_counter()
        return StreamInfo(
            name=self.bin_path.name.split(".")[0],
            n_channels=self._rec.n_ap,
            sample_rate_hz=self._rec.sample_rate_hz,
            meta_path=meta_path_for(self.bin_path),
            raw_path=self.bin_path,
            raw_n_channels=self._rec.n_saved,
        )

    @property
    def finished(self) -> bool:
        return self._rec is not None and self._next >= self._rec.n_samples

    def read(self, timeout_s: float) -> Chunk | None:
        rec = self.recording
        if self.finished:
            return None
        stop = min(self._next + self._chunk, rec.n_samples)
        if self.speed > 0:
            due = self._t0 + stop / rec.sample_rate_hz / self.speed
            wait = due - time.perf_counter()
            if wait > timeout_s:
                time.sleep(timeout_s)
                return None
            if wait > 0:
                time.sleep(wait)
        data = rec.read_uv(self._next, stop)
        chunk = Chunk(data, self._next, (stop - 1) / rec.sample_rate_hz)
        self.stats.samples_in += data.shape[0]
        self.stats.chunks += 1
        self._next = stop
        return chunk

    def close(self) -> None:
        self._rec = None


def paced_send(
    blocks: Iterable[np.ndarray],
    send: Callable[[np.ndarray, int, float], None],
    sample_rate_hz: float,
    speed: float,
    clock: Callable[[], float] = time.monotonic,
    stop: threading.Event | None = None,
) -> int:
    """Send consecutive blocks of samples, each when its last sample would have been recorded
    (at ``speed`` x real time; 0 = no pacing). ``send(block, first_sample, t_last)`` gets the
    recording time of the block's last sample: ``clock()`` at the start + index / rate (so
    timestamps stay one sample period apart at any speed). Returns the samples sent."""
    t0 = time.perf_counter()
    c0 = clock()
    sent = 0
    for block in blocks:
        if stop is not None and stop.is_set():
            break
        end = sent + block.shape[0]
        if speed > 0:
            wait = t0 + end / sample_rate_hz / speed - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        send(block, sent, c0 + (end - 1) / sample_rate_hz)
        sent = end
    return sent


def recording_blocks(rec: SpikeGLXRecording, chunk_samples: int, as_int16: bool) -> Iterator[np.ndarray]:
    """Consecutive AP blocks of a recording: raw int16 or float32 uV."""
    for a in range(0, rec.n_samples, chunk_samples):
        b = min(a + chunk_samples, rec.n_samples)
        yield np.ascontiguousarray(rec.samples[a:b, : rec.n_ap]) if as_int16 else rec.read_uv(a, b)


def open_sender(target: str, n_channels: int, sample_rate_hz: float, chunk_samples: int):
    """``lsl:NAME`` or ``zmq://HOST:PORT`` -> (sender, the clock its timestamps use)."""
    if target.startswith("lsl:"):
        import pylsl

        from rtclass.ingest.lsl import LslRawSender

        if not target[4:]:
            raise InputError("--to lsl: needs a stream name, e.g. lsl:NP1")
        return LslRawSender(target[4:], n_channels, sample_rate_hz, chunk_samples), pylsl.local_clock
    if target.startswith("zmq://"):
        from rtclass.ingest.zmq import ZmqRawSender

        return ZmqRawSender("tcp://" + target[6:]), time.monotonic
    raise InputError(f"unknown replay target {target!r}; use lsl:NAME or zmq://127.0.0.1:PORT")


def replay_file(
    bin_path: str | Path,
    target: str,
    speed: float,
    chunk_ms: float,
    wait_for_subscriber_s: float,
    stop: threading.Event | None = None,
) -> int:
    """Publish a SpikeGLX recording as a live stream (``rtclass replay``). Waits up to
    ``wait_for_subscriber_s`` for a subscriber so that none of the recording is lost."""
    rec = open_recording(bin_path)
    chunk = max(1, ms_to_samples(chunk_ms, rec.sample_rate_hz))
    sender, clock = open_sender(target, rec.n_ap, rec.sample_rate_hz, chunk)
    # raw int16 goes out as is when one scale fits every channel (else as float32 uV)
    as_int16 = bool(np.all(rec.uv_per_bit == rec.uv_per_bit[0]))
    scale = float(rec.uv_per_bit[0]) if as_int16 else 1.0
    try:
        if not sender.wait_for_subscriber(wait_for_subscriber_s):
            raise InputError(
                f"nobody subscribed to {target} within {wait_for_subscriber_s:g} s; "
                "start `rtclass run` first or wait longer"
            )
        return paced_send(
            recording_blocks(rec, chunk, as_int16),
            lambda block, first, t_last: sender.send(block, first, t_last, scale),
            rec.sample_rate_hz,
            speed,
            clock,
            stop,
        )
    finally:
        sender.close()
