"""Open Ephys GUI "ZMQ Interface" plugin as a source (``--source openephys://HOST:PORT``).

Format (plugin 0.3+ / GUI 0.6+ and 1.0, from the plugin's source): the plugin binds a PUB socket
on the data port and a REP socket on data port + 1. Each continuous-data message is three frames:
``b"DATA\\0"``, a JSON header, and ``num_samples`` little-endian float32 values of ONE channel
(normally uV). The header holds ``message_num`` (a counter over all messages, from 1 when
acquisition starts), ``type`` = "data", ``content`` = {``stream``, ``channel_num`` (0-based within
the stream), ``num_samples``, ``sample_num`` (first sample of the block), ``sample_rate``} and
``data_size`` (bytes of frame 3). All channels of one block are sent in a row with the same
``sample_num``. Events (``b"EVENT\\0"``) are ignored here. Clients send a heartbeat
``{"application", "uuid", "type": "heartbeat"}`` to the REP port every 2 s and read the reply
before the next (it only lists the client in the GUI; data flows regardless).

Reassembly: messages are collected per ``sample_num`` into ``[num_samples, n_channels]`` blocks;
a block is released when all channels arrived, or, incomplete, once a later block is complete
(missing channels are zero-filled and counted as malformed). Messages with bad frames, JSON,
sizes or channel numbers, and blocks older than the last released one, are counted and dropped;
a jump in ``sample_num`` between released blocks is a gap. When ``message_num`` and
``sample_num`` both go back (acquisition stopped and started again in the GUI), the new stream is
a new segment (``restarts``) continuing this run's timeline.
"""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import zmq

from rtclass.errors import InputError, StreamNotFoundError
from rtclass.ingest.base import SourceStats, StreamInfo
from rtclass.ingest.chunk import Chunk

HEARTBEAT_S = 2.0
#: blocks kept open while waiting for their channels
MAX_OPEN_BLOCKS = 4
#: messages a SUB socket may queue (384 channels x ~30 blocks/s x buffer seconds)
MESSAGES_PER_S = 384 * 40


class _Block:
    __slots__ = ("data", "seen", "n")

    def __init__(self, n_samples: int, n_channels: int):
        self.data = np.zeros((n_samples, n_channels), np.float32)
        self.seen = np.zeros(n_channels, bool)
        self.n = 0


