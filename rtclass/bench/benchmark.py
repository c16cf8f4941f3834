"""``rtclass bench``: throughput, per-chunk time, end-to-end latency, inference time and memory of
this machine, with the transport floor (and SpikeInterface, if installed) measured in the same run.

Everything runs on the built-in simulated probe. Throughput is measured on one core (the process
pins itself when it can); the latency test runs a sender, the pipeline and a subscriber as three
processes on this machine over loopback.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rtclass.bench import live_probes
from rtclass.config import Config, SimulateConfig

LATENCY_STREAM = "rtclass-bench"
CHANNEL_COUNTS = (64, 128, 384, 768, 1536)
CHUNK_SIZES = (10, 30, 150)
#: quantiles (%) at which the latency distribution is kept (for the CDF plot)
CDF_QUANTILES = [*range(0, 99), 99.0, 99.5, 99.9, 100.0]
LATENCY_TICKS_MS = (0.5, 1, 2, 5, 10, 20, 50)


def machine() -> dict[str, Any]:
    cpu = platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for mod in ("numpy", "numba", "scipy", "pylsl", "zmq", "onnxruntime"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - optional modules
            pass
    import rtclass

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "rtclass": rtclass.__version__,
        "versions": versions,
    }


def save_json(res: dict[str, Any], path: str | Path) -> None:
    """Write a benchmark's results (numpy scalars as floats), creating the folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(res, indent=2, default=float) + "\n")


def pin_one_core() -> bool:
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
        return True
    except (AttributeError, OSError):
        return False


