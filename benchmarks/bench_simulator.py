"""The simulator: generation speed (384 channels, one core), memory over a long stream, and
the per-type statistics of its spike trains next to the published ranges they should match.

    python benchmarks/bench_simulator.py [--stream-s 600] [--stats-s 300] [--out benchmarks/results/simulator.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rtclass.bench.benchmark import machine, pin_one_core, rss_mb, save_json  # noqa: E402
from rtclass.cell_types import CELL_TYPES  # noqa: E402
from rtclass.config import SimulateConfig  # noqa: E402
from rtclass.sim.recording import Simulation  # noqa: E402

#: C4 mouse ground truth (Beau et al. 2025): median (IQR) of rate, CV, CV2; 5th-percentile ISI (ms)
PUBLISHED = {
    "PkC_ss": {"rate": (96, 82, 121), "cv": (0.44, 0.35, 0.50), "cv2": (0.36, 0.27, 0.43), "isi_p5_ms": 5.3},
    "PkC_cs": {"rate": (1.2, 0.95, 1.47), "cv": (0.91, 0.68, 1.29), "cv2": (0.90, 0.83, 0.97), "isi_p5_ms": 99},
    "MLI": {"rate": (16.5, 9.9, 39), "cv": (0.80, 0.69, 0.98), "cv2": (0.69, 0.60, 0.80), "isi_p5_ms": 8.4},
    "GoC": {"rate": (15.9, 11.6, 19.9), "cv": (0.65, 0.55, 0.81), "cv2": (0.63, 0.53, 0.66), "isi_p5_ms": 14},
    "MFB": {"rate": (11.4, 7.6, 26), "cv": (1.42, 0.87, 1.89), "cv2": (0.94, 0.74, 1.12), "isi_p5_ms": 2.1},
}


def train_stats(sim: Simulation) -> dict:
    per_type: dict[str, dict[str, list[float]]] = {
        t: {"rate": [], "cv": [], "cv2": [], "isi_p5_ms": [], "violations": [], "pause_ms": []} for t in CELL_TYPES
    }
    trains = sim.unit_trains()
    for u, t in zip(sim.units, trains):
        isi = np.diff(t) / sim.fs
        d = per_type[u.cell_type]
        d["rate"].append(t.size / sim.cfg.duration_s)
        if isi.size > 2:
            d["cv"].append(isi.std() / isi.mean())
            d["cv2"].append(float(np.mean(2 * np.abs(np.diff(isi)) / (isi[1:] + isi[:-1]))))
            d["isi_p5_ms"].append(float(np.percentile(isi, 5) * 1000))
        d["violations"].append(int((isi < 0.5e-3).sum()))
        if u.cell_type == "PkC_ss":
            cs = trains[u.partner]
            idx = np.searchsorted(cs, t, side="right") - 1
            ok = idx >= 0
            d["pause_ms"].append(float(((t[ok] - cs[idx[ok]]) / sim.fs * 1000).min()) if ok.any() else float("nan"))
    out = {}
    for ct, d in per_type.items():
        out[ct] = {
            k: {"median": float(np.median(v)), "q25": float(np.percentile(v, 25)), "q75": float(np.percentile(v, 75))}
            for k, v in d.items()
            if v and k not in ("violations",)
        }
        out[ct]["refractory_violations"] = int(sum(d["violations"]))
        out[ct]["units"] = len(d["rate"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stream-s", type=float, default=600.0, help="seconds streamed for speed and memory")
    ap.add_argument("--stats-s", type=float, default=300.0, help="seconds of spike trains for the statistics")
    ap.add_argument("--units-per-type", type=int, default=20)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "simulator.json"))
    args = ap.parse_args()
    pinned = pin_one_core()
    res = {"machine": {**machine(), "pinned_to_one_core": pinned}}

    sim = Simulation(SimulateConfig(duration_s=args.stream_s, seed=1))
    syn = sim.synthesizer()
    syn.read(300)  # compile
    block = 30000
    rss, t0 = [], time.perf_counter()
    busy = 0.0
    while syn.next_sample < sim.n_samples:
        t = time.perf_counter()
        syn.read(min(block, sim.n_samples - syn.next_sample))
        busy += time.perf_counter() - t
        if syn.next_sample % (10 * block) == 0 or syn.next_sample >= sim.n_samples:  # every 10 s, and at the end
            rss.append(rss_mb())
    res["generation"] = {
        "seconds": args.stream_s,
        "channels": sim.n_channels,
        "units": len(sim.units),
        "realtime_factor": args.stream_s / busy,
        "wall_s": time.perf_counter() - t0,
        "rss_mb_first": rss[0] if rss else None,
        "rss_mb_last": rss[-1] if rss else None,
        "rss_mb_max": max(rss) if rss else None,
    }
    stats_sim = Simulation(SimulateConfig(duration_s=args.stats_s, seed=2, units_per_type=args.units_per_type))
    res["statistics"] = train_stats(stats_sim)
    res["published_c4_mouse"] = PUBLISHED
    save_json(res, args.out)

    g = res["generation"]
    print(f"machine: {res['machine']['cpu']} ({'1 core' if pinned else 'not pinned'})")
    print(
        f"generation: {g['realtime_factor']:.1f}x real time ({g['channels']} ch, {g['units']} units); "
        f"RSS {g['rss_mb_first']:.0f} -> {g['rss_mb_last']:.0f} MB over {g['seconds']:g} s streamed"
    )
    print(
        f"\nspike trains, {args.units_per_type} units per type x {args.stats_s:g} s: "
        "simulated median (IQR) | C4 mouse median (IQR)"
    )
    print(f"{'type':<7} {'rate Hz':>24} {'CV':>22} {'CV2':>22} {'ISI p5 ms':>16} {'viol':>5} {'CS->SS pause':>13}")
    for ct, s in res["statistics"].items():
        p = PUBLISHED[ct]

        def cell(key, fmt, s=s, p=p):
            q = s[key]
            pub = p[key]
            return f"{q['median']:{fmt}} ({q['q25']:{fmt}}-{q['q75']:{fmt}}) | {pub[0]:{fmt}}"

        pause = f"{s['pause_ms']['median']:.1f} ms" if "pause_ms" in s else ""
        print(
            f"{ct:<7} {cell('rate', '.1f'):>24} {cell('cv', '.2f'):>22} {cell('cv2', '.2f'):>22} "
            f"{s['isi_p5_ms']['median']:6.1f} | {p['isi_p5_ms']:<5g} {s['refractory_violations']:5d} {pause:>13}"
        )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