class OpenEphysSource:
    def __init__(self, address: str, n_channels: int, sample_rate_hz: float, resolve_timeout_s: float, buffer_s: float):
        self.address = address  # tcp://host:port of the data socket
        host, port = address.rsplit(":", 1)
        self.heartbeat_address = f"{host}:{int(port) + 1}"
        self.n_channels = n_channels
        self.sample_rate_hz = sample_rate_hz
        self.resolve_timeout_s = resolve_timeout_s
        self.buffer_s = buffer_s
        self.stats = SourceStats()
        self._open: dict[int, _Block] = {}
        self._next: int | None = None  # sample expected next, on this run's timeline
        self._offset = 0  # this run's timeline minus the GUI's sample_num (moves at each restart)
        self._last_msg = 0
        self._ready: list[Chunk] = []
        self._uuid = str(uuid.uuid4())
        self._hb_due = 0.0
        self._hb_waiting = False
        self.stream = None

    def open(self) -> StreamInfo:
        ctx = zmq.Context.instance()
        self._sock = ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RCVHWM, int(self.buffer_s * MESSAGES_PER_S))
        self._sock.setsockopt(zmq.SUBSCRIBE, b"DATA")
        self._sock.connect(self.address)
        self._new_heartbeat_socket()
        deadline = time.monotonic() + self.resolve_timeout_s
        while not self._ready:
            if time.monotonic() > deadline:
                seen = sorted({c for b in self._open.values() for c in np.flatnonzero(b.seen)})
                if seen:
                    raise InputError(
                        f"Open Ephys at {self.address} sends channels {seen[0]}..{seen[-1]} ({len(seen)} channels) "
                        f"but the config expects {self.n_channels}; "
                        "select the AP channels in the plugin or set [probe] n_channels"
                    )
                raise StreamNotFoundError(
                    f"no Open Ephys data from {self.address} within {self.resolve_timeout_s:g} s; is the ZMQ Interface "
                    "plugin in the signal chain, acquisition running, and the port right?"
                )
            self._receive(0.05)
        return StreamInfo(self.stream or "openephys", self.n_channels, self.sample_rate_hz)

    def _new_heartbeat_socket(self) -> None:
        self._hb = zmq.Context.instance().socket(zmq.REQ)
        self._hb.setsockopt(zmq.LINGER, 0)
        self._hb.connect(self.heartbeat_address)
        self._hb_waiting = False

    def _heartbeat(self) -> None:
        now = time.monotonic()
        if self._hb_waiting and self._hb.poll(0):
            self._hb.recv()
            self._hb_waiting = False
        if now < self._hb_due:
            return
        if self._hb_waiting:  # no reply in time: REQ is stuck in its lock-step, start over
            self._hb.close()
            self._new_heartbeat_socket()
        self._hb.send(json.dumps({"application": "rtclass", "uuid": self._uuid, "type": "heartbeat"}).encode())
        self._hb_waiting = True
        self._hb_due = now + HEARTBEAT_S

    def _bad(self, kind: str, message: str) -> None:
        self.stats.bad_message(kind, f"Open Ephys {self.address}: {message}")

    def _receive(self, timeout_s: float) -> None:
        self._heartbeat()
        if not self._sock.poll(int(timeout_s * 1000)):
            return
        while True:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._handle(frames)

    def _handle(self, frames: list[bytes]) -> None:
        if len(frames) != 3 or frames[0].rstrip(b"\x00") != b"DATA":
            self._bad("frames", f"dropped a message of {len(frames)} frames (expected DATA, header, samples)")
            return
        try:
            head = json.loads(frames[1])
            c = head["content"]
            ch, n, first = int(c["channel_num"]), int(c["num_samples"]), int(c["sample_num"])
            msg = int(head.get("message_num", head.get("message_no", 0)))
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as exc:
            self._bad("header", f"dropped a message with an unreadable header ({exc!r})")
            return
        if (
            msg
            and msg < self._last_msg - self.n_channels
            and self._next is not None
            and first + self._offset < self._next
        ):
            self._restart(first)  # message and sample numbers both went back: acquisition restarted
        first += self._offset
        if msg and msg <= self._last_msg:
            self._bad("order", f"message {msg} arrived after message {self._last_msg}")
        self._last_msg = max(self._last_msg, msg)
        self.stream = c.get("stream", self.stream)
        if len(frames[2]) != 4 * n:
            self._bad("size", f"channel {ch} block at {first}: {len(frames[2])} bytes for {n} samples")
            return
        if not 0 <= ch < self.n_channels:
            self._bad("channel", f"channel {ch} is outside 0..{self.n_channels - 1}")
            return
        if self._next is not None and first < self._next:
            self._bad("late", f"a block at sample {first} arrived after sample {self._next} was released")
            return
        block = self._open.get(first)
        if block is None:
            block = self._open[first] = _Block(n, self.n_channels)
        if block.data.shape[0] != n:
            self._bad("size", f"channel {ch} has {n} samples in a block of {block.data.shape[0]}")
            return
        if not block.seen[ch]:
            block.n += 1
        block.seen[ch] = True
        block.data[:, ch] = np.frombuffer(frames[2], "<f4")
        self._release()

    def _restart(self, first_raw: int) -> None:
        """The GUI restarted acquisition (message_num and sample_num start again): the old stream's
        open blocks go out as they are, and the new one continues this run's timeline."""
        self._release(everything=True)
        self.stats.new_segment(
            self._next, f"Open Ephys {self.address}: acquisition restarted (sample {first_raw} after {self._next})"
        )
        self._offset = self._next - first_raw
        self._last_msg = 0

    def _release(self, everything: bool = False) -> None:
        """Hand out blocks in sample order: complete ones, and incomplete ones once a later block
        completes or too many are open (or, with ``everything``, all)."""
        while self._open:
            first = min(self._open)
            block = self._open[first]
            later_complete = any(b.n == self.n_channels for s, b in self._open.items() if s > first)
            waiting = block.n < self.n_channels and not later_complete and len(self._open) <= MAX_OPEN_BLOCKS
            if waiting and not everything:
                return
            del self._open[first]
            if block.n < self.n_channels and self._next is None:  # the very first block: a wrong setup
                seen = np.flatnonzero(block.seen)
                raise InputError(
                    f"Open Ephys at {self.address} sends channels {seen.min()}..{seen.max()} ({seen.size} channels) "
                    f"but the config expects {self.n_channels}; "
                    "select the AP channels in the plugin or set [probe] n_channels"
                )
            if block.n < self.n_channels:
                missing = self.n_channels - block.n
                self._bad("missing", f"block at sample {first} lacked {missing} channels (zero-filled)")
            n = block.data.shape[0]
            gap = 0
            if self._next is not None and first > self._next:
                gap = first - self._next
                self.stats.gaps += 1
                self.stats.samples_dropped += gap
                self.stats.incident("gap", f"Open Ephys {self.address}: {gap} samples missing before {first}")
            self._next = first + n
            self.stats.samples_in += n
            self.stats.chunks += 1
            self._ready.append(Chunk(block.data, first, (first + n - 1) / self.sample_rate_hz, gap))

    @property
    def finished(self) -> bool:
        return False

    def read(self, timeout_s: float) -> Chunk | None:
        if not self._ready:
            self._receive(timeout_s)
        return self._ready.pop(0) if self._ready else None

    def close(self) -> None:
        self._sock.close()
        self._hb.close()
