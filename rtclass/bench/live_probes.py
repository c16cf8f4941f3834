"""Several live probes on one machine, measured (not extrapolated): N concurrent `rtclass run`
processes, each fed by its own `rtclass replay` of the same simulated 384-channel recording over
ZMQ at real time, optionally beside other busy processes (standing in for acquisition software or
a decoder). Per probe: units found, samples dropped, discovery rounds run and skipped, CPU seconds
per data second (the whole run, and the steady state while data flows split by thread; the run
and its clustering child), spike -> labelled event p50/p99 as a plain ZMQ subscriber per probe
receives them, and the largest N whose probes all keep real time without dropping a sample (and
with p99 <= 5 ms). Units found are compared with those of one probe alone (N 1, no busy process).

Used by ``rtclass bench`` (full and quick modes) and ``benchmarks/bench_live_probes.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from rtclass.publish.wire import SPIKES_PREFIX, decode_spikes

FIRST_PORT = 6100
#: seconds a run may take beyond its data (start-up, drain, writing files)
GRACE_S = 60.0
BUSY_LOOP = "while True: pass"
#: the rtclass command line, in this interpreter
RTCLASS = [sys.executable, "-m", "rtclass.cli"]
#: every probe replays the same recording, so that each can be compared with it alone
RECORDING_SEED = 100
#: spike -> labelled event, the target of a rig
P99_TARGET_MS = 5.0


def _simulate(seed: int, duration_s: float, folder: Path) -> Path:
    out = folder / f"probe_seed{seed}_{duration_s:g}s"  # a folder reused for another duration simulates again
    path = out / "rtclass_sim.ap.bin"
    if not path.exists():
        subprocess.run(
            [*RTCLASS, "simulate", "--out", str(out), "--duration", str(duration_s), "--seed", str(seed)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


def _config(folder: Path, index: int, run_settings: tuple[str, ...] = (), sections: tuple[str, ...] = ()) -> Path:
    """Probe ``index``'s config; ``run_settings``: extra ``[run]`` lines (``KEY = VALUE``, TOML),
    ``{probe}`` replaced by the probe's index (e.g. ``cpu_cores = "{probe}"``); ``sections``:
    ``SECTION.KEY = VALUE`` settings of other sections."""
    cfg = folder / f"probe{index}.toml"
    extra = "".join(line.replace("{probe}", str(index)) + "\n" for line in run_settings)
    for item in sections:
        key, value = item.split("=", 1)
        section, name = key.strip().split(".", 1)
        extra += f"[{section}]\n{name} = {value.strip()}\n"
    cfg.write_text(
        f'[publish]\nzmq_address = "{_publish_address(index)}"\nlsl = false\n[run]\nidle_timeout_s = 5.0\n{extra}'
    )
    return cfg


def _wait_rusage(proc: subprocess.Popen, timeout_s: float) -> float:
    """CPU seconds (user + system) of a finished child and the children it waited for."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        time.sleep(0.2)
    proc.kill()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
#: the steady-state CPU window starts this long after every probe published its first spikes
#: (the first discovery rounds) and ends at least this long before their data ends
STEADY_MARGIN_S = 5.0


def _stat_fields(path: Path) -> tuple[str, list[str]] | None:
    """(name, fields after the name) of a /proc stat file, None if it is gone."""
    try:
        raw = path.read_text()
    except OSError:
        return None
    return raw.split("(", 1)[1].rsplit(")", 1)[0], raw.rsplit(")", 1)[1].split()


def _cpu_s(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def _thread_kind(pid: int, tid: int, name: str) -> str:
    """Which part of an ``rtclass run`` (process ``pid``) its thread ``tid`` (named ``name``) is."""
    if tid == pid:
        return "main_thread"
    if name.startswith("ZMQbg"):
        return "zmq_io_threads"
    return "other_threads"


def _run_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of a running ``rtclass run``, split into its main (hot
    path) thread, ZeroMQ's I/O threads, its other threads (labeller, LSL, discovery's feeder) and
    its live descendant processes (clustering), from /proc; all 0 where /proc is not there."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        found = _stat_fields(stat)
        if found is not None:
            children.setdefault(int(found[1][1]), []).append(int(stat.parent.name))
    out = {"main_thread": 0.0, "zmq_io_threads": 0.0, "other_threads": 0.0, "child_processes": 0.0}
    for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
        found = _stat_fields(task / "stat")
        if found is not None:
            name, fields = found
            out[_thread_kind(pid, int(task.name), name)] += _cpu_s(fields)
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found = _stat_fields(Path(f"/proc/{child}/stat"))
        if found is not None:
            out["child_processes"] += _cpu_s(found[1])
        todo += children.get(child, [])
    return out


