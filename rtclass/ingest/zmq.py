"""ZeroMQ raw-data transport (rtclass framing, see ``rawframe``): SUB source and PUB sender."""

from __future__ import annotations

import logging
import time

import numpy as np
import zmq

from rtclass.errors import InputError, PublishError, StreamNotFoundError
from rtclass.ingest import rawframe
from rtclass.ingest.base import SourceStats, StreamInfo
from rtclass.ingest.chunk import Chunk, join_contiguous

log = logging.getLogger("rtclass.zmq")

#: chunks a SUB socket may queue per second of buffer (1 ms chunks)
CHUNKS_PER_S = 1000
#: most samples one read returns: frames queued behind the first (a backlog after a stall) are
#: joined into one chunk up to this, so that the pipeline catches up in one pass, as with LSL
MAX_READ_SAMPLES = 3000
#: on close, how long a sender keeps trying to deliver what is still queued
CLOSE_LINGER_MS = 2000


#: hosts a bound socket serves only this machine from
LOOPBACK_HOSTS = ("127.", "localhost", "[::1]", "::1")


def serves_other_machines(address: str) -> bool:
    """Whether a ``tcp://HOST:PORT`` bind address is reachable from other machines (``ipc://`` and
    ``inproc://`` never are)."""
    if not address.startswith("tcp://"):
        return False
    host = address[len("tcp://") :].rsplit(":", 1)[0]
    return not host.startswith(LOOPBACK_HOSTS)


def bind_socket(ctx: zmq.Context, kind: int, address: str, what: str) -> zmq.Socket:
    if serves_other_machines(address):
        log.warning(
            "%s binds %s: reachable from other machines on the network (use tcp://127.0.0.1:PORT to serve "
            "this machine only)",
            what,
            address,
        )
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.bind(address)
    except zmq.ZMQError as exc:
        sock.close()
        hint = (
            "the port is in use: stop the other program or choose another port"
            if exc.errno == zmq.EADDRINUSE
            else "check the address (e.g. tcp://127.0.0.1:5560)"
        )
        raise PublishError(f"cannot bind {what} to {address}: {exc.strerror}; {hint}") from exc
    return sock


