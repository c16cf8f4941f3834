"""Throughput and per-chunk latency of the detection chain (guard, band-pass, CMR, detection) on
one core, on the built-in simulated 384-channel probe; recall/precision against ground truth; and
SpikeInterface's chain on the same data in the same run when spikeinterface is installed.

    python benchmarks/bench_detection.py [--duration 20] [--out benchmarks/results/detection.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rtclass.bench.benchmark import detection_comparison, machine, pin_one_core, save_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of simulated data")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "detection.json"))
    ap.add_argument("--no-spikeinterface", action="store_true")
    args = ap.parse_args()
    pinned = pin_one_core()
    res = {
        "machine": {**machine(), "pinned_to_one_core": pinned},
        **detection_comparison(args.duration, args.seed, with_spikeinterface=not args.no_spikeinterface),
    }
    save_json(res, args.out)
    print(f"machine: {res['machine']['cpu']} ({'pinned to 1 core' if pinned else 'not pinned'})")
    print(f"{'chain':<34} {'xRT':>6} {'p50 us':>8} {'p99 us':>8} {'max us':>8} {'over':>5} {'recall':>7} {'prec':>6}")
    for r in res["rtclass"].values():
        d = r["detection"]
        print(
            f"rtclass, {r['chunk_ms']:g} ms chunks{'':<13} {r['realtime_factor']:6.1f} {r['per_chunk_us']['p50']:8.0f} "
            f"{r['per_chunk_us']['p99']:8.0f} {r['per_chunk_us']['max']:8.0f} {r['chunks_over_budget']:5d} "
            f"{d['recall_snr_ge_5']:7.3f} {d['precision']:6.3f}"
        )
        print("    stage means (us): " + ", ".join(f"{s} {v:.1f}" for s, v in r["stage_mean_us"].items()))
    if "spikeinterface" in res:
        s = res["spikeinterface"]
        print(
            f"spikeinterface {s['version']} whole chain     {s['realtime_factor_chain']:6.1f}"
            f"{'':>37} {s['detection']['recall_snr_ge_5']:7.3f} {s['detection']['precision']:6.3f}"
        )
        print(f"spikeinterface detection only     {s['realtime_factor_detection_only']:6.1f}")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
