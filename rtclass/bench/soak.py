"""A soak run with a scripted fault schedule, measured from outside rtclass.

A sender process renders the simulated probe at real time and publishes it as raw ZMQ frames,
packed here from the documented framing (not with rtclass's own encoder); ``rtclass run`` is a
subprocess; plain ZMQ subscribers measure what decoders get. Along the way the sender stalls and
catches up, restarts (its sample index back to 0), and sends bursts of malformed frames; a
subscriber joins that never reads. At the end: samples sent against samples the run took in and
counted lost, malformed frames sent against counted, restarts, RSS over time, spike -> labelled
event latency per window, and the spike timeline checked against the ground truth between every
two faults (a shifted timeline loses every later spike).

``run_soak(duration_s, ...)`` is used by ``benchmarks/soak.py`` (one hour) and by the 2-minute
test (no timing asserted there).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from rtclass.config import SimulateConfig
from rtclass.publish.wire import SPIKES_PREFIX, STATUS_TOPIC, decode_spikes
from rtclass.sim.recording import SAMPLE_RATE_HZ, Simulation

#: the raw framing as the README documents it: `<4sBBHIIqdf`, magic, version 1, dtype 2 = float32
FRAME_HEADER = struct.Struct("<4sBBHIIqdf")
FRAME_MAGIC, FRAME_VERSION, FRAME_FLOAT32 = b"RTCR", 1, 2
CHUNK_SAMPLES = 30  # 1 ms at 30 kHz
#: how long the sender is away when it restarts
RESTART_PAUSE_S = 1.0
#: a unit whose template's largest peak-to-peak is at least this is scored on the timeline
LARGE_UNIT_PTP_UV = 100.0
#: a ground-truth spike is found if a detected spike lies within this many samples (0.5 ms) ...
MATCH_SAMPLES = 15
#: ... on a channel within this distance of the unit's peak channel
MATCH_RADIUS_UM = 60.0
#: latency outside this long after a fault counts as steady state
SETTLE_S = 5.0
RSS_POLL_S = 2.0
#: after the sender's last frame, the run gets this long to work through what is queued (it is
#: stopped as soon as its status says it has processed every sample sent)
DRAIN_MAX_S = 120.0


@dataclass(frozen=True)
class Fault:
    """``at``: fraction of the run's data; ``kind``: stall (``size`` s), restart, malformed
    (``size`` frames), slow_subscriber (joins and never reads)."""

    at: float
    kind: str
    size: float = 0.0


SCHEDULE = (
    Fault(0.10, "stall", 0.2),
    Fault(0.20, "malformed", 2000),
    Fault(0.30, "slow_subscriber"),
    Fault(0.40, "stall", 1.0),
    Fault(0.50, "restart"),
    Fault(0.65, "stall", 3.0),
    Fault(0.80, "malformed", 2000),
    Fault(0.90, "stall", 0.05),
)


def _frame(samples: np.ndarray, first_sample: int, t_last: float) -> list[bytes]:
    n, c = samples.shape
    header = FRAME_HEADER.pack(FRAME_MAGIC, FRAME_VERSION, FRAME_FLOAT32, 0, c, n, first_sample, t_last, 1.0)
    return [b"raw", header, np.ascontiguousarray(samples, "<f4").tobytes()]


def malformed_frames(good: list[bytes], rng: np.random.Generator) -> list[list[bytes]]:
    """One of each kind of broken frame a sender can produce, built from a good one."""
    raw, header, payload = good
    n_ch = FRAME_HEADER.unpack(header)[4]
    return [
        [raw, b"XXXX" + header[4:], payload],  # wrong magic
        [raw, header[:20], payload],  # truncated header
        [raw, header, payload[: len(payload) // 2]],  # payload shorter than the header says
        [raw, header],  # a frame missing
        [raw, header, payload, b"extra"],  # a frame too many
        [
            raw,
            FRAME_HEADER.pack(FRAME_MAGIC, 9, FRAME_FLOAT32, 0, n_ch, 1, 0, 0.0, 1.0),
            payload[: n_ch * 4],
        ],  # version
        [raw + rng.bytes(int(rng.integers(1, 64)))],  # noise (behind the topic the run subscribes to)
        [raw + b"x", header, payload],  # another topic that starts alike
    ]


def sender_process(sim_cfg: SimulateConfig, address: str, schedule: tuple[Fault, ...], results) -> None:
    """Render the simulation at real time and publish it with the faults of ``schedule``; put the
    accounting (samples and frames sent, garbage by kind, segments) on ``results``."""
    sim = Simulation(sim_cfg)
    fs, total = sim.fs, sim.n_samples
    synth = sim.synthesizer()
    synth.read(1)  # compile before streaming
    synth = sim.synthesizer()
    ctx = zmq.Context()
    rng = np.random.default_rng(0)

    def bind():
        sock = ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.SNDHWM, 0)  # an acquisition buffers; loss is not what this measures
        sock.bind(address)
        while not sock.poll(100):  # wait for the run's subscription
            pass
        sock.recv()
        return sock

    sock = bind()
    due = sorted((int(f.at * total), f) for f in schedule if f.kind in ("stall", "restart", "malformed"))
    sent, garbage, index, frames = 0, 0, 0, 0
    garbage_by_kind: dict[str, int] = {}
    segments = [{"recording_sample": 0}]
    t0, c0 = time.perf_counter(), time.time()
    while sent < total:
        while due and sent >= due[0][0]:
            _, fault = due.pop(0)
            if fault.kind == "stall":
                time.sleep(fault.size)  # then the backlog goes out at once, as a stalled sender's does
            elif fault.kind == "restart":
                sock.close(linger=1000)
                time.sleep(RESTART_PAUSE_S)
                sock = bind()
                index = 0
                segments.append({"recording_sample": sent})
                t0, c0 = time.perf_counter() - sent / fs, time.time() - sent / fs  # the pace goes on
            elif fault.kind == "malformed":
                good = _frame(np.zeros((CHUNK_SAMPLES, sim.n_channels), np.float32), 0, 0.0)
                bad = malformed_frames(good, rng)
                for i in range(int(fault.size)):
                    sock.send_multipart(bad[i % len(bad)])
                    garbage += 1
                    key = str(i % len(bad))
                    garbage_by_kind[key] = garbage_by_kind.get(key, 0) + 1
        block = synth.read(min(CHUNK_SAMPLES, total - sent))
        end = sent + block.shape[0]
        wait = t0 + end / fs - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sock.send_multipart(_frame(block, index, c0 + (end - 1) / fs), copy=False)
        sent, index, frames = end, index + block.shape[0], frames + 1
    sock.close(linger=5000)
    ctx.term()
    results.put(
        {
            "samples": sent,
            "frames": frames,
            "garbage_frames": garbage,
            "garbage_by_kind": garbage_by_kind,
            "segments": segments,
        }
    )


class _Subscriber(threading.Thread):
    """A plain ZMQ SUB that keeps every spike's latency (receive time - the spike's source time)
    and the latest status."""

    def __init__(self, address: str):
        super().__init__(daemon=True)
        self.address = address
        self.recv_s: list[np.ndarray] = []
        self.latency_ms: list[np.ndarray] = []
        self.status: dict[str, Any] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SUBSCRIBE, SPIKES_PREFIX)
        sock.setsockopt(zmq.SUBSCRIBE, STATUS_TOPIC)
        sock.connect(self.address)
        while not self.stop.is_set():
            if not sock.poll(100):
                continue
            topic, payload = sock.recv_multipart()
            now = time.time()
            if topic == STATUS_TOPIC:
                self.status = json.loads(payload)
                continue
            spikes = decode_spikes(payload)
            self.recv_s.append(np.full(spikes.size, now))
            self.latency_ms.append((now - spikes["t_source"]) * 1e3)
        sock.close()


def _slow_subscriber(address: str, stop: threading.Event) -> None:
    """Subscribes to everything and never reads: its queue fills, the publisher must not care."""
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 100)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(address)
    stop.wait()
    sock.close(linger=0)


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _latency_windows(recv_s: np.ndarray, lat_ms: np.ndarray, start: float, window_s: float, fault_s: list[float]):
    out = []
    settled = np.ones(recv_s.size, bool)
    for t in fault_s:
        settled &= ~((recv_s >= t) & (recv_s < t + SETTLE_S))
    edges = np.arange(start, recv_s.max() + window_s, window_s) if recv_s.size else []
    for a, b in zip(edges[:-1], edges[1:]):
        sel = (recv_s >= a) & (recv_s < b)
        steady = sel & settled
        if not sel.any():
            continue
        out.append(
            {
                "from_s": float(a - start),
                "to_s": float(b - start),
                "spikes": int(sel.sum()),
                "p50_ms": float(np.percentile(lat_ms[sel], 50)),
                "p99_ms": float(np.percentile(lat_ms[sel], 99)),
                "steady_p99_ms": float(np.percentile(lat_ms[steady], 99)) if steady.any() else None,
            }
        )
    return out


def timeline_recall(
    sim: Simulation,
    times: np.ndarray,
    channels: np.ndarray,
    segment_starts: list[int],
    segments: list[dict],
    bounds_s: list[float],
) -> list[dict]:
    """Per stretch between faults: the fraction of the large units' ground-truth spikes with a
    detected spike within MATCH_SAMPLES, on a channel near the unit's peak, at the sample where
    rtclass's timeline puts them (each sender segment continues it from its segment start)."""
    fs = sim.fs
    templates = sim.dense_templates()
    ptp = templates.max(1) - templates.min(1)
    peak = ptp.argmax(1)
    large = np.flatnonzero(ptp.max(1) >= LARGE_UNIT_PTP_UV)
    starts_run = [0, *segment_starts]
    starts_rec = [s["recording_sample"] for s in segments]
    if len(starts_run) != len(starts_rec):
        raise RuntimeError(f"the run saw {len(starts_run)} segments, the sender made {len(starts_rec)}")
    gt_t, gt_u = sim.spike_times, sim.spike_units
    seg = np.searchsorted(starts_rec, gt_t, side="right") - 1
    gt_run = np.asarray(starts_run)[seg] + gt_t - np.asarray(starts_rec)[seg]
    order = np.argsort(times, kind="stable")
    times, channels = times[order], channels[order]
    pos = sim.probe.positions_um
    found = np.zeros(gt_t.size, bool)
    for u in large:
        near = np.flatnonzero(np.linalg.norm(pos - pos[peak[u]], axis=1) <= MATCH_RADIUS_UM)
        mine = times[np.isin(channels, near)]
        sel = np.flatnonzero(gt_u == u)
        idx = np.searchsorted(mine, gt_run[sel] - MATCH_SAMPLES)
        ok = idx < mine.size
        hit = np.zeros(sel.size, bool)
        hit[ok] = mine[idx[ok]] <= gt_run[sel][ok] + MATCH_SAMPLES
        found[sel] = hit
    is_large = np.isin(gt_u, large)
    out = []
    for a, b in zip(bounds_s[:-1], bounds_s[1:]):
        sel = is_large & (gt_t >= a * fs) & (gt_t < b * fs)
        out.append(
            {
                "from_s": a,
                "to_s": b,
                "spikes": int(sel.sum()),
                "recall": float(found[sel].mean()) if sel.any() else None,
            }
        )
    return out


