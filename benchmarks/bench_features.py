"""Per-unit features: live update cost per spike with 1000 units firing at 50 Hz, time to read out
the 3D-ACGs of 400 units, memory per unit, offline 3D-ACG time for 400 units x 30 min, and the
live-vs-offline 3D-ACG error.

    python benchmarks/bench_features.py [--out benchmarks/results/features.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rtclass.bench.benchmark import machine, pin_one_core, save_json  # noqa: E402
from rtclass.features.c4 import c4_acg  # noqa: E402
from rtclass.features.unit_features import UnitFeatures  # noqa: E402

FS = 30000


def gamma_train(rng, rate, k, seconds):
    isi = rng.gamma(k, 1.0 / (k * rate), int(rate * seconds * 1.3) + 10)
    t = np.cumsum(isi)
    return np.round(t[t < seconds] * FS).astype(np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--live-s", type=float, default=20.0, help="seconds of 1000 units x 50 Hz streamed")
    ap.add_argument("--offline-units", type=int, default=400)
    ap.add_argument("--offline-minutes", type=float, default=30.0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "features.json"))
    args = ap.parse_args()
    pinned = pin_one_core()
    rng = np.random.default_rng(0)
    res = {"machine": {**machine(), "pinned_to_one_core": pinned}}

    # live: 1000 units at 50 Hz, fed in 1 ms batches as the pipeline does
    n_units = 1000
    trains = [gamma_train(rng, 50.0, 3.0, args.live_s) for _ in range(n_units)]
    t_all = np.concatenate(trains)
    u_all = np.concatenate([np.full(t.size, u) for u, t in enumerate(trains)])
    order = np.argsort(t_all, kind="stable")
    t_all, u_all = t_all[order], u_all[order]
    bank = UnitFeatures(384, FS, 100, 12)
    chans = np.arange(12)
    bank.update(t_all[:10], u_all[:10], lambda u: chans)  # compile
    bank = UnitFeatures(384, FS, 100, 12)
    edges = np.searchsorted(t_all, np.arange(0, int(args.live_s * FS) + 30, 30))
    t0 = time.perf_counter()
    for a, b in zip(edges[:-1], edges[1:]):
        if b > a:
            bank.update(t_all[a:b], u_all[a:b], lambda u: chans)
    busy = time.perf_counter() - t0
    res["live_update"] = {
        "units": n_units,
        "rate_hz": 50.0,
        "seconds": args.live_s,
        "spikes": int(t_all.size),
        "us_per_spike": busy / t_all.size * 1e6,
        "share_of_one_core": busy / args.live_s,
    }
    # read-out of 400 units
    t0 = time.perf_counter()
    for u in range(400):
        bank.acg3d(u)
    res["readout_400_units_ms"] = (time.perf_counter() - t0) * 1e3
    res["memory_bytes_per_unit"] = bank.memory_bytes_per_unit
    # live vs offline error on long trains (beyond the exact-record limit)
    errs = []
    for rate, k in ((5.0, 1.0), (20.0, 2.0), (100.0, 8.0)):
        t = gamma_train(rng, rate, k, 600.0)
        b = UnitFeatures(4, FS, 100, 4)
        for a in range(0, t.size, 40):
            b.update(t[a : a + 40], np.zeros(min(40, t.size - a), int), lambda u: np.arange(4))
        off = c4_acg(t)
        errs.append(
            {
                "rate_hz": rate,
                "gamma_k": k,
                "spikes": int(t.size),
                "max_error_over_max": float(np.abs(b.acg3d(0) - off).max() / np.abs(off).max()),
            }
        )
    res["live_vs_offline"] = errs
    # offline: 400 units x 30 min (ACG part; waveform extraction depends on the disk)
    n_off, minutes = args.offline_units, args.offline_minutes
    sample = [gamma_train(rng, r, 2.0, minutes * 60) for r in rng.uniform(2, 80, 10)]
    t0 = time.perf_counter()
    for t in sample:
        c4_acg(t)
    per_unit = (time.perf_counter() - t0) / len(sample)
    res["offline_acg"] = {
        "units": n_off,
        "minutes": minutes,
        "s_per_unit": per_unit,
        "estimated_total_s": per_unit * n_off,
        "measured_units": len(sample),
    }
    save_json(res, args.out)
    lu = res["live_update"]
    print(f"machine: {res['machine']['cpu']} ({'1 core' if pinned else 'not pinned'})")
    print(
        f"live update: {lu['us_per_spike']:.2f} us per spike with {n_units} units at 50 Hz "
        f"({lu['share_of_one_core'] * 100:.1f} % of one core)"
    )
    print(
        f"read-out of 400 units' 3D-ACGs: {res['readout_400_units_ms']:.0f} ms; "
        f"memory per unit {res['memory_bytes_per_unit'] / 1024:.0f} KiB"
    )
    for e in errs:
        print(
            f"live vs offline 3D-ACG, {e['rate_hz']:g} Hz (gamma {e['gamma_k']:g}), {e['spikes']} spikes: "
            f"max error {e['max_error_over_max'] * 100:.2f} % of the ACG maximum"
        )
    o = res["offline_acg"]
    print(
        f"offline 3D-ACG: {o['s_per_unit']:.2f} s per unit of {minutes:g} min -> "
        f"{o['estimated_total_s']:.0f} s for {n_off} units "
        f"(measured on {o['measured_units']})"
    )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
