"""Throughput and per-chunk latency of the detection chain (guard + band-pass + CMR + detection),
one core, on the built-in simulated 384-channel probe; recall/precision against ground truth; and
SpikeInterface's chain on the same data in the same run when spikeinterface is installed.

    python benchmarks/bench_detection.py [--duration 20] [--out benchmarks/results/detection.json]

Prints a table and saves JSON (with a description of the machine). Not a test: nothing here
asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, pin_to_one_core  # noqa: E402

from rtclass.config import Config, SimulateConfig  # noqa: E402
from rtclass.evaluation import filtered_template_peaks, score_detection  # noqa: E402
from rtclass.pipeline import DetectionChain  # noqa: E402
from rtclass.sim.recording import Simulation  # noqa: E402

def run_chain(cfg: Config, sim: Simulation, data: np.ndarray, chunk: int) -> dict:
    """The pipeline's own DetectionChain fed ``chunk``-sample chunks, timed per stage."""
    fs = sim.fs
    chain = DetectionChain(cfg, sim.probe, fs)
    DetectionChain(cfg, sim.probe, fs).process(np.zeros((64, sim.n_channels), np.float32), 0)  # compile/load
    n = data.shape[0]
    times = np.zeros((n // chunk + 1, len(DetectionChain.STAGES)))
    peaks = []
    k = 0
    for a in range(0, n, chunk):
        x = data[a : a + chunk].copy()  # what a source hands over
        peaks.append(chain.process(x, a))
        times[k] = chain.times_s
        k += 1
    times = times[:k]
    total = times.sum(1)
    chunk_s = chunk / fs
    out = {
        "chunk_samples": chunk,
        "chunk_ms": chunk_s * 1000,
        "realtime_factor": n / fs / total.sum(),
        "per_chunk_us": {"p50": float(np.percentile(total, 50) * 1e6), "p99": float(np.percentile(total, 99) * 1e6),
                         "max": float(total.max() * 1e6)},
        "chunks_over_budget": int((total > chunk_s).sum()),
        "chunks": int(k),
        "stage_mean_us": {s: float(times[:, i].mean() * 1e6) for i, s in enumerate(DetectionChain.STAGES)},
    }
    return out, np.concatenate(peaks), chain.detector


def score(sim: Simulation, cfg: Config, peaks, noise_sd, start: int) -> dict:
    snr, peak = filtered_template_peaks(sim.dense_templates(), noise_sd, cfg.preprocess, sim.fs)
    p = peaks[peaks["sample"] >= start]
    sel = sim.spike_times >= start
    s = score_detection(p["sample"], p["channel"], sim.spike_times[sel], sim.spike_units[sel], peak, snr,
                        sim.probe.positions_um, sim.fs)
    return {**s.as_dict(), "recall_snr_ge_8": s.recall_above(8.0)}


def spikeinterface_chain(sim: Simulation, data: np.ndarray, cfg: Config, start: int) -> dict | None:
    try:
        import spikeinterface.core as si
        from spikeinterface.preprocessing import bandpass_filter, common_reference
        from spikeinterface.sortingcomponents.peak_detection import detect_peaks
    except ImportError:
        return None
    rec = si.NumpyRecording([data], sampling_frequency=sim.fs)
    rec.set_channel_locations(sim.probe.positions_um)
    job = {"n_jobs": 1, "chunk_duration": "1s", "progress_bar": False}
    t0 = time.perf_counter()
    pre = common_reference(bandpass_filter(rec, freq_min=300.0, freq_max=6000.0), reference="global", operator="median")
    noise = si.get_noise_levels(pre, return_in_uV=False, method="mad")
    pk = detect_peaks(pre, method="locally_exclusive", method_kwargs={"detect_threshold": 5.0, "radius_um": 50.0,
                      "noise_levels": noise}, job_kwargs=job)
    chain_s = time.perf_counter() - t0
    # detection alone, on preprocessed float32 in memory
    y = pre.get_traces().astype(np.float32)
    mem = si.NumpyRecording([y], sampling_frequency=sim.fs)
    mem.set_channel_locations(sim.probe.positions_um)
    t0 = time.perf_counter()
    detect_peaks(mem, method="locally_exclusive", method_kwargs={"detect_threshold": 5.0, "radius_um": 50.0,
                 "noise_levels": noise}, job_kwargs=job)
    detect_s = time.perf_counter() - t0
    peaks = np.zeros(pk.size, [("sample", "<i8"), ("channel", "<i2"), ("amplitude", "<f4")])
    peaks["sample"], peaks["channel"], peaks["amplitude"] = pk["sample_index"], pk["channel_index"], pk["amplitude"]
    dur = data.shape[0] / sim.fs
    import spikeinterface

    return {
        "version": spikeinterface.__version__,
        "chain": "bandpass 300-6000 (order 5, zero-phase) -> global median CMR -> detect_peaks(locally_exclusive, 5 sd, 50 um), 1 s chunks",
        "realtime_factor_chain": dur / chain_s,
        "realtime_factor_detection_only": dur / detect_s,
        "detection": score(sim, cfg, peaks, noise.astype(np.float32), start),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of simulated data")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "detection.json"))
    ap.add_argument("--no-spikeinterface", action="store_true")
    args = ap.parse_args()
    pinned = pin_to_one_core()
    cfg = Config().replace(units={"discovery": False})  # the detection chain alone
    sim = Simulation(SimulateConfig(duration_s=args.duration, seed=args.seed))
    data = sim.synthesizer().read(sim.n_samples)
    results = {"machine": describe_machine(pinned), "data": {"seconds": args.duration, "channels": sim.n_channels,
               "seed": args.seed, "units": len(sim.units)}, "rtclass": {}}
    start = None
    for chunk in (30, 300, 30000):
        res, peaks, det = run_chain(cfg, sim, data, chunk)
        start = det.started_at + det.warmup + det.sweep
        res["detection"] = score(sim, cfg, peaks, det.noise_sd, start)
        results["rtclass"][f"chunk_{chunk}"] = res
    if not args.no_spikeinterface:
        si_res = spikeinterface_chain(sim, data, cfg, start)
        if si_res is not None:
            results["spikeinterface"] = si_res
            results["speed_ratio_chain_1s_chunks"] = results["rtclass"]["chunk_30000"]["realtime_factor"] / si_res["realtime_factor_chain"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"machine: {results['machine']['cpu']} ({'pinned to 1 core' if pinned else 'not pinned'})")
    print(f"{'chain':<34} {'xRT':>6} {'p50 us':>8} {'p99 us':>8} {'max us':>8} {'over':>5} {'recall':>7} {'prec':>6}")
    for key, r in results["rtclass"].items():
        d = r["detection"]
        print(f"rtclass, {r['chunk_ms']:g} ms chunks{'':<13} {r['realtime_factor']:6.1f} {r['per_chunk_us']['p50']:8.0f} "
              f"{r['per_chunk_us']['p99']:8.0f} {r['per_chunk_us']['max']:8.0f} {r['chunks_over_budget']:5d} "
              f"{d['recall_snr_ge_5']:7.3f} {d['precision']:6.3f}")
        print(f"    stage means (us): " + ", ".join(f"{s} {v:.1f}" for s, v in r["stage_mean_us"].items()))
    if "spikeinterface" in results:
        s = results["spikeinterface"]
        print(f"spikeinterface {s['version']} whole chain     {s['realtime_factor_chain']:6.1f}"
              f"{'':>37} {s['detection']['recall_snr_ge_5']:7.3f} {s['detection']['precision']:6.3f}")
        print(f"spikeinterface detection only     {s['realtime_factor_detection_only']:6.1f}")
    print(f"saved {args.out}")


if __name__ == "__main__":
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    main()
