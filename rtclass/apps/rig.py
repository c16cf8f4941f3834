"""``rtclass rig RIG.toml``: one ``rtclass run`` process per probe, supervised, with one combined
unit table.

Each probe is its own process (its own source, ZMQ port and output folder), so a probe that
crashes takes no other down, and each gets a core to itself where there are enough. The
supervisor restarts a probe that exits with an error (up to ``max_restarts`` times; each restart
writes to a new folder, ``<out>/<id>-restart<N>``), ends a probe that finished (its file ended or
its duration was reached), and subscribes to every probe's ``units`` and ``status`` topics: it
republishes, on ``[rig] address``, one combined unit table (topic ``units``: every unit with its
``probe`` id) and the rig's health (topic ``status``: each probe's counters, state and restarts).
Each probe's own address stays plain wire format v1, so a decoder subscribes to the probes it
wants and tells them apart by address (``rtclass.client.RigSubscriber``).

A rig file::

    [rig]
    out = "runs/session1"                 # each probe writes to <out>/<probe id>
    address = "tcp://127.0.0.1:5580"      # combined unit table and health
    max_restarts = 3

    [[probe]]
    id = "imec0"
    source = "lsl:NP1-imec0"
    config = "np1-lsl"                    # optional: a shipped config name or a TOML file
    zmq_address = "tcp://127.0.0.1:5561"  # this probe's wire format v1
    # optional: templates = "ks/imec0", model = "m.onnx", duration_s = 600, speed = 1
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from rtclass.config import load_config
from rtclass.errors import ConfigError
from rtclass.ingest.zmq import bind_socket
from rtclass.publish.wire import STATUS_TOPIC, UNITS_TOPIC
from rtclass.publish.zmq_pub import connect_address_for

log = logging.getLogger("rtclass.rig")

DEFAULT_RIG_ADDRESS = "tcp://127.0.0.1:5580"
DEFAULT_MAX_RESTARTS = 3
#: how often the supervisor checks its probes and republishes the combined table and health
SUPERVISE_INTERVAL_S = 0.5
#: how long a probe may take to stop after SIGINT before it is killed
STOP_TIMEOUT_S = 60.0
#: a probe that ran at least this long before it crashed gets its restart budget back
STABLE_AFTER_S = 300.0
RIG_KEYS = {"out", "address", "max_restarts"}
PROBE_KEYS = {"id", "source", "config", "zmq_address", "templates", "model", "duration_s", "speed"}


@dataclass(frozen=True)
class ProbeSpec:
    id: str
    source: str
    zmq_address: str
    config: str | None = None
    templates: str | None = None
    model: str | None = None
    duration_s: float | None = None
    speed: float | None = None


@dataclass(frozen=True)
class RigSpec:
    out: Path
    probes: tuple[ProbeSpec, ...]
    address: str = DEFAULT_RIG_ADDRESS
    max_restarts: int = DEFAULT_MAX_RESTARTS


def load_rig(path: str | Path) -> RigSpec:
    """Read and check a rig file; a ConfigError says what is wrong and where."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read rig file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"rig file {path} is not valid TOML: {exc}") from exc
    return rig_from_dict(doc, base=path.parent, where=str(path))


