"""Lab Streaming Layer raw-data transport: inlet source and outlet sender.

LSL facts relied on (pylsl >= 1.18.2): ``set_config_content`` must run before any other LSL
call in the process; ``[multicast] ResolveScope``, ``[lab] KnownPeers`` and ``[ports] IPv6``
keep discovery and traffic on this machine; ``pull_chunk(dest_obj=...)`` writes into a
C-contiguous array of the stream's dtype and returns ``(None, timestamps)``; with ``timeout=0``
it returns at once with what is there; a pushed chunk's single timestamp is that of its last
sample, earlier ones are deduced from the nominal rate.
"""

from __future__ import annotations

import time

import numpy as np

from rtclass.errors import InputError, PublishError, StreamNotFoundError
from rtclass.ingest.base import SourceStats, StreamInfo
from rtclass.ingest.chunk import Chunk

#: keeps LSL discovery and data on this machine; small buffer reservations (a 384-channel
#: stream would otherwise reserve ~230 MB per outlet and inlet up front)
LOOPBACK_CONFIG = """[ports]
IPv6 = disable
[multicast]
ResolveScope = machine
[lab]
KnownPeers = {127.0.0.1}
[tuning]
OutletBufferReserveMs = 500
InletBufferReserveMs = 500
[log]
level = -2
"""
STREAM_TYPE = "Neuropixels"
#: how long a closing outlet waits for its consumers to take the last samples
CLOSE_DRAIN_S = 5.0
#: how much data an outlet keeps for a slow consumer
OUTLET_BUFFER_S = 10
#: how often an idle inlet is polled (the latency this adds is at most this)
POLL_INTERVAL_S = 0.0002
#: most samples pulled at once; larger batches arrive as several chunks
MAX_PULL_SAMPLES = 3000
#: after a jump in the timestamps: how long (s) the clock's lead over the sample count must stay
#: flat to be a loss, and how long samples are held at most before they are judged as they stand
LOSS_CONFIRM_S = 0.5
LOSS_DECIDE_MAX_S = 10.0
#: a stream quiet this long is looked for again by name (an outlet that restarted with a new source
#: id), at most this often; each look waits this long for answers (no data is flowing meanwhile)
RESOLVE_WHEN_QUIET_S = 1.0
RESOLVE_WAIT_S = 0.05
#: how fast the clock line may follow a sender's clock that runs slow against its nominal rate
#: (fraction of the data time: 200 ppm; crystal clocks are within tens)
MAX_CLOCK_DRIFT = 2e-4

_configured = False


def use_loopback_only() -> None:
    """Restrict LSL to this machine. Must run before any other LSL call in this process."""
    global _configured
    if _configured:
        return
    import pylsl

    pylsl.set_config_content(LOOPBACK_CONFIG)
    _configured = True