def run_soak(
    duration_s: float,
    window_s: float,
    seed: int = 11,
    schedule: tuple[Fault, ...] = SCHEDULE,
    keep_dir: str | None = None,
) -> dict[str, Any]:
    """Run the soak; returns its measurements and ``checks`` (what must hold whatever the timing)."""
    sim_cfg = SimulateConfig(duration_s=duration_s, seed=seed)
    tmp = tempfile.TemporaryDirectory()
    work = Path(keep_dir or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    ports = [_free_port() for _ in range(2)]
    raw_addr, pub_addr = (f"tcp://127.0.0.1:{p}" for p in ports)
    config = work / "soak.toml"
    config.write_text(f'[source]\nresolve_timeout_s = 600.0\n[publish]\nzmq_address = "{pub_addr}"\nlsl = false\n')
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    sender = ctx.Process(target=sender_process, args=(sim_cfg, raw_addr, schedule, results), daemon=True)
    sender.start()
    out = work / "out"
    rtclass = str(Path(sys.executable).with_name("rtclass"))
    log = open(work / "run.log", "w")
    run = subprocess.Popen(
        [rtclass, "run", "--config", str(config), "--source", f"zmq://127.0.0.1:{ports[0]}", "--out", str(out)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    sub = _Subscriber(pub_addr)
    sub.start()
    rss: list[tuple[float, float]] = []
    slow_stop = threading.Event()
    slow_at = [f.at * duration_s for f in schedule if f.kind == "slow_subscriber"]
    t_start = None
    sent = None
    try:
        while sent is None:
            now = time.time()
            status = sub.status
            data_s = status.get("data_s", 0.0)
            if t_start is None and data_s > 0:
                t_start = now - data_s
            while slow_at and data_s >= slow_at[0]:
                slow_at.pop(0)
                threading.Thread(target=_slow_subscriber, args=(pub_addr, slow_stop), daemon=True).start()
            mb = _rss_mb(run.pid)
            if mb is not None:
                rss.append((now, mb))
            if run.poll() is not None:
                raise RuntimeError(f"rtclass run ended early (exit code {run.returncode}); see {work / 'run.log'}")
            try:
                sent = results.get(timeout=RSS_POLL_S)
            except Exception:  # noqa: BLE001 - queue.Empty: the sender is still sending
                if not sender.is_alive():
                    raise RuntimeError(f"the sender died (exit code {sender.exitcode})") from None
        deadline = time.monotonic() + DRAIN_MAX_S
        while time.monotonic() < deadline and sub.status.get("data_s", 0.0) * SAMPLE_RATE_HZ < sent["samples"]:
            time.sleep(0.5)
        time.sleep(1.0)  # the last spikes out to the subscriber
    finally:
        run.send_signal(signal.SIGINT)
        try:
            run.wait(timeout=120)
        except subprocess.TimeoutExpired:
            run.kill()
        sub.stop.set()
        slow_stop.set()
        sender.join(timeout=10)
        log.close()
    metrics = json.loads((out / "metrics.json").read_text())
    times = np.load(out / "spike_times.npy")
    channels = np.load(out / "spike_channels.npy")
    sim = Simulation(sim_cfg)
    faults_s = sorted(f.at * duration_s for f in schedule)
    bounds = [0.0, *faults_s, duration_s]
    timeline = timeline_recall(sim, times, channels, metrics["segment_starts"], sent["segments"], bounds)
    recv_s = np.concatenate(sub.recv_s) if sub.recv_s else np.zeros(0)
    lat = np.concatenate(sub.latency_ms) if sub.latency_ms else np.zeros(0)
    t_start = t_start or (recv_s.min() if recv_s.size else 0.0)
    fault_wall = [t_start + t for t in faults_s]
    rss_arr = np.array(rss) if rss else np.zeros((0, 2))
    first = rss_arr[rss_arr[:, 0] < rss_arr[0, 0] + window_s, 1] if rss else np.zeros(0)
    last = rss_arr[rss_arr[:, 0] > rss_arr[-1, 0] - window_s, 1] if rss else np.zeros(0)
    recalls = [w["recall"] for w in timeline if w["recall"] is not None]
    n_restarts = sum(f.kind == "restart" for f in schedule)
    result = {
        "duration_s": duration_s,
        "window_s": window_s,
        "schedule": [asdict(f) for f in schedule],
        "sent": sent,
        "run": {
            k: metrics.get(k)
            for k in (
                "samples_in",
                "samples_dropped",
                "gaps",
                "restarts",
                "stalls",
                "malformed",
                "malformed_by_kind",
                "segment_starts",
                "units",
                "spikes",
                "publish_lag_ms",
            )
        },
        "rss_mb": {
            "first_window_median": float(np.median(first)) if first.size else None,
            "last_window_median": float(np.median(last)) if last.size else None,
            "max": float(rss_arr[:, 1].max()) if rss else None,
        },
        "latency_windows": _latency_windows(recv_s, lat, t_start, window_s, fault_wall),
        "latency_all": {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}
        if lat.size
        else None,
        "timeline": timeline,
        "checks": {
            "every_sample_sent_was_processed": metrics["samples_in"] == sent["samples"],
            "nothing_counted_lost": metrics["samples_dropped"] == 0 and metrics["gaps"] == 0,
            "every_malformed_frame_counted": metrics["malformed"] == sent["garbage_frames"],
            "every_restart_counted": metrics["restarts"] == n_restarts,
            "timeline_intact": bool(recalls) and min(recalls) >= 0.8 * max(recalls),
            "units_found": metrics["units"] > 0,
        },
    }
    tmp.cleanup()
    return result


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    import argparse

    from rtclass.bench.benchmark import machine, save_json

    ap = argparse.ArgumentParser(description="rtclass soak run with a scripted fault schedule")
    ap.add_argument("--duration", type=float, default=3600.0)
    ap.add_argument("--window", type=float, default=300.0, help="seconds per latency / RSS window")
    ap.add_argument("--out", default="benchmarks/results/soak.json")
    args = ap.parse_args(argv)
    res = run_soak(args.duration, args.window)
    res["machine"] = machine()
    save_json(res, args.out)
    print(json.dumps({k: res[k] for k in ("run", "rss_mb", "latency_all", "timeline", "checks")}, indent=1))
    return 0 if all(res["checks"].values()) else 1


if __name__ == "__main__":
    os._exit(main())