def rig_from_dict(doc: dict[str, Any], base: Path = Path("."), where: str = "the rig") -> RigSpec:
    unknown = set(doc) - {"rig", "probe"}
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}; a rig has [rig] and [[probe]]")
    rig = doc.get("rig", {})
    _no_unknown_keys(rig, RIG_KEYS, f"{where}: [rig]")
    if "out" not in rig:
        raise ConfigError(f"{where}: [rig] out is missing: the folder each probe writes into (<out>/<probe id>)")
    probes = doc.get("probe", [])
    if not isinstance(probes, list) or not probes:
        raise ConfigError(f"{where}: no [[probe]] tables; give one per probe (id, source, zmq_address)")
    specs = []
    for i, p in enumerate(probes, 1):
        _no_unknown_keys(p, PROBE_KEYS, f"{where}: probe {i}")
        for key in ("id", "source", "zmq_address"):
            if not p.get(key):
                raise ConfigError(f"{where}: probe {i} has no {key}")
        if p["zmq_address"].endswith(":*"):
            raise ConfigError(f"{where}: probe {p['id']}: zmq_address needs a fixed port (the rig subscribes to it)")
        config = p.get("config")
        if config is not None and not Path(config).is_absolute() and (base / config).is_file():
            config = str(base / config)
        if config is not None:
            load_config(config)  # a bad probe config fails now, not in a child
        specs.append(ProbeSpec(**{**p, "config": config}))
    for key in ("id", "zmq_address", "source"):
        values = [getattr(s, key) for s in specs]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ConfigError(f"{where}: two probes share the {key} {', '.join(map(str, twice))}; each needs its own")
    address = rig.get("address", DEFAULT_RIG_ADDRESS)
    if address in {s.zmq_address for s in specs}:
        raise ConfigError(f"{where}: [rig] address {address} is also a probe's zmq_address")
    out = Path(rig["out"])
    return RigSpec(
        out if out.is_absolute() else base / out,
        tuple(specs),
        address,
        int(rig.get("max_restarts", DEFAULT_MAX_RESTARTS)),
    )