class LslSource:
    """Pulls a regular-rate LSL stream named ``name`` (float32 uV, or int16 with a known scale)."""

    def __init__(
        self,
        name: str,
        n_channels: int,
        sample_rate_hz: float,
        resolve_timeout_s: float,
        buffer_s: float,
        gap_tolerance_ms: float,
        int16_uv_per_bit: float,
    ):
        self.name = name
        self.n_channels = n_channels
        self.sample_rate_hz = sample_rate_hz
        self.resolve_timeout_s = resolve_timeout_s
        self.buffer_s = buffer_s
        self.gap_tolerance_s = gap_tolerance_ms / 1000
        self.int16_uv_per_bit = int16_uv_per_bit
        self.stats = SourceStats()
        self._inlet = None
        self._uid = self._source_id = ""
        self._format = None
        self._last_data = 0.0
        self._next_resolve = 0.0
        self._next = 0  # index of the next sample on this run's timeline (samples counted, plus losses)
        #: the stream clock time of sample 0 on this timeline, as the timestamps say; follows the
        #: sender's clock drift (``MAX_CLOCK_DRIFT``) and the earliest-stamped samples
        self._origin_ts: float | None = None
        #: samples held since a timestamp jump, until it is known whether samples were lost
        self._held: list[tuple[np.ndarray, np.ndarray]] = []
        self._held_since = 0.0
        self._lead_trace: list[tuple[float, float]] = []  # (wall time, clock lead of the last held sample)

    def open(self) -> StreamInfo:
        import pylsl

        found = pylsl.resolve_byprop("name", self.name, 1, self.resolve_timeout_s)
        if not found:
            raise StreamNotFoundError(
                f"no LSL stream named {self.name!r} found within {self.resolve_timeout_s:g} s; is the "
                "acquisition or `rtclass replay ... --to lsl:NAME` running? (`[source] resolve_timeout_s` waits longer)"
            )
        info = found[0]
        fmt = self._format = info.channel_format()
        problem = self._mismatch(info)
        if problem:
            raise InputError(problem)
        if fmt == pylsl.cf_float32:
            self._dtype, self._scale = np.float32, None
        elif fmt == pylsl.cf_int16:
            self._dtype, self._scale = np.int16, np.float32(self.int16_uv_per_bit)
        else:
            names = {
                pylsl.cf_double64: "double64",
                pylsl.cf_int32: "int32",
                pylsl.cf_int8: "int8",
                pylsl.cf_int64: "int64",
                pylsl.cf_string: "string",
            }
            raise InputError(
                f"LSL stream {self.name!r} carries {names.get(fmt, fmt)} samples; rtclass reads "
                "float32 (uV) or int16 (scaled by [source] int16_uv_per_bit)"
            )
        self._connect(info)
        self._buf = np.zeros((MAX_PULL_SAMPLES, self.n_channels), self._dtype)
        return StreamInfo(self.name, self.n_channels, self.sample_rate_hz)

    def _mismatch(self, info) -> str | None:
        """What about a stream does not fit the config (channels, rate), or None."""
        if info.channel_count() != self.n_channels:
            return (
                f"LSL stream {self.name!r} has {info.channel_count()} channels but the config expects "
                f"{self.n_channels}; set [probe] n_channels = {info.channel_count()} or stream the AP channels only"
            )
        if abs(info.nominal_srate() - self.sample_rate_hz) > 1e-6 * self.sample_rate_hz:
            return (
                f"LSL stream {self.name!r} runs at {info.nominal_srate():g} Hz but the config expects "
                f"{self.sample_rate_hz:g} Hz; set [probe] sample_rate_hz"
            )
        return None

    def _connect(self, info) -> None:
        import pylsl

        self._inlet = pylsl.StreamInlet(info, max_buflen=max(1, int(np.ceil(self.buffer_s))), recover=True)
        self._inlet.open_stream(timeout=self.resolve_timeout_s)
        self._uid, self._source_id = info.uid(), info.source_id()
        self._last_data = time.monotonic()
        self._next_resolve = 0.0

    def _is_another_source(self, info) -> bool:
        """Another acquisition, not this one back: another source id, or (without source ids, which
        liblsl cannot recover) another outlet. The same source id back is liblsl's to recover: its
        timestamps then tell how much was missed."""
        if self._source_id or info.source_id():
            return info.source_id() != self._source_id
        return info.uid() != self._uid

    def _look_for_a_new_stream(self) -> None:
        """While the stream is quiet, look (once per ``RESOLVE_WHEN_QUIET_S``) for a stream of the
        same name from another outlet (the acquisition restarted with a new source id, which the
        inlet's own recovery does not follow): a new segment, counted in ``restarts``, whose samples
        continue this run's timeline."""
        import pylsl

        now = time.monotonic()
        if now - self._last_data < RESOLVE_WHEN_QUIET_S or now < self._next_resolve:
            return
        self._next_resolve = now + RESOLVE_WHEN_QUIET_S
        found = [i for i in pylsl.resolve_byprop("name", self.name, 0, RESOLVE_WAIT_S) if self._is_another_source(i)]
        if not found:
            return
        info = found[0]
        problem = self._mismatch(info)
        if problem is None and info.channel_format() != self._format:
            problem = f"LSL stream {self.name!r} now carries another sample format than at start"
        if problem:
            self.stats.incident("restart-shape", f"a new outlet is not read: {problem} (then restart rtclass)")
            return
        self._inlet.close_stream()
        self._connect(info)
        self._origin_ts = None  # the new outlet's clock line starts at its first sample
        self.stats.new_segment(
            self._next, f"LSL stream {self.name!r} restarted (a new outlet, source id {info.source_id()!r})"
        )

    @property
    def finished(self) -> bool:
        return False

    def read(self, timeout_s: float) -> Chunk | None:
        """The next run of samples, indexed by counting them. LSL does not lose samples in transit,
        and a sender that stalls and then pushes its backlog stamps it late: a jump in the
        timestamps alone is no loss. The samples from a jump on are held while the stream's clock
        is ahead of the sample count by more than ``gap_tolerance_ms``: if that lead shrinks back
        (the backlog drains), it was a stall (counted in ``stalls``, nothing inserted); if it stays
        flat for ``LOSS_CONFIRM_S``, that many samples were lost (counted, and the timeline
        advances by them). Held samples are released by ``LOSS_DECIDE_MAX_S`` at the latest."""
        pulled = self._pull(timeout_s if not self._held else 0.0)
        if not self._held:
            if pulled is None:
                self._look_for_a_new_stream()
                return None
            self._last_data = time.monotonic()
            data, ts = pulled
            late = self._first_late(ts, self._next)
            if late < 0:
                return self._deliver(data, ts, 0)
            on_time = self._deliver(data[:late], ts[:late], 0) if late > 0 else None  # before the lead is measured
            self._held, self._held_since = [(data[late:], ts[late:])], time.monotonic()
            self._lead_trace = [(self._held_since, self._held_lead())]
            return on_time
        deadline = time.monotonic() + timeout_s
        while True:  # wait (up to timeout_s, like any read) until the held samples can be judged
            now = time.monotonic()
            if pulled is not None:
                self._held.append(pulled)
                self._lead_trace.append((now, self._held_lead()))
            lead_s = self._lead_trace[-1][1]
            if lead_s <= self.gap_tolerance_s:
                return self._release_stall()
            if now - self._held_since >= LOSS_DECIDE_MAX_S or self._lead_is_flat(now):
                return self._release_loss(lead_s)
            if now >= deadline:
                return None
            time.sleep(POLL_INTERVAL_S)
            pulled = self._pull(0.0)

    def _held_lead(self) -> float:
        """How far (s) the last held sample's timestamp is ahead of where its count puts it."""
        n_held = sum(s.size for _, s in self._held)
        return float(self._held[-1][1][-1] - self._expected_ts(self._next + n_held - 1))

    def _lead_is_flat(self, now: float) -> bool:
        """The clock's lead has not shrunk over the last ``LOSS_CONFIRM_S`` (no backlog draining)."""
        if now - self._held_since < LOSS_CONFIRM_S:
            return False
        before = [lead for t, lead in self._lead_trace if t <= now - LOSS_CONFIRM_S]
        return bool(before) and self._lead_trace[-1][1] > before[-1] - self.gap_tolerance_s / 2

    def _take_held(self) -> tuple[np.ndarray, np.ndarray]:
        data = np.concatenate([d for d, _ in self._held])
        ts = np.concatenate([s for _, s in self._held])
        self._held, self._lead_trace = [], []
        return data, ts

    def _release_stall(self) -> Chunk:
        data, ts = self._take_held()
        self.stats.stalls += 1
        self.stats.incident(
            "stall",
            f"LSL stream {self.name!r}: the sender stalled and caught up ({data.shape[0]} samples came late); "
            "no samples were lost",
        )
        return self._deliver(data, ts, 0)

    def _release_loss(self, lead_s: float) -> Chunk:
        data, ts = self._take_held()
        lost = int(round(lead_s * self.sample_rate_hz))
        self.stats.gaps += 1
        self.stats.samples_dropped += lost
        self.stats.incident(
            "gap",
            f"LSL stream {self.name!r}: {lost} samples missing (its clock stays {lead_s * 1000:.1f} ms ahead "
            "of the samples received)",
        )
        return self._deliver(data, ts, lost)

    def _pull(self, timeout_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(samples float32 uV, timestamps) of one pull, or None."""
        # non-blocking pulls, polled: a timed pull was seen to block for good inside liblsl after
        # its stream closed, which no timeout, signal or idle watchdog could end
        deadline = time.monotonic() + timeout_s
        while True:
            _, stamps = self._inlet.pull_chunk(timeout=0.0, max_samples=MAX_PULL_SAMPLES, dest_obj=self._buf)
            if stamps or time.monotonic() >= deadline:
                break
            time.sleep(POLL_INTERVAL_S)
        if not stamps:
            return None
        n = len(stamps)
        raw = self._buf[:n]
        data = raw.astype(np.float32) if self._scale is None else raw * self._scale
        return data, np.asarray(stamps)

    def _expected_ts(self, index):
        return self._origin_ts + index / self.sample_rate_hz

    def _first_late(self, ts: np.ndarray, first: int) -> int:
        """Index in ``ts`` of the first sample stamped later than its count allows, or -1."""
        if self._origin_ts is None:
            self._origin_ts = float(ts[0]) - first / self.sample_rate_hz
        ahead = ts - self._expected_ts(first + np.arange(ts.size))
        late = np.flatnonzero(ahead > self.gap_tolerance_s)
        return int(late[0]) if late.size else -1

    def _deliver(self, data: np.ndarray, ts: np.ndarray, gap: int) -> Chunk:
        first = self._next + gap
        n = ts.size
        # the clock line follows the earliest-stamped samples, and a slow drift of the sender's clock
        ahead = ts - self._expected_ts(first + np.arange(n))
        self._origin_ts += min(float(ahead.min()), n / self.sample_rate_hz * MAX_CLOCK_DRIFT)
        self._next = first + n
        self.stats.samples_in += n
        self.stats.chunks += 1
        return Chunk(np.ascontiguousarray(data, np.float32), first, float(ts[-1]), gap)

    def close(self) -> None:
        if self._inlet is not None:
            self._inlet.close_stream()
            self._inlet = None


class LslRawSender:
    """An LSL outlet for raw float32 uV data with ``desc/channels`` metadata."""

    def __init__(self, name: str, n_channels: int, sample_rate_hz: float, chunk_samples: int):
        import pylsl

        info = pylsl.StreamInfo(name, STREAM_TYPE, n_channels, sample_rate_hz, pylsl.cf_float32, f"rtclass-{name}")
        channels = info.desc().append_child("channels")
        for c in range(n_channels):
            ch = channels.append_child("channel")
            ch.append_child_value("label", f"AP{c}")
            ch.append_child_value("unit", "microvolts")
            ch.append_child_value("type", "AP")
        info.desc().append_child("acquisition").append_child_value("manufacturer", "rtclass replay")
        try:
            self._outlet = pylsl.StreamOutlet(info, chunk_samples, OUTLET_BUFFER_S)
        except Exception as exc:  # liblsl reports failures as RuntimeError
            raise PublishError(f"cannot create LSL outlet {name!r}: {exc}") from exc

    def wait_for_subscriber(self, timeout_s: float) -> bool:
        return self._outlet.wait_for_consumers(timeout_s)

    def send(self, samples: np.ndarray, first_sample: int, t_last: float, uv_per_unit: float = 1.0) -> None:
        """Push a block (float32 uV, or int16 times ``uv_per_unit``); ``t_last`` stamps its last
        sample. LSL carries no sample index: receivers count samples."""
        data = samples if samples.dtype == np.float32 and uv_per_unit == 1.0 else samples * np.float32(uv_per_unit)
        self._outlet.push_chunk(np.ascontiguousarray(data, np.float32), t_last)

    def close(self, drain_s: float = CLOSE_DRAIN_S) -> None:
        """Close the outlet once the consumers have disconnected (or after ``drain_s``): LSL drops
        whatever an outlet still holds when it is destroyed."""
        deadline = time.monotonic() + drain_s
        while self._outlet.have_consumers() and time.monotonic() < deadline:
            time.sleep(0.05)
        del self._outlet