def _publish_address(index: int) -> str:
    return f"tcp://127.0.0.1:{FIRST_PORT + 100 + index}"


class SpikeListener:
    """A plain ZMQ SUB on one probe's spikes (a decoder's view): the delay from each spike's
    source time (the replay's ``time.monotonic`` clock, shared by the processes of this
    machine) to its labelled message's arrival, and which of them carried a cell type."""

    def __init__(self, address: str):
        self.sock = zmq.Context.instance().socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, SPIKES_PREFIX)
        self.sock.connect(address)
        self.latency_s: list[float] = []
        self.labelled = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            if self.sock.poll(20):
                _, payload = self.sock.recv_multipart()
                now = time.monotonic()
                spikes = decode_spikes(payload)
                self.latency_s.extend((now - spikes["t_source"]).tolist())
                self.labelled += int((spikes["cell_type"] > 0).sum())

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        lat_ms = np.array(self.latency_s) * 1e3
        if not lat_ms.size:
            return {"spikes_received": 0}
        return {
            "spikes_received": int(lat_ms.size),
            "labelled_spikes_received": self.labelled,
            "spike_to_event_p50_ms": float(np.percentile(lat_ms, 50)),
            "spike_to_event_p99_ms": float(np.percentile(lat_ms, 99)),
        }


def run_case(
    n_probes: int,
    n_busy: int,
    duration_s: float,
    folder: Path,
    run_settings: tuple[str, ...] = (),
    sections: tuple[str, ...] = (),
    chunk_ms: float = 1.0,
) -> dict:
    """``n_probes`` live runs, each fed ``chunk_ms`` chunks at real time, beside ``n_busy`` busy
    processes. Each probe's CPU is measured twice: the whole run (start-up and idle tail included)
    and the steady state while data flows (``STEADY_MARGIN_S`` in from each end)."""
    rec = _simulate(RECORDING_SEED, duration_s, folder)  # before any run starts: runs wait 10 s for data
    busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(n_busy)]
    runs, senders = [], []
    listeners = [SpikeListener(_publish_address(i)) for i in range(n_probes)]
    try:
        for i in range(n_probes):
            out = folder / f"case_n{n_probes}_busy{n_busy}_chunk{chunk_ms:g}ms" / f"probe{i}"
            cmd = [*RTCLASS, "run", "--source", f"zmq://127.0.0.1:{FIRST_PORT + i}"]
            cmd += ["--config", str(_config(folder, i, run_settings, sections)), "--out", str(out)]
            runs.append((out, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        for i in range(n_probes):
            cmd = [*RTCLASS, "replay", str(rec), "--to", f"zmq://127.0.0.1:{FIRST_PORT + i}"]
            cmd += ["--chunk-ms", str(chunk_ms), "--wait", "60"]
            senders.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL))
        t0 = time.monotonic()
        # the steady window starts once every probe publishes spikes (its run is up and data flows)
        while not all(listener.latency_s for listener in listeners) and time.monotonic() < t0 + GRACE_S:
            time.sleep(0.1)
        steady_s = duration_s - 3 * STEADY_MARGIN_S
        if steady_s > 0:
            time.sleep(STEADY_MARGIN_S)
            before = [_run_cpu_s(proc.pid) for _, proc in runs]
            time.sleep(steady_s)
            after = [_run_cpu_s(proc.pid) for _, proc in runs]
            steady = [{k: (a[k] - b.get(k, 0.0)) / steady_s for k in a} for a, b in zip(after, before)]
        else:
            steady = [{} for _ in runs]
        for s in senders:
            s.wait(timeout=duration_s + GRACE_S + 60)
        probes = []
        for (out, proc), listener, split in zip(runs, listeners, steady):
            cpu_s = _wait_rusage(proc, GRACE_S)
            heard = listener.stop()
            metrics_path = out / "metrics.json"
            m = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
            d = m.get("discovery") or {}
            data_s = float(m.get("data_s", 0.0))
            probes.append(
                {
                    "exit_code": proc.returncode,
                    "data_s": data_s,
                    "samples_in": m.get("samples_in", 0),
                    "samples_dropped": m.get("samples_dropped", 0),
                    "units": m.get("units", 0),
                    "discovery_rounds": d.get("rounds", 0),
                    "discovery_skipped_rounds": d.get("skipped_rounds", 0),
                    "cpu_s": cpu_s,
                    "cores_at_real_time": cpu_s / data_s if data_s else None,
                    "steady_cores_at_real_time": sum(split.values()) if split else None,
                    "steady_cores_by_thread": split,
                    "processing_s": m.get("processing_s"),
                    **heard,
                }
            )
        return {
            "probes": n_probes,
            "busy_processes": n_busy,
            "chunk_ms": chunk_ms,
            "wall_s": time.monotonic() - t0,
            "per_probe": probes,
        }
    finally:
        for p in busy + senders + [p for _, p in runs]:
            if p.poll() is None:
                p.kill()
        for listener in listeners:
            if not listener._stop.is_set():
                listener.stop()