def _no_unknown_keys(table: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


@dataclass
class ProbeProcess:
    """One probe's ``rtclass run`` and what the supervisor knows of it."""

    spec: ProbeSpec
    out_root: Path
    proc: subprocess.Popen | None = None
    state: str = "starting"  # starting, running, finished, failed, stopped
    restarts: int = 0
    started_at: float = 0.0
    exit_codes: list[int] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    units: list[dict] = field(default_factory=list)

    @property
    def out(self) -> Path:
        base = self.out_root / self.spec.id
        return base if self.restarts == 0 else base.with_name(f"{self.spec.id}-restart{self.restarts}")

    def command(self) -> list[str]:
        s = self.spec
        cmd = [str(Path(sys.executable).with_name("rtclass")), "run", "--source", s.source, "--out", str(self.out)]
        cmd += ["--zmq", s.zmq_address]
        for flag, value in (
            ("--config", s.config),
            ("--templates", s.templates),
            ("--model", s.model),
            ("--duration", s.duration_s),
            ("--speed", s.speed),
        ):
            if value is not None:
                cmd += [flag, str(value)]
        return cmd

    def start(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = self.out.with_name(self.out.name + ".log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT)
        self.started_at = time.monotonic()
        self.state = "running"

    def reap(self) -> int | None:
        """The exit code if the process ended since the last look."""
        if self.proc is None or self.state != "running":
            return None
        code = self.proc.poll()
        if code is not None:
            self._log.close()
            self.exit_codes.append(code)
        return code


class Rig:
    """Starts and supervises the probes; ``run(stop)`` until every probe has finished or failed,
    or ``stop`` is set."""

    def __init__(self, spec: RigSpec):
        self.spec = spec
        self.probes = {p.id: ProbeProcess(p, spec.out) for p in spec.probes}
        self._ctx = zmq.Context.instance()
        self._pub = bind_socket(self._ctx, zmq.PUB, spec.address, "the rig's combined publisher")
        self._subs: dict[zmq.Socket, str] = {}
        for pid, probe in self.probes.items():
            sub = self._ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, UNITS_TOPIC)
            sub.setsockopt(zmq.SUBSCRIBE, STATUS_TOPIC)
            sub.connect(connect_address_for(probe.spec.zmq_address))
            self._subs[sub] = pid
        self._poller = zmq.Poller()
        for sub in self._subs:
            self._poller.register(sub, zmq.POLLIN)

    def run(self, stop: threading.Event, on_health=None) -> dict[str, Any]:
        for probe in self.probes.values():
            probe.start()
            log.info("probe %s: %s", probe.spec.id, " ".join(probe.command()))
        next_publish = 0.0
        try:
            while not stop.is_set() and any(p.state == "running" for p in self.probes.values()):
                self._receive(SUPERVISE_INTERVAL_S)
                self._supervise()
                if time.monotonic() >= next_publish:
                    health = self.health()
                    self._publish(health)
                    if on_health is not None:
                        on_health(health)
                    next_publish = time.monotonic() + SUPERVISE_INTERVAL_S
        finally:
            self._stop_all()
            self._publish(self.health())
        return self.health()

    def _receive(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            for sock, _ in self._poller.poll(int(left * 1000)):
                while sock.poll(0):
                    frames = sock.recv_multipart()
                    if len(frames) != 2:
                        continue
                    topic, payload = frames
                    probe = self.probes[self._subs[sock]]
                    try:
                        doc = json.loads(payload)
                    except ValueError:
                        continue
                    if topic == STATUS_TOPIC:
                        probe.status = doc
                    elif topic == UNITS_TOPIC:
                        probe.units = doc.get("units", [])

    def _supervise(self) -> None:
        for probe in self.probes.values():
            code = probe.reap()
            if code is None:
                continue
            if code == 0:
                probe.state = "finished"
                log.info("probe %s finished", probe.spec.id)
                continue
            if time.monotonic() - probe.started_at >= STABLE_AFTER_S:
                budget_used = 0  # it ran for a while: this crash is not a crash loop
            else:
                budget_used = probe.restarts
            if budget_used >= self.spec.max_restarts:
                probe.state = "failed"
                log.error(
                    "probe %s exited with code %d; %d restarts used: given up (see %s)",
                    probe.spec.id,
                    code,
                    probe.restarts,
                    probe.log_path,
                )
                continue
            probe.restarts += 1
            log.warning(
                "probe %s exited with code %d: restart %d, writing to %s (its log: %s)",
                probe.spec.id,
                code,
                probe.restarts,
                probe.out,
                probe.log_path,
            )
            probe.start()

    def health(self) -> dict[str, Any]:
        """Per probe: its state, restarts, exit codes, output folder and latest counters."""
        return {
            "probes": {
                pid: {
                    "state": p.state,
                    "restarts": p.restarts,
                    "exit_codes": p.exit_codes,
                    "out": str(p.out),
                    "zmq_address": p.spec.zmq_address,
                    "units": len(p.units),
                    "status": p.status,
                }
                for pid, p in self.probes.items()
            }
        }

    def combined_units(self) -> dict[str, Any]:
        rows = [{**u, "probe": pid} for pid, p in self.probes.items() for u in p.units]
        return {"units": rows, "probes": {pid: p.spec.zmq_address for pid, p in self.probes.items()}}

    def _publish(self, health: dict[str, Any]) -> None:
        self._pub.send_multipart([UNITS_TOPIC, json.dumps(self.combined_units()).encode()])
        self._pub.send_multipart([STATUS_TOPIC, json.dumps(health).encode()])

    def _stop_all(self) -> None:
        running = [p for p in self.probes.values() if p.state == "running" and p.proc is not None]
        for p in running:
            p.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for p in running:
            try:
                p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
            p.reap()
            p.state = "stopped"

    def close(self) -> None:
        for sub in self._subs:
            sub.close()
        self._pub.close(linger=500)


def health_line(health: dict[str, Any]) -> str:
    """One line per probe for the terminal."""
    lines = []
    for pid, h in health["probes"].items():
        s = h["status"]
        lines.append(
            f"{pid}: {h['state']}, {s.get('data_s', 0):.1f} s, {h['units']} units, "
            f"{s.get('samples_dropped', 0)} dropped, {h['restarts']} restarts, "
            f"spike->publish p99 {s.get('publish_lag_p99_ms', 0):.1f} ms"
        )
    return " | ".join(lines)