def _probe(n_channels: int):
    """A two-column probe of any size (NP1.0-like pitch) for the channel sweep."""
    from rtclass.probe import Probe

    c = np.arange(n_channels)
    return Probe(f"{n_channels}ch", np.stack([(c % 2) * 32.0, (c // 2) * 20.0], 1))


def _data(seconds: float, n_channels: int, seed: int = 3) -> np.ndarray:
    """Simulated 384-channel data, tiled or cropped to ``n_channels``."""
    from rtclass.sim.recording import Simulation

    sim = Simulation(SimulateConfig(duration_s=seconds, seed=seed))
    x = sim.synthesizer().read(sim.n_samples)
    reps = -(-n_channels // x.shape[1])
    return np.ascontiguousarray(np.tile(x, (1, reps))[:, :n_channels])


def feed_timed(chain, data: np.ndarray, chunk: int, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Feed ``data`` (starting at global sample ``first``) to a DetectionChain in ``chunk``-sample
    chunks: (its spikes, the seconds each stage took per chunk ``[n_chunks, n_stages]``)."""
    times, found = [], []
    for a in range(0, data.shape[0], chunk):
        found.append(chain.process(data[a : a + chunk].copy(), first + a))
        times.append(chain.times_s)
    return np.concatenate(found), np.array(times)


def throughput(seconds: float, channel_counts=CHANNEL_COUNTS, chunk: int = 30, repeats: int = 1) -> dict[str, Any]:
    """Stage-by-stage time of the signal chain (with online discovery, features) per channel
    count; with ``repeats`` > 1 the chain runs that many times on the same data and the best run
    is reported (other load on the machine only ever slows a run down), with every run's figure."""
    from rtclass.pipeline.chain import DetectionChain

    cfg = Config()
    out = {}
    for n in channel_counts:
        data = _data(seconds, n)
        DetectionChain(cfg, _probe(n), 30000.0).process(np.zeros((64, n), np.float32), 0)
        runs = []
        for _ in range(repeats):
            chain = DetectionChain(cfg, _probe(n), 30000.0)
            runs.append(feed_timed(chain, data, chunk)[1])
        best = min(runs, key=lambda t: t.sum())
        total = best.sum()
        out[str(n)] = {
            "realtime_factor": data.shape[0] / 30000.0 / total,
            "realtime_factor_runs": [data.shape[0] / 30000.0 / t.sum() for t in runs],
            "stage_share": {s: float(best[:, i].sum() / total) for i, s in enumerate(DetectionChain.STAGES)},
        }
    return out


def chunk_times(seconds: float, chunk_sizes=CHUNK_SIZES) -> dict[str, Any]:
    from rtclass.pipeline.chain import DetectionChain

    cfg = Config()
    data = _data(seconds, 384)
    out = {}
    for chunk in chunk_sizes:
        chain = DetectionChain(cfg, _probe(384), 30000.0)
        t = feed_timed(chain, data, chunk)[1].sum(1) * 1e6
        out[str(chunk)] = {
            "chunk_ms": chunk / 30.0,
            "p50_us": float(np.percentile(t, 50)),
            "p99_us": float(np.percentile(t, 99)),
            "max_us": float(t.max()),
            "over_budget": int((t > chunk / 30.0 * 1000).sum()),
            "chunks": int(t.size),
        }
    return out


def _score_peaks(sim, cfg: Config, peaks: np.ndarray, noise_sd: np.ndarray, start: int) -> dict[str, Any]:
    from rtclass.evaluation.scoring import filtered_template_peaks, score_detection

    snr, peak = filtered_template_peaks(sim.dense_templates(), noise_sd, cfg.preprocess, sim.fs)
    p = peaks[peaks["sample"] >= start]
    sel = sim.spike_times >= start
    s = score_detection(
        p["sample"], p["channel"], sim.spike_times[sel], sim.spike_units[sel], peak, snr, sim.probe.positions_um, sim.fs
    )
    return {**s.as_dict(), "recall_snr_ge_8": s.recall_above(8.0)}


def detection_chain(cfg: Config, sim, data: np.ndarray, chunk: int) -> tuple[dict[str, Any], np.ndarray, Any]:
    """The pipeline's DetectionChain fed ``chunk``-sample chunks, timed per stage; its peaks."""
    from rtclass.pipeline.chain import DetectionChain

    chain = DetectionChain(cfg, sim.probe, sim.fs)
    DetectionChain(cfg, sim.probe, sim.fs).process(np.zeros((64, sim.n_channels), np.float32), 0)
    spikes, t = feed_timed(chain, data, chunk)
    total = t.sum(1)
    res = {
        "chunk_samples": chunk,
        "chunk_ms": chunk / sim.fs * 1000,
        "realtime_factor": data.shape[0] / sim.fs / total.sum(),
        "per_chunk_us": {
            "p50": float(np.percentile(total, 50) * 1e6),
            "p99": float(np.percentile(total, 99) * 1e6),
            "max": float(total.max() * 1e6),
        },
        "chunks_over_budget": int((total > chunk / sim.fs).sum()),
        "chunks": int(total.size),
        "stage_mean_us": {s: float(t[:, i].mean() * 1e6) for i, s in enumerate(DetectionChain.STAGES)},
    }
    peaks = np.zeros(spikes.size, [("sample", "<i8"), ("channel", "<i2"), ("amplitude", "<f4")])
    peaks["sample"], peaks["channel"], peaks["amplitude"] = spikes["sample"], spikes["channel"], -spikes["amplitude"]
    return res, peaks, chain.detector


def spikeinterface_chain(sim, data: np.ndarray, cfg: Config, start: int) -> dict[str, Any] | None:
    """SpikeInterface's preprocessing and locally exclusive detection on the same data, timed and
    scored the same way (None if spikeinterface is not installed)."""
    try:
        import spikeinterface
        import spikeinterface.core as si
        from spikeinterface.preprocessing import bandpass_filter, common_reference
        from spikeinterface.sortingcomponents.peak_detection import detect_peaks
    except ImportError:
        return None
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    rec = si.NumpyRecording([data], sampling_frequency=sim.fs)
    rec.set_channel_locations(sim.probe.positions_um)
    job = {"n_jobs": 1, "chunk_duration": "1s", "progress_bar": False}
    kwargs = {"detect_threshold": 5.0, "radius_um": 50.0}
    t0 = time.perf_counter()
    pre = common_reference(bandpass_filter(rec, freq_min=300.0, freq_max=6000.0), reference="global", operator="median")
    noise = si.get_noise_levels(pre, return_in_uV=False, method="mad", progress_bar=False)
    pk = detect_peaks(pre, method="locally_exclusive", method_kwargs={**kwargs, "noise_levels": noise}, job_kwargs=job)
    chain_s = time.perf_counter() - t0
    mem = si.NumpyRecording([pre.get_traces().astype(np.float32)], sampling_frequency=sim.fs)
    mem.set_channel_locations(sim.probe.positions_um)
    t0 = time.perf_counter()
    detect_peaks(mem, method="locally_exclusive", method_kwargs={**kwargs, "noise_levels": noise}, job_kwargs=job)
    detect_s = time.perf_counter() - t0
    peaks = np.zeros(pk.size, [("sample", "<i8"), ("channel", "<i2"), ("amplitude", "<f4")])
    peaks["sample"], peaks["channel"], peaks["amplitude"] = pk["sample_index"], pk["channel_index"], pk["amplitude"]
    dur = data.shape[0] / sim.fs
    return {
        "version": spikeinterface.__version__,
        "chain": "bandpass 300-6000 (order 5, zero-phase) -> global median CMR -> "
        "detect_peaks(locally_exclusive, 5 sd, 50 um), 1 s chunks, one job",
        "realtime_factor_chain": dur / chain_s,
        "realtime_factor_detection_only": dur / detect_s,
        "detection": _score_peaks(sim, cfg, peaks, noise.astype(np.float32), start),
    }


def detection_comparison(
    seconds: float, seed: int = 7, chunks=(30, 300, 30000), with_spikeinterface: bool = True
) -> dict[str, Any]:
    """rtclass's detection chain at several chunk sizes and SpikeInterface's, on the same data."""
    from rtclass.sim.recording import Simulation

    cfg = Config().replace(discovery={"enabled": False})  # the detection chain alone
    sim = Simulation(SimulateConfig(duration_s=seconds, seed=seed))
    data = sim.synthesizer().read(sim.n_samples)
    res: dict[str, Any] = {
        "data": {"seconds": seconds, "channels": sim.n_channels, "seed": seed, "units": len(sim.units)},
        "rtclass": {},
    }
    start = 0
    for chunk in chunks:
        r, peaks, det = detection_chain(cfg, sim, data, chunk)
        start = det.started_at + det.warmup + det.sweep
        r["detection"] = _score_peaks(sim, cfg, peaks, det.noise_sd, start)
        res["rtclass"][f"chunk_{chunk}"] = r
    si_res = spikeinterface_chain(sim, data, cfg, start) if with_spikeinterface else None
    if si_res is not None:
        res["spikeinterface"] = si_res
        big = res["rtclass"][f"chunk_{max(chunks)}"]["realtime_factor"]
        res["speed_ratio_vs_spikeinterface_chain"] = big / si_res["realtime_factor_chain"]
    return res


def inference(units=(1, 10, 100, 400, 1000)) -> dict[str, Any] | None:
    from rtclass.classify.model import DEFAULT_MODEL, CellTypeModel

    if not DEFAULT_MODEL.exists():
        return None
    model = CellTypeModel(DEFAULT_MODEL)
    rng = np.random.default_rng(0)
    out = {}
    for n in units:
        acg = rng.uniform(0, 2, (n, 10, 101)).astype(np.float32)
        wave = rng.normal(0, 0.3, (n, 90)).astype(np.float32)
        model.predict(acg, wave)
        t = []
        for _ in range(5):
            t0 = time.perf_counter()
            model.predict(acg, wave)
            t.append(time.perf_counter() - t0)
        out[str(n)] = float(np.median(t) * 1e3)
    return out


def rss_mb() -> float:
    """This process's resident memory now (MB)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(seconds: float) -> dict[str, Any]:
    """RSS while the full pipeline (discovery, features, labels) processes a long simulated
    stream as fast as it can."""
    from rtclass.ingest.base import SourceStats, StreamInfo
    from rtclass.ingest.chunk import Chunk
    from rtclass.pipeline.live import Pipeline
    from rtclass.sim.recording import Simulation

    sim = Simulation(SimulateConfig(duration_s=seconds, seed=5))
    syn = sim.synthesizer()

    class Src:
        stats = SourceStats()

        def open(self):
            return StreamInfo("mem", 384, 30000.0)

        @property
        def finished(self):
            return syn.next_sample >= sim.n_samples

        def read(self, timeout_s):
            first = syn.next_sample
            data = syn.read(min(300, sim.n_samples - first))
            return Chunk(data, first, first / 30000.0)

        def close(self):
            pass

    cfg = Config().replace(publish={"zmq": False, "lsl": False})
    pipe = Pipeline(cfg, Src(), probe=sim.probe)
    pipe.open()
    samples, t0 = [], time.monotonic()
    stop = threading.Event()

    def sample():
        while not stop.wait(1.0):
            samples.append((pipe.samples_processed / 30000.0, rss_mb()))

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    pipe.run()
    stop.set()
    th.join()
    rss = np.array([r for _, r in samples]) if samples else np.array([rss_mb()])
    half = rss[len(rss) // 2 :]
    return {
        "data_s": seconds,
        "wall_s": time.monotonic() - t0,
        "rss_mb_samples": [list(s) for s in samples],
        "rss_mb_first_half_max": float(rss[: max(1, len(rss) // 2)].max()),
        "rss_mb_second_half_max": float(half.max()),
        "units": int(pipe.chain.bank.n),
        "discovery": pipe.metrics()["discovery"],
    }


# ------------------------------------------------------------------------------------- latency
def _sender(kind: str, address: str, seconds: float, chunk: int, ready, go) -> None:
    """Stream simulated data in real time, stamping each chunk's last sample with the LSL clock
    at the moment it is pushed."""
    from rtclass.ingest.lsl import use_loopback_only

    use_loopback_only()
    import pylsl

    from rtclass.sim.recording import Simulation

    sim = Simulation(SimulateConfig(duration_s=seconds, seed=9))
    data = sim.synthesizer().read(sim.n_samples)
    if kind == "lsl":
        from rtclass.ingest.lsl import LslRawSender

        sender = LslRawSender(address, 384, 30000.0, chunk)
    else:
        from rtclass.ingest.zmq import ZmqRawSender

        sender = ZmqRawSender(address)
    ready.set()
    sender.wait_for_subscriber(60.0)
    go.wait(60.0)
    t0 = time.perf_counter()
    for a in range(0, data.shape[0], chunk):
        due = t0 + (a + chunk) / 30000.0
        while time.perf_counter() < due:  # short sleeps: pacing within ~0.1 ms
            time.sleep(min(0.0002, max(0.0, due - time.perf_counter())))
        block = data[a : a + chunk]
        sender.send(block, a, pylsl.local_clock(), 1.0) if kind == "zmq" else sender.send(block, a, pylsl.local_clock())
    time.sleep(0.5)
    sender.close()


def _pipeline(kind: str, address: str, seconds: float, publish: str) -> None:
    from rtclass.ingest.lsl import use_loopback_only

    use_loopback_only()
    from rtclass.pipeline.live import run_live

    cfg = Config().replace(
        source={"lsl_loopback": True, "resolve_timeout_s": 60.0},
        run={"duration_s": seconds - 0.5, "idle_timeout_s": 5.0},
        publish={"zmq_address": publish, "lsl": True},
    )
    run_live(cfg, f"lsl:{address}" if kind == "lsl" else "zmq://" + address[len("tcp://") :], None)


def _subscriber(publish: str, lsl_spikes: str, chunk: int, out, ready) -> None:
    """Receive spikes on ZMQ and on LSL, each in its own thread (an LSL resolve must not delay
    the ZMQ path); latency from the spike's sample and from the push of its chunk, on the shared
    LSL clock."""
    from rtclass.ingest.lsl import use_loopback_only

    use_loopback_only()
    import pylsl
    import zmq

    from rtclass.publish.wire import decode_spikes

    stop = threading.Event()
    zmq_lat, lsl_lat = [], []

    def from_chunk_push(lat: float, sample: float) -> float:
        chunk_end = (int(sample) // chunk + 1) * chunk
        return lat - (chunk_end - 1 - sample) / 30000.0

    def zmq_path():
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.connect(publish)
        sock.setsockopt(zmq.SUBSCRIBE, b"spikes/")
        ready.set()
        while not stop.is_set():
            if sock.poll(10):
                _, payload = sock.recv_multipart()
                now = pylsl.local_clock()
                for s in decode_spikes(payload):
                    lat = now - s["t_source"]
                    zmq_lat.append((lat, from_chunk_push(lat, s["sample"])))

    def lsl_path():
        found = []
        while not found and not stop.is_set():
            found = pylsl.resolve_byprop("name", lsl_spikes, 1, 0.5)
        if not found:
            return
        inlet = pylsl.StreamInlet(found[0])
        inlet.open_stream(5)
        while not stop.is_set():
            values, stamps = inlet.pull_chunk(timeout=0.0)
            now = pylsl.local_clock()
            for v, ts in zip(values, stamps):
                lsl_lat.append((now - ts, from_chunk_push(now - ts, v[0])))
            time.sleep(0.0002)

    threads = [threading.Thread(target=zmq_path, daemon=True), threading.Thread(target=lsl_path, daemon=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 600
    while not out.get("stop") and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(5)
    out["zmq"] = zmq_lat
    out["lsl"] = lsl_lat


def _floor(kind: str, seconds: float = 3.0, chunk: int = 30) -> dict[str, float]:
    """Plain transport: a 384-channel chunk from one process to another, push to receipt."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_floor_receiver, args=(kind, q), daemon=True)
    p.start()
    addr = q.get(timeout=30)
    lat = _floor_sender(kind, addr, seconds, chunk, q)
    p.join(10)
    lat = np.array(lat) * 1000
    return {
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def _floor_receiver(kind: str, q) -> None:
    from rtclass.ingest.lsl import use_loopback_only

    use_loopback_only()
    import pylsl
    import zmq

    if kind == "lsl":
        name = f"floor-{os.getpid()}"
        q.put(name)
        inlet = pylsl.StreamInlet(pylsl.resolve_byprop("name", name, 1, 30)[0])
        inlet.open_stream(10)
        buf = np.zeros((3000, 384), np.float32)
        lat = []
        t_end = time.monotonic() + 30
        while time.monotonic() < t_end:
            _, ts = inlet.pull_chunk(timeout=0.0, max_samples=3000, dest_obj=buf)
            if ts:
                lat.append(pylsl.local_clock() - ts[-1])
                if len(lat) >= 1000:
                    break
        q.put(lat)
    else:
        sock = zmq.Context.instance().socket(zmq.SUB)
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        q.put(f"tcp://127.0.0.1:{port}")
        lat = []
        while len(lat) < 1000 and sock.poll(30000):
            t_sent = float(sock.recv_multipart()[0])
            lat.append(pylsl.local_clock() - t_sent)
        q.put(lat)


def _floor_sender(kind: str, addr: str, seconds: float, chunk: int, q) -> list[float]:
    import pylsl
    import zmq

    data = np.zeros((chunk, 384), np.float32)
    if kind == "lsl":
        outlet = pylsl.StreamOutlet(pylsl.StreamInfo(addr, "EEG", 384, 30000.0, pylsl.cf_float32, addr), chunk)
        outlet.wait_for_consumers(30)
        for _ in range(1100):
            outlet.push_chunk(data, pylsl.local_clock())
            time.sleep(chunk / 30000.0)
    else:
        sock = zmq.Context.instance().socket(zmq.PUB)
        sock.connect(addr)
        time.sleep(0.5)
        for _ in range(1100):
            sock.send_multipart([repr(pylsl.local_clock()).encode(), data.tobytes()])
            time.sleep(chunk / 30000.0)
    return q.get(timeout=60)


def latency(kind: str, seconds: float, chunk: int = 30) -> dict[str, Any]:
    """Sender -> pipeline -> subscriber, three processes."""
    from rtclass.ingest.lsl import use_loopback_only

    use_loopback_only()
    import socket

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    out = manager.dict()
    ready, go, sub_ready = ctx.Event(), ctx.Event(), ctx.Event()
    address = f"{LATENCY_STREAM}-{os.getpid()}" if kind == "lsl" else f"tcp://127.0.0.1:{free_port()}"
    publish = f"tcp://127.0.0.1:{free_port()}"
    source_name = address if kind == "lsl" else address.rsplit(":", 1)[-1]
    sender = ctx.Process(target=_sender, args=(kind, address, seconds, chunk, ready, go), daemon=True)
    sender.start()
    ready.wait(120)
    pipe = ctx.Process(target=_pipeline, args=(kind, address, seconds, publish), daemon=True)
    pipe.start()
    sub = ctx.Process(target=_subscriber, args=(publish, f"{source_name}-spikes", chunk, out, sub_ready), daemon=True)
    sub.start()
    sub_ready.wait(60)
    go.set()
    pipe.join(seconds + 120)
    out["stop"] = True
    sub.join(30)
    sender.join(10)
    for p in (sender, pipe, sub):
        if p.is_alive():
            p.terminate()
    result = {}
    for path in ("zmq", "lsl"):
        lat = np.array(out.get(path, [])) * 1000
        if lat.size:
            skip = lat[int(0.1 * len(lat)) :]  # the first spikes ride in on start-up
            result[path] = {
                "spikes": int(len(skip)),
                # the whole distribution, for a CDF: latency (ms) at each of CDF_QUANTILES
                "from_sample_ms_cdf": [float(v) for v in np.percentile(skip[:, 0], CDF_QUANTILES)],
                "from_sample_ms": {
                    "p50": float(np.percentile(skip[:, 0], 50)),
                    "p99": float(np.percentile(skip[:, 0], 99)),
                    "max": float(skip[:, 0].max()),
                },
                "from_chunk_push_ms": {
                    "p50": float(np.percentile(skip[:, 1], 50)),
                    "p99": float(np.percentile(skip[:, 1], 99)),
                    "max": float(skip[:, 1].max()),
                },
            }
    return result


#: runs of the throughput sweep per channel count, by mode (the best is reported)
THROUGHPUT_REPEATS = {"full": 3, "quick": 1, "smoke": 1}
#: data seconds of each part, by mode: (throughput, latency, memory, detection comparison)
DURATIONS = {"full": (10.0, 30.0, 300.0, 20.0), "quick": (3.0, 8.0, 20.0, 5.0), "smoke": (1.0, 3.0, 2.0, 1.0)}
#: live probes measured side by side: how many at once, seconds of data each (the smoke run has
#: none: tests/bench/test_live_probes.py runs the measurement)
LIVE_PROBES = {"full": ((1, 2, 4), 30.0), "quick": ((1, 2), 20.0)}


def run_bench(mode: str, out: str | None, plots: str | None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """``mode``: full (about 7 min on 2 cores), quick (about 2.5 min) or smoke (a check that it all runs)."""
    pinned = pin_one_core()
    res: dict[str, Any] = {"machine": {**machine(), "pinned_to_one_core": pinned}, "mode": mode}
    seconds, lat_s, mem_s, det_s = DURATIONS[mode]
    log("throughput vs channels ...")
    res["throughput"] = throughput(
        seconds, CHANNEL_COUNTS if mode == "full" else (64, 384, 768), repeats=THROUGHPUT_REPEATS[mode]
    )
    log("per-chunk times ...")
    res["chunk_times"] = chunk_times(seconds)
    log("classifier inference ...")
    res["inference_ms_by_units"] = inference()
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1))) if pinned else None
    log("transport floor ...")
    res["transport_floor_ms"] = {"lsl": _floor("lsl"), "zmq": _floor("zmq")}
    log("end-to-end latency over LSL and over ZMQ ...")
    res["latency"] = {"source_lsl": latency("lsl", lat_s), "source_zmq": latency("zmq", lat_s)}
    log("memory ...")
    res["memory"] = memory(mem_s)
    if mode in LIVE_PROBES:
        counts, probe_s = LIVE_PROBES[mode]
        log(f"live probes side by side ({', '.join(map(str, counts))} at once, {probe_s:g} s each) ...")
        with tempfile.TemporaryDirectory(prefix="rtclass_bench_probes_") as folder:
            res["live_probes"] = live_probes.measure(counts, (0,), probe_s, Path(folder), log=lambda m: log("  " + m))
    log("detection side by side with SpikeInterface (if installed) ...")
    pin_one_core()
    res["detection"] = detection_comparison(det_s, chunks=(30, 30000), with_spikeinterface=mode != "smoke")
    if out:
        save_json(res, out)
    if plots:
        _plots(res, Path(plots))
    return res


def _plots(res: dict[str, Any], folder: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (extra 'plots'): no plots")
        return
    folder.mkdir(parents=True, exist_ok=True)
    ch = sorted(int(k) for k in res["throughput"])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(ch, [res["throughput"][str(c)]["realtime_factor"] for c in ch], "o-")
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set(xlabel="channels", ylabel="x real time (one core)", xscale="log", yscale="log")
    fig.tight_layout()
    fig.savefig(folder / "throughput_vs_channels.png", dpi=120)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for key, lab in (("source_lsl", "LSL in"), ("source_zmq", "ZMQ in")):
        for path, r in res["latency"].get(key, {}).items():
            if "from_sample_ms_cdf" in r:
                ax.plot(r["from_sample_ms_cdf"], np.array(CDF_QUANTILES) / 100, label=f"{lab}, {path} out")
            else:  # a result saved before the CDF was kept
                p = r["from_sample_ms"]
                ax.plot([p["p50"], p["p99"], p["max"]], [0.5, 0.99, 1.0], "o-", label=f"{lab}, {path} out")
    ax.set(xlabel="spike -> labeled event (ms)", ylabel="fraction of spikes", xscale="log")
    ax.set_xticks(LATENCY_TICKS_MS, [f"{t:g}" for t in LATENCY_TICKS_MS])
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "latency.png", dpi=120)


def table(res: dict[str, Any]) -> str:
    lines = [f"machine: {res['machine']['cpu']}, {res['machine']['cores']} cores"]
    lines.append("throughput (one core, full signal chain with discovery and features, 1 ms chunks; best run):")
    for c, r in res["throughput"].items():
        runs = r.get("realtime_factor_runs", [])
        spread = f" (runs: {', '.join(f'{x:.1f}' for x in runs)})" if len(runs) > 1 else ""
        lines.append(f"  {int(c):5d} channels: {r['realtime_factor']:6.1f}x real time{spread}")
    if "live_probes" in res:
        lp = res["live_probes"]
        lines.append("live probes side by side (each its own rtclass run, fed 1 ms chunks over ZMQ at real time):")
        lines += ["  " + live_probes.case_line(case) for case in lp["cases"]]
        lines.append(
            f"  -> {lp['largest_n_holding_real_time']['0']} probes measured in real time without a lost sample; "
            f"{lp['largest_n_holding_real_time_and_p99_5ms']['0']} with spike -> event p99 <= "
            f"{live_probes.P99_TARGET_MS:g} ms"
        )
    lines.append("per-chunk processing time (384 channels):")
    for _c, r in res["chunk_times"].items():
        lines.append(
            f"  {r['chunk_ms']:.2f} ms chunks: p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us, "
            f"max {r['max_us']:.0f} us, {r['over_budget']} of {r['chunks']} over budget"
        )
    if res.get("inference_ms_by_units"):
        lines.append(
            "classifier inference: "
            + ", ".join(f"{k} units {v:.1f} ms" for k, v in res["inference_ms_by_units"].items())
        )
    f = res["transport_floor_ms"]
    lines.append(
        f"transport floor (384 ch, 1 ms chunks, process to process): LSL p50 {f['lsl']['p50_ms']:.2f} ms p99 "
        f"{f['lsl']['p99_ms']:.2f}; ZMQ p50 {f['zmq']['p50_ms']:.2f} ms p99 {f['zmq']['p99_ms']:.2f}"
    )
    for key, r in res["latency"].items():
        for path, v in r.items():
            a, b = v["from_sample_ms"], v["from_chunk_push_ms"]
            lines.append(
                f"latency, {key.replace('source_', '')} in -> {path} out ({v['spikes']} spikes): "
                f"from the spike's sample p50 {a['p50']:.2f} p99 {a['p99']:.2f} max {a['max']:.1f} ms; "
                f"from its chunk's push p50 {b['p50']:.2f} p99 {b['p99']:.2f} ms"
            )
    d = res.get("detection")
    if d:
        for _key, r in d["rtclass"].items():
            lines.append(
                f"detection chain alone, {r['chunk_ms']:g} ms chunks: {r['realtime_factor']:.1f}x real time, recall "
                f"{r['detection']['recall_snr_ge_5']:.3f}, precision {r['detection']['precision']:.3f}"
            )
        if "spikeinterface" in d:
            si = d["spikeinterface"]
            lines.append(
                f"SpikeInterface {si['version']} chain: {si['realtime_factor_chain']:.1f}x real time (detection alone "
                f"{si['realtime_factor_detection_only']:.1f}x), recall {si['detection']['recall_snr_ge_5']:.3f}, "
                f"precision {si['detection']['precision']:.3f}; "
                f"rtclass is {d['speed_ratio_vs_spikeinterface_chain']:.0f}x faster"
            )
        else:
            lines.append("SpikeInterface is not installed: no side-by-side detection")
    m = res["memory"]
    lines.append(
        f"memory over {m['data_s']:g} s of data: max RSS {m['rss_mb_first_half_max']:.0f} MB (first half), "
        f"{m['rss_mb_second_half_max']:.0f} MB (second half), {m['units']} units"
    )
    return "\n".join(lines)