class ZmqSource:
    """Subscribes to rtclass raw frames at ``address`` (e.g. ``tcp://127.0.0.1:5570``)."""

    def __init__(self, address: str, n_channels: int, sample_rate_hz: float, resolve_timeout_s: float, buffer_s: float):
        self.address = address
        self.n_channels = n_channels
        self.sample_rate_hz = sample_rate_hz
        self.resolve_timeout_s = resolve_timeout_s
        self.buffer_s = buffer_s
        self.stats = SourceStats()
        self._ctx: zmq.Context | None = None
        self._sock: zmq.Socket | None = None
        self._next: int | None = None  # the next sample index expected on the sender's timeline
        self._last_first = 0  # the sender's index of the last frame's first sample
        #: the sender's index + this = the index on this run's timeline (changes at a restart)
        self._offset = 0
        self._pending: Chunk | None = None

    def open(self) -> StreamInfo:
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RCVHWM, int(self.buffer_s * CHUNKS_PER_S))
        self._sock.setsockopt(zmq.SUBSCRIBE, rawframe.TOPIC)
        try:
            self._sock.connect(self.address)
        except zmq.ZMQError as exc:
            raise InputError(f"cannot connect to {self.address}: {exc.strerror}") from exc
        # the first valid frame tells the stream's shape: check it before anything runs
        deadline = time.monotonic() + self.resolve_timeout_s
        while self._pending is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StreamNotFoundError(
                    f"no rtclass raw frames arrived from {self.address} within {self.resolve_timeout_s:g} s; "
                    "is `rtclass replay ... --to zmq://...` (or your acquisition) publishing there?"
                )
            frame = self._receive(left)
            if frame is not None and frame.samples.shape[1] != self.n_channels:
                raise InputError(
                    f"the stream at {self.address} has {frame.samples.shape[1]} channels but the config "
                    f"expects {self.n_channels}; set [probe] n_channels = {frame.samples.shape[1]} "
                    "or publish the AP channels only"
                )
            if frame is not None:
                self._pending = self._to_chunk(frame)
        return StreamInfo(
            name=self.address.rsplit(":", 1)[-1], n_channels=self.n_channels, sample_rate_hz=self.sample_rate_hz
        )

    def _receive(self, timeout_s: float) -> rawframe.RawFrame | None:
        assert self._sock is not None
        if not self._sock.poll(int(timeout_s * 1000)):
            return None
        frames = self._sock.recv_multipart(copy=True)
        try:
            return rawframe.decode(frames)
        except rawframe.FrameError as exc:
            self.stats.bad_message(exc.kind, f"dropped a malformed raw frame from {self.address}: {exc}")
            return None

    def _to_chunk(self, frame: rawframe.RawFrame) -> Chunk | None:
        n = frame.samples.shape[0]
        if frame.samples.shape[1] != self.n_channels:
            self.stats.bad_message(
                "channels", f"dropped a frame with {frame.samples.shape[1]} channels (expected {self.n_channels})"
            )
            return None
        gap = 0
        if self._next is not None and frame.first_sample < self._last_first:
            # the sender's index went back before its last frame: a new stream (the publisher or
            # the acquisition restarted). It continues this run's timeline where the old one ended.
            self.stats.new_segment(
                self._next + self._offset,
                f"the stream at {self.address} restarted (sample {frame.first_sample} after {self._next})",
            )
            self._offset += self._next - frame.first_sample
        elif self._next is not None:
            if frame.first_sample < self._next:
                self.stats.bad_message(
                    "order",
                    f"dropped a repeated or out-of-order frame (sample {frame.first_sample}, expected {self._next})",
                )
                return None
            gap = frame.first_sample - self._next
            if gap:
                self.stats.gaps += 1
                self.stats.samples_dropped += gap
                self.stats.incident(
                    "gap",
                    f"{gap} samples missing before sample {frame.first_sample} (sender or network dropped frames)",
                )
        self._next = frame.first_sample + n
        self._last_first = frame.first_sample
        self.stats.samples_in += n
        self.stats.chunks += 1
        return Chunk(frame.microvolts(), frame.first_sample + self._offset, frame.t_last, gap)

    @property
    def finished(self) -> bool:
        return False

    def read(self, timeout_s: float) -> Chunk | None:
        """The next frame, joined with the contiguous frames already queued behind it (up to
        ``MAX_READ_SAMPLES``); a gap or a malformed frame ends the join."""
        if self._pending is not None:
            chunk, self._pending = self._pending, None
        else:
            frame = self._receive(timeout_s)
            chunk = None if frame is None else self._to_chunk(frame)
        if chunk is None:
            return None
        joined, self._pending = join_contiguous(chunk, self._next_queued, MAX_READ_SAMPLES)
        return joined

    def _next_queued(self, samples_so_far: int) -> Chunk | None:
        """The next valid frame already queued, as a chunk (malformed ones are counted and skipped)."""
        while (frame := self._receive(0.0)) is not None:
            chunk = self._to_chunk(frame)
            if chunk is not None:
                return chunk
        return None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class ZmqRawSender:
    """Publishes raw frames on an XPUB socket bound at ``address``; knows when a subscriber joined."""

    def __init__(self, address: str):
        self.address = address
        self._ctx = zmq.Context.instance()
        self._sock = bind_socket(self._ctx, zmq.XPUB, address, "the raw-data publisher")
        self._subscribers = 0

    def wait_for_subscriber(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._subscribers == 0:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sock.poll(int(left * 1000)):
                return False
            msg = self._sock.recv()
            if msg[:1] == b"\x01":
                self._subscribers += 1
        return True

    def send(self, samples: np.ndarray, first_sample: int, t_last: float, uv_per_unit: float) -> None:
        self._sock.send_multipart(rawframe.encode(samples, first_sample, t_last, uv_per_unit), copy=False)

    def close(self) -> None:
        self._sock.close(linger=CLOSE_LINGER_MS)
