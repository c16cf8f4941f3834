"""What a setting costs: the chain's processing time with the defaults against the same chain
with one setting changed (``--off``; by default the template-aware threshold switched off,
``[detect] template_threshold_sd`` = ``threshold_sd``), on the same simulated data, one core,
1 ms chunks, runs interleaved (on, off, on, off, ...) so that the machine's drift falls on both;
with true templates given and with online discovery.

    python benchmarks/bench_setting_cost.py [--duration 20] [--pairs 4]
        [--off detect.template_threshold_sd=5.0] [--out benchmarks/results/template_threshold_cost.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rtclass.bench.benchmark import machine, pin_one_core, save_json
from rtclass.config import Config, SimulateConfig
from rtclass.pipeline.chain import DetectionChain, bank_from_templates
from rtclass.sim.recording import Simulation

CHUNK = 30  # 1 ms at 30 kHz


def run(sim: Simulation, data: np.ndarray, overrides: dict, templates: bool) -> np.ndarray:
    """Per-chunk processing times (s) of one pass over ``data`` with config ``overrides``
    (section -> {key: value}; empty: the defaults)."""
    cfg = Config().replace(**overrides) if overrides else Config()
    bank = None
    if templates:
        bank = bank_from_templates(cfg, sim.probe, sim.fs, sim.dense_templates(), np.arange(len(sim.units)), in_uv=True)
    chain = DetectionChain(cfg, sim.probe, sim.fs, bank)
    times = np.empty(-(-data.shape[0] // CHUNK))
    for k, a in enumerate(range(0, data.shape[0], CHUNK)):
        t0 = time.perf_counter()
        chain.process(data[a : a + CHUNK], a)
        times[k] = time.perf_counter() - t0
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument(
        "--off",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="the setting compared with the defaults (JSON value; repeatable); default: the "
        "template-aware threshold off",
    )
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "template_threshold_cost.json"))
    args = ap.parse_args()
    pinned = pin_one_core()
    sim = Simulation(SimulateConfig(duration_s=args.duration, seed=args.seed))
    data = sim.synthesizer().read(sim.n_samples)
    off: dict[str, dict] = {}
    for item in args.off or [f"detect.template_threshold_sd={Config().detect.threshold_sd}"]:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        off.setdefault(section, {})[name] = json.loads(value)
    res = {
        "machine": {**machine(), "pinned_to_one_core": pinned},
        "seconds": args.duration,
        "off": off,
        "defaults_of_those": {sec: {k: getattr(getattr(Config(), sec), k) for k in keys} for sec, keys in off.items()},
    }
    for templates in (True, False):
        run(sim, data, {}, templates), run(sim, data, off, templates)  # compile, warm caches
        pairs = []
        for _ in range(args.pairs):
            t_on, t_off = run(sim, data, {}, templates), run(sim, data, off, templates)
            pairs.append(
                {
                    "time_ratio_on_over_off": float(t_on.sum() / t_off.sum()),
                    "realtime_factor_on": args.duration / float(t_on.sum()),
                    "realtime_factor_off": args.duration / float(t_off.sum()),
                    "chunk_p99_us_on": float(np.percentile(t_on, 99) * 1e6),
                    "chunk_p99_us_off": float(np.percentile(t_off, 99) * 1e6),
                }
            )
        mode = "true_templates" if templates else "discovery"
        res[mode] = pairs
        ratios = [p["time_ratio_on_over_off"] for p in pairs]
        print(
            f"{mode}: time on/off {min(ratios):.2f}-{max(ratios):.2f} (median {np.median(ratios):.2f}); "
            + ", ".join(f"{p['realtime_factor_on']:.1f}x vs {p['realtime_factor_off']:.1f}x" for p in pairs)
        )
    save_json(res, args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
