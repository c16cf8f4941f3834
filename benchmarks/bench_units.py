"""Unit assignment on the simulated probe: accuracy with the true templates given, accuracy of
online discovery without them (SpikeInterface's compare_sorter_to_ground_truth definition), per
SNR band; and throughput / per-chunk time with matching on (384 channels, one core).

    python benchmarks/bench_units.py [--duration 60] [--out benchmarks/results/units.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rtclass.bench.benchmark import feed_timed, machine, pin_one_core, save_json  # noqa: E402
from rtclass.config import Config, SimulateConfig  # noqa: E402
from rtclass.discovery.online import with_earlier_spikes  # noqa: E402
from rtclass.evaluation.scoring import filtered_template_peaks, match_detections, score_sorting  # noqa: E402
from rtclass.pipeline.chain import DetectionChain, bank_from_templates  # noqa: E402
from rtclass.sim.recording import Simulation  # noqa: E402

SNR_BANDS = ((0.0, 3.0), (3.0, 5.0), (5.0, 8.0), (8.0, 12.0), (12.0, np.inf))
CHUNK = 30  # 1 ms


#: the simulated recording is generated and fed in blocks of this many samples (a 300 s run of
#: 384 channels would need 14 GB at once)
BLOCK = 30000


def run(cfg: Config, sim: Simulation, bank) -> tuple[np.ndarray, DetectionChain, dict]:
    chain = DetectionChain(cfg, sim.probe, sim.fs, bank)
    synth = sim.synthesizer()
    found, times = [], []
    for a in range(0, sim.n_samples, BLOCK):
        spikes, t = feed_timed(chain, synth.read(min(BLOCK, sim.n_samples - a)), CHUNK, first=a)
        found.append(spikes)
        times.append(t)
    spikes, t = np.concatenate(found), np.concatenate(times)
    total = t.sum(1)
    perf = {
        "realtime_factor": sim.n_samples / sim.fs / total.sum(),
        "per_chunk_us": {
            "p50": float(np.percentile(total, 50) * 1e6),
            "p99": float(np.percentile(total, 99) * 1e6),
            "max": float(total.max() * 1e6),
        },
        "stage_mean_us": {s: float(t[:, i].mean() * 1e6) for i, s in enumerate(DetectionChain.STAGES)},
        "chunks_over_budget": int((total > CHUNK / sim.fs).sum()),
    }
    return spikes, chain, perf


def band_table(values: np.ndarray, snr: np.ndarray) -> dict:
    return {
        f"{lo:g}-{hi:g}": {
            "mean": float(values[(snr >= lo) & (snr < hi)].mean()),
            "units": int(((snr >= lo) & (snr < hi)).sum()),
        }
        for lo, hi in SNR_BANDS
        if ((snr >= lo) & (snr < hi)).any()
    }


def type_table(values: np.ndarray, types: list[str]) -> dict:
    """Mean and worst of a per-unit score, per cell type (units without a score left out)."""
    out = {}
    for t in sorted(set(types)):
        v = values[[k for k, name in enumerate(types) if name == t]]
        v = v[np.isfinite(v)]
        if v.size:
            out[t] = {"mean": float(v.mean()), "worst": float(v.min()), "units": int(v.size)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "units.json"))
    ap.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config key (JSON value)"
    )
    args = ap.parse_args()
    pinned = pin_one_core()
    overrides: dict[str, dict] = {}
    for item in args.set:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        overrides.setdefault(section, {})[name] = json.loads(value)
    cfg = Config().replace(**overrides) if overrides else Config()
    sim = Simulation(SimulateConfig(duration_s=args.duration, seed=args.seed))
    n_units = len(sim.units)
    res = {
        "machine": {**machine(), "pinned_to_one_core": pinned},
        "data": {"seconds": args.duration, "units": n_units, "seed": args.seed},
        "config_overrides": overrides,
    }

    # --- true templates given
    bank = bank_from_templates(cfg, sim.probe, sim.fs, sim.dense_templates(), np.arange(n_units), in_uv=True)
    warm = DetectionChain(
        cfg,
        sim.probe,
        sim.fs,
        bank_from_templates(cfg, sim.probe, sim.fs, sim.dense_templates(), np.arange(n_units), in_uv=True),
    )
    warm.process(sim.synthesizer().read(BLOCK), 0)  # compile / load kernels
    spikes, chain, perf = run(cfg, sim, bank)
    det = chain.detector
    start = det.started_at + det.warmup + det.sweep + 30
    snr, peak = filtered_template_peaks(sim.dense_templates(), det.noise_sd, cfg.preprocess, sim.fs)
    sel_gt = sim.spike_times >= start
    gt_t, gt_u = sim.spike_times[sel_gt], sim.spike_units[sel_gt]
    sp = spikes[spikes["sample"] >= start]
    # per ground-truth spike: the detection that found it (score_detection's rule) and its unit
    hit = match_detections(sp["sample"], sp["channel"], gt_t, gt_u, peak, sim.probe.positions_um, sim.fs)
    detected = hit >= 0
    right = detected & (sp["unit"][np.maximum(hit, 0)] == gt_u)
    acc_detected = np.array(
        [right[(gt_u == u) & detected].mean() if ((gt_u == u) & detected).any() else np.nan for u in range(n_units)]
    )
    acc_all = np.array([right[gt_u == u].mean() if (gt_u == u).any() else np.nan for u in range(n_units)])
    # of the spikes given unit u, the fraction that are u's (false positives and other units' spikes lower it)
    given = np.bincount(sp["unit"][sp["unit"] >= 0], minlength=n_units)[:n_units]
    right_n = np.bincount(gt_u[right], minlength=n_units)
    precision = np.where(given > 0, right_n / np.maximum(given, 1), np.nan)
    ok = snr >= 5
    types = [sim.units[u].cell_type for u in range(n_units)]
    res["with_true_templates"] = {
        "performance": perf,
        "spikes_right_unit_of_detected_snr_ge_5": float(right[detected & ok[gt_u]].mean()),
        "spikes_right_unit_of_all_snr_ge_5": float(right[ok[gt_u]].mean()),
        "unassigned_fraction": float((sp["unit"] < 0).mean()),
        "right_unit_of_detected_by_snr": band_table(acc_detected, snr),
        "right_unit_of_all_by_snr": band_table(acc_all, snr),
        "right_unit_of_all_by_type": type_table(acc_all, types),
        "precision_by_type": type_table(precision, types),
        "per_unit": [
            {
                "unit": u,
                "type": types[u],
                "snr": float(snr[u]),
                "spikes": int((gt_u == u).sum()),
                "detected": float(detected[gt_u == u].mean()) if (gt_u == u).any() else None,
                "right_of_all": None if np.isnan(acc_all[u]) else float(acc_all[u]),
                "right_of_detected": None if np.isnan(acc_detected[u]) else float(acc_detected[u]),
                "precision": None if np.isnan(precision[u]) else float(precision[u]),
            }
            for u in range(n_units)
        ],
    }

    # --- no templates: online discovery
    spikes, chain, perf = run(cfg, sim, None)
    sp = spikes[spikes["sample"] >= start]
    sc = score_sorting(gt_t, gt_u, sp["sample"], sp["unit"], n_units, sim.fs)
    # the output files' view: each discovered unit's earlier spikes (the cluster it was found
    # from, published unassigned) given that unit
    sp_files = with_earlier_spikes(sp, chain.discovery.earlier)
    sc_files = score_sorting(gt_t, gt_u, sp_files["sample"], sp_files["unit"], n_units, sim.fs)
    first_minute = sp_files["sample"] < min(sim.n_samples, int(60 * sim.fs))
    g_first = gt_t < min(sim.n_samples, int(60 * sim.fs))
    sc_files_first = score_sorting(
        gt_t[g_first], gt_u[g_first], sp_files["sample"][first_minute], sp_files["unit"][first_minute], n_units, sim.fs
    )

    def scored_between(lo: int, hi: int):
        """The sorting scored on samples [lo, hi) alone, and which units fired there."""
        g = (gt_t >= lo) & (gt_t < hi)
        s_ = (sp["sample"] >= lo) & (sp["sample"] < hi)
        return (
            score_sorting(gt_t[g], gt_u[g], sp["sample"][s_], sp["unit"][s_], n_units, sim.fs),
            np.bincount(gt_u[g], minlength=n_units) > 0,
        )

    # steady state: units found in the first half, scored on the second
    sc_late, _ = scored_between(sim.n_samples // 2, sim.n_samples)
    minute = int(60 * sim.fs)
    # each minute scored alone (a unit silent that minute is not scored): does a long run hold its units?
    by_minute = []
    for a in range(0, sim.n_samples, minute):
        sc_minute, fired = scored_between(a, a + minute)
        by_minute.append(sc_minute.well_detected(ok & fired))
    fired_first = np.bincount(gt_u[g_first], minlength=n_units) > 0
    res["discovery"] = {
        "well_detected_snr_ge_5_in_files": sc_files.well_detected(ok),
        "well_detected_snr_ge_5_first_minute_in_files": sc_files_first.well_detected(ok & fired_first),
        "earlier_spikes_assigned_in_files": int((sp["unit"] < 0).sum() - (sp_files["unit"] < 0).sum()),
        "well_detected_snr_ge_5_second_half": sc_late.well_detected(ok),
        "well_detected_snr_ge_5_each_minute": by_minute,
        "performance": perf,
        "units_found": int(chain.bank.n),
        "well_detected_snr_ge_5": sc.well_detected(ok),
        "well_detected_snr_ge_8": sc.well_detected(snr >= 8),
        "accuracy_by_snr": band_table(sc.accuracy, snr),
        "accuracy_by_type_snr_ge_5": type_table(np.where(ok, sc.accuracy, np.nan), types),
        "per_unit": [
            {
                "unit": u,
                "type": sim.units[u].cell_type,
                "snr": float(snr[u]),
                "accuracy": float(sc.accuracy[u]),
                "recall": float(sc.recall[u]),
                "precision": float(sc.precision[u]),
                "sorted_id": int(sc.matched_unit[u]),
            }
            for u in range(n_units)
        ],
    }
    save_json(res, args.out)
    t, g = res["with_true_templates"], res["discovery"]
    print(
        f"machine: {res['machine']['cpu']} ({'1 core' if pinned else 'not pinned'}); "
        f"{args.duration:g} s, {n_units} units"
    )
    print(
        f"true templates: right unit for {t['spikes_right_unit_of_detected_snr_ge_5']:.3f} "
        "of detected spikes of SNR>=5 units "
        f"({t['spikes_right_unit_of_all_snr_ge_5']:.3f} of all their spikes); "
        f"{t['performance']['realtime_factor']:.1f}x RT, chunk p99 {t['performance']['per_chunk_us']['p99']:.0f} us"
    )
    for band, v in t["right_unit_of_detected_by_snr"].items():
        print(
            f"    SNR {band:>8}: {v['mean']:.3f} of detected, "
            f"{t['right_unit_of_all_by_snr'][band]['mean']:.3f} of all ({v['units']} units)"
        )
    for cell_type, v in t["right_unit_of_all_by_type"].items():
        precision = t["precision_by_type"].get(cell_type, {}).get("mean", float("nan"))
        print(
            f"    {cell_type:7s}: {v['mean']:.3f} of all spikes right "
            f"(worst unit {v['worst']:.3f}, {v['units']} units); precision {precision:.3f}"
        )
    print(
        f"discovery: {g['units_found']} units found; "
        f"well detected (accuracy >= 0.8): {g['well_detected_snr_ge_5']:.2f} of SNR>=5 units, "
        f"{g['well_detected_snr_ge_8']:.2f} of SNR>=8; "
        f"second half alone: {g['well_detected_snr_ge_5_second_half']:.2f} of SNR>=5; "
        f"each minute alone: {', '.join(f'{v:.2f}' for v in g['well_detected_snr_ge_5_each_minute'])}; "
        f"{g['performance']['realtime_factor']:.1f}x RT, "
        f"chunk p99 {g['performance']['per_chunk_us']['p99']:.0f} us, "
        f"max {g['performance']['per_chunk_us']['max']:.0f} us"
    )
    for band, v in g["accuracy_by_snr"].items():
        print(f"    SNR {band:>8}: mean accuracy {v['mean']:.3f} ({v['units']} units)")
    for row in g["per_unit"]:
        if row["snr"] >= 5:
            print(
                f"      unit {row['unit']:3d} {row['type']:7s} snr {row['snr']:5.1f} acc {row['accuracy']:.2f} "
                f"rec {row['recall']:.2f} prec {row['precision']:.2f} -> {row['sorted_id']}"
            )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
