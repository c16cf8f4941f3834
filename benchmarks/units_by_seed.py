"""Unit assignment over several seeds, scored per unit: `bench_units.py` once per seed (and once
more with `--compare` overrides, run right after it on the same seed), then per SNR band and per
cell type the mean and worst unit of every ground-truth spike given the right unit, the units'
precision, how many units meet the per-band targets, each unit that misses them, and online
discovery's well-detected fraction per seed.

    python benchmarks/units_by_seed.py [--duration 60] [--seeds 5 7 11 13 17 19 23 29]
        [--compare detect.template_threshold_sd=5.0] [--out benchmarks/results/units_by_seed_60s.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from rtclass.bench.benchmark import machine, save_json
from rtclass.cell_types import CELL_TYPE_NAMES

HERE = Path(__file__).parent
#: per SNR band (low, high): the fraction of a unit's spikes that must get the right unit
TARGETS = {(3.0, 5.0): 0.6, (5.0, 8.0): 0.85, (8.0, np.inf): 0.9}


def run_seed(seed: int, duration_s: float, overrides: list[str], folder: Path) -> dict:
    out = folder / f"seed{seed}{'_compare' if overrides else ''}.json"
    cmd = [sys.executable, str(HERE / "bench_units.py"), "--duration", str(duration_s), "--seed", str(seed)]
    for item in overrides:
        cmd += ["--set", item]
    subprocess.run([*cmd, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def _band_name(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">={lo:g}"


def _right_and_precision(units: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The units' fractions of spikes right, and their precisions (units given no spike left out)."""
    right = np.array([u["right_of_all"] for u in units])
    return right, np.array([u["precision"] for u in units if u["precision"] is not None])


def summarise(runs: dict[int, dict]) -> dict:
    """Per band and per type, over all seeds' units (true templates given); discovery per seed."""
    rows = [{"seed": s, **u} for s, r in runs.items() for u in r["with_true_templates"]["per_unit"]]
    bands = {}
    for (lo, hi), target in TARGETS.items():
        sel = [u for u in rows if lo <= u["snr"] < hi]
        right, precision = _right_and_precision(sel)
        bands[_band_name(lo, hi)] = {
            "units": len(sel),
            "mean_right": float(right.mean()),
            "worst_right": float(right.min()),
            "target": target,
            "meeting_target": int((right >= target).sum()),
            "mean_precision": float(precision.mean()),
        }
    types = {}
    for name in CELL_TYPE_NAMES[1:]:
        sel = [u for u in rows if u["type"] == name and u["snr"] >= 3]
        if not sel:
            continue
        right, precision = _right_and_precision(sel)
        types[name] = {
            "units_snr_ge_3": len(sel),
            "mean_right": float(right.mean()),
            "worst_right": float(right.min()),
            "mean_precision": float(precision.mean()),
            "worst_precision": float(precision.min()),
        }
    missing = [
        u for u in rows for (lo, hi), target in TARGETS.items() if lo <= u["snr"] < hi and u["right_of_all"] < target
    ]
    return {
        "true_templates_by_snr": bands,
        "true_templates_by_type": types,
        "units_missing_targets": missing,
        "discovery_well_detected_snr_ge_5": {s: r["discovery"]["well_detected_snr_ge_5"] for s, r in runs.items()},
        "discovery_each_minute": {s: r["discovery"]["well_detected_snr_ge_5_each_minute"] for s, r in runs.items()},
        # the output files, where each discovered unit's earlier spikes are given to it
        "discovery_well_detected_snr_ge_5_in_files": {
            s: r["discovery"]["well_detected_snr_ge_5_in_files"] for s, r in runs.items()
        },
        "discovery_first_minute_in_files": {
            s: r["discovery"]["well_detected_snr_ge_5_first_minute_in_files"] for s, r in runs.items()
        },
        "realtime_factor": {
            "true_templates": float(
                np.mean([r["with_true_templates"]["performance"]["realtime_factor"] for r in runs.values()])
            ),
            "discovery": float(np.mean([r["discovery"]["performance"]["realtime_factor"] for r in runs.values()])),
        },
    }


def print_summary(title: str, s: dict) -> None:
    print(title)
    for band, v in s["true_templates_by_snr"].items():
        print(
            f"  SNR {band:>5}: {v['units']:3d} units, right {v['mean_right']:.3f} (worst {v['worst_right']:.3f}), "
            f"{v['meeting_target']} meet >= {v['target']:g}; precision {v['mean_precision']:.3f}"
        )
    for name, v in s["true_templates_by_type"].items():
        print(
            f"  {name:7s}: {v['units_snr_ge_3']:3d} units, right {v['mean_right']:.3f} (worst {v['worst_right']:.3f}); "
            f"precision {v['mean_precision']:.3f} (worst {v['worst_precision']:.3f})"
        )
    disc = list(s["discovery_well_detected_snr_ge_5"].values())
    print(f"  discovery, SNR >= 5 well detected: {np.mean(disc):.3f} (per seed {', '.join(f'{d:.2f}' for d in disc)})")
    files = list(s["discovery_well_detected_snr_ge_5_in_files"].values())
    first = [m[0] for m in s["discovery_each_minute"].values()]
    first_files = list(s["discovery_first_minute_in_files"].values())
    print(
        f"  ... in the output files (earlier spikes given to their units): {np.mean(files):.3f} "
        f"(per seed {', '.join(f'{d:.2f}' for d in files)}); first minute {np.mean(first):.3f} live, "
        f"{np.mean(first_files):.3f} in the files"
    )
    print(f"  units missing their band's target: {len(s['units_missing_targets'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[5, 7, 11, 13, 17, 19, 23, 29])
    ap.add_argument("--compare", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--out", default=str(HERE / "results" / "units_by_seed_60s.json"))
    args = ap.parse_args()
    runs, compare = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            runs[seed] = run_seed(seed, args.duration, [], Path(tmp))
            if args.compare:
                compare[seed] = run_seed(seed, args.duration, args.compare, Path(tmp))
    res = {
        "machine": machine(),
        "seconds": args.duration,
        "seeds": args.seeds,
        "defaults": summarise(runs),
    }
    if compare:
        res["compare"] = {"overrides": args.compare, **summarise(compare)}
    save_json(res, args.out)
    print_summary(f"defaults ({args.duration:g} s x {len(args.seeds)} seeds)", res["defaults"])
    if compare:
        print_summary(f"with {' '.join(args.compare)}", res["compare"])
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