def measure(
    probes: tuple[int, ...],
    busy: tuple[int, ...],
    duration_s: float,
    folder: Path,
    chunk_ms: tuple[float, ...] = (1.0,),
    run_settings: tuple[str, ...] = (),
    sections: tuple[str, ...] = (),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every case (each chunk length, each number of busy processes, each number of probes), and
    the largest N that held real time (and p99 <= 5 ms) per series."""
    cases = []
    for c_ms in chunk_ms:
        for n_busy in busy:
            for n in probes:
                case = run_case(n, n_busy, duration_s, folder, run_settings, sections, c_ms)
                cases.append(case)
                log(case_line(case))
    for case in cases:
        alone = [
            c["per_probe"][0]["units"]
            for c in cases
            if c["probes"] == 1 and c["busy_processes"] == 0 and c["chunk_ms"] == case["chunk_ms"]
        ]
        for p in case["per_probe"]:
            p["units_vs_alone"] = p["units"] / alone[0] if alone and alone[0] else None
        case["holds_real_time"] = all(
            p["samples_dropped"] == 0 and p["exit_code"] == 0 and p["samples_in"] > 0 for p in case["per_probe"]
        )

    def largest_n(n_busy: int, c_ms: float, p99_ms: float | None) -> int:
        held = [
            c["probes"]
            for c in cases
            if c["busy_processes"] == n_busy
            and c["chunk_ms"] == c_ms
            and c["holds_real_time"]
            and (p99_ms is None or all(p.get("spike_to_event_p99_ms", 1e9) <= p99_ms for p in c["per_probe"]))
        ]
        return max(held, default=0)

    def by_series(p99_ms: float | None) -> dict[str, int]:
        # keyed by busy processes, and by "<busy> busy, <chunk> ms chunks" with several chunk lengths
        if len(chunk_ms) == 1:
            return {str(b): largest_n(b, chunk_ms[0], p99_ms) for b in busy}
        return {f"{b} busy, {c:g} ms chunks": largest_n(b, c, p99_ms) for b in busy for c in chunk_ms}

    return {
        "duration_s": duration_s,
        "run_settings": list(run_settings),
        "settings": list(sections),
        "cases": cases,
        "largest_n_holding_real_time_and_p99_5ms": by_series(P99_TARGET_MS),
        "largest_n_holding_real_time": by_series(None),
    }


def case_line(case: dict[str, Any]) -> str:
    """One case in a line: units, drops, CPU per probe (whole run and steady), latency."""
    per = case["per_probe"]
    units = [p["units"] for p in per]
    cores = [round(p["cores_at_real_time"] or 0, 2) for p in per]
    steady = [round(p["steady_cores_at_real_time"] or 0, 2) for p in per]
    dropped = sum(p["samples_dropped"] for p in per)
    p50 = [round(p.get("spike_to_event_p50_ms", float("nan")), 2) for p in per]
    p99 = [round(p.get("spike_to_event_p99_ms", float("nan")), 1) for p in per]
    return (
        f"{case['chunk_ms']:g} ms chunks, {case['probes']} probes + {case['busy_processes']} busy: units {units}, "
        f"dropped {dropped}, cores per probe {cores} (steady {steady}), spike -> event p50 {p50} ms, p99 {p99} ms"
    )
