"""What a decoder imports to receive rtclass's labeled spikes: numpy and pyzmq only.

    from rtclass.client import Subscriber
    with Subscriber("tcp://127.0.0.1:5560", cell_types=["PkC_cs"]) as sub:
        for batch in sub:                    # numpy records: sample, unit, channel, cell_type, confidence, t_source
            print(batch["sample"], batch["unit"])

``Subscriber`` selects cell types by topic prefix (wire format v1, see ``rtclass.publish.wire``)
and keeps ``sub.units`` (a ``UnitTable``) current from the ``units`` topic; ``counts()`` reads the
binned counts published on ``counts/<cell_type>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import zmq

from rtclass.publish.wire import CELL_TYPE_NAMES, COUNTS_DTYPE, COUNTS_PREFIX, SPIKES_PREFIX, UNITS_TOPIC, decode_spikes


class SubscriberError(RuntimeError):
    """The publisher is unreachable or sends something that is not rtclass's wire format."""


@dataclass
class UnitTable:
    """The latest unit table: per unit id, its peak channel, position, amplitude, rate, label."""

    units: dict[int, dict] = field(default_factory=dict)
    sample: int = 0

    def update(self, payload: bytes) -> None:
        doc = json.loads(payload)
        self.units = {int(u["id"]): u for u in doc.get("units", [])}
        self.sample = int(doc.get("sample", 0))

    def of_type(self, cell_type: str) -> list[int]:
        """Ids of the units labelled ``cell_type`` that still get spikes (not merged into another)."""
        return sorted(
            u for u, row in self.units.items() if row.get("cell_type") == cell_type and row.get("merged_into") is None
        )

    def channels_for(
        self, cell_type: str, radius_um: float = 0.0, positions_um: np.ndarray | None = None
    ) -> np.ndarray:
        """Peak channels of the units labelled ``cell_type``; with ``radius_um`` and the probe's
        contact positions, also every channel within that radius of them."""
        if cell_type not in CELL_TYPE_NAMES:
            raise ValueError(f"unknown cell type {cell_type!r}; known: {', '.join(CELL_TYPE_NAMES)}")
        peaks = np.array(sorted({self.units[u]["peak_channel"] for u in self.of_type(cell_type)}), dtype=np.int64)
        if radius_um <= 0 or positions_um is None or peaks.size == 0:
            return peaks
        d = np.sqrt(((positions_um[:, None, :] - positions_um[None, peaks, :]) ** 2).sum(-1))
        return np.flatnonzero((d <= radius_um).any(1))


class Subscriber:
    """Spikes of the chosen cell types (all by default) and/or units, as numpy record batches."""

    def __init__(
        self,
        address: str = "tcp://127.0.0.1:5560",
        cell_types: list[str] | None = None,
        units: list[int] | None = None,
        counts: bool = False,
        timeout_s: float = 10.0,
    ):
        for t in cell_types or []:
            if t not in CELL_TYPE_NAMES:
                raise ValueError(f"unknown cell type {t!r}; known: {', '.join(CELL_TYPE_NAMES)}")
        self.address = address
        self.units_wanted = None if units is None else np.asarray(units)
        self.timeout_s = timeout_s
        self.units = UnitTable()
        self.counts_latest: dict[str, np.ndarray] = {}
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(address)
        for t in cell_types or [""]:
            self._sock.setsockopt(zmq.SUBSCRIBE, SPIKES_PREFIX + t.encode())
        self._sock.setsockopt(zmq.SUBSCRIBE, UNITS_TOPIC)
        if counts:
            for t in cell_types or [""]:
                self._sock.setsockopt(zmq.SUBSCRIBE, COUNTS_PREFIX + t.encode())

    def receive(self, timeout_s: float | None = None) -> np.ndarray | None:
        """The next spike batch (None if only table/count messages or nothing arrived in time)."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        if not self._sock.poll(int(timeout * 1000)):
            return None
        frames = self._sock.recv_multipart()
        if len(frames) != 2:
            raise SubscriberError(f"a message of {len(frames)} frames from {self.address}: not rtclass wire format v1")
        topic, payload = frames
        if topic == UNITS_TOPIC:
            self.units.update(payload)
            return None
        if topic.startswith(COUNTS_PREFIX):
            self.counts_latest[topic[len(COUNTS_PREFIX) :].decode()] = np.frombuffer(payload, COUNTS_DTYPE)
            return None
        batch = decode_spikes(payload)
        if self.units_wanted is not None:
            batch = batch[np.isin(batch["unit"], self.units_wanted)]
        return batch

    def __iter__(self) -> Iterator[np.ndarray]:
        """Spike batches until ``timeout_s`` passes with nothing at all arriving."""
        quiet_since = time.monotonic()
        while True:
            batch = self.receive(min(self.timeout_s, 0.2))
            if batch is not None and batch.size:
                quiet_since = time.monotonic()
                yield batch
            elif batch is None and time.monotonic() - quiet_since > self.timeout_s:
                raise SubscriberError(
                    f"nothing from {self.address} for {self.timeout_s:g} s: is `rtclass run` publishing there?"
                )
            elif batch is not None:
                quiet_since = time.monotonic()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RigSubscriber:
    """Spikes from several probes at once, each from its own address (each probe's stream is plain
    wire format v1, so a decoder tells probes apart by where a batch came from):

        with RigSubscriber({"imec0": "tcp://127.0.0.1:5561", "imec1": "tcp://127.0.0.1:5562"},
                           cell_types=["PkC_cs"]) as rig:
            for probe, batch in rig:
                print(probe, batch["sample"], batch["unit"])

    ``rig.units[probe]`` is that probe's latest unit table. Unit ids and sample indices are per
    probe (each probe has its own timeline); ``t_source`` is each source's clock."""

    def __init__(self, probes: dict[str, str], cell_types: list[str] | None = None, timeout_s: float = 10.0):
        if not probes:
            raise ValueError("no probes given: pass {probe id: address}")
        self.timeout_s = timeout_s
        self._subs = {pid: Subscriber(addr, cell_types=cell_types, timeout_s=timeout_s) for pid, addr in probes.items()}
        self._poller = zmq.Poller()
        self._probe_of = {}
        for pid, sub in self._subs.items():
            self._poller.register(sub._sock, zmq.POLLIN)
            self._probe_of[sub._sock] = pid

    @property
    def units(self) -> dict[str, UnitTable]:
        return {pid: sub.units for pid, sub in self._subs.items()}

    def receive(self, timeout_s: float | None = None) -> tuple[str, np.ndarray] | None:
        """The next (probe id, spike batch), or None if only tables arrived or nothing in time."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        for sock, _ in self._poller.poll(int(timeout * 1000)):
            pid = self._probe_of[sock]
            batch = self._subs[pid].receive(0)
            if batch is not None:
                return pid, batch
        return None

    def __iter__(self) -> Iterator[tuple[str, np.ndarray]]:
        quiet_since = time.monotonic()
        while True:
            got = self.receive(min(self.timeout_s, 0.2))
            if got is not None and got[1].size:
                quiet_since = time.monotonic()
                yield got
            elif time.monotonic() - quiet_since > self.timeout_s:
                raise SubscriberError(f"no spikes from any of {', '.join(self._subs)} for {self.timeout_s:g} s")

    def close(self) -> None:
        for sub in self._subs.values():
            sub.close()

    def __enter__(self) -> RigSubscriber:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
