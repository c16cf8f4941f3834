"""The live classifier: inference time vs number of units (one core), and on a simulated
recording run through the whole live pipeline (true templates, so labels are judged on units
that are right): how often the live label equals the offline label of the same unit, how soon
units get a stable label, and how often the label is the true cell type.

    python benchmarks/bench_classifier.py [--duration 120] [--out benchmarks/results/classifier.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rtclass.bench.benchmark import inference, machine, pin_one_core, save_json  # noqa: E402
from rtclass.cell_types import CELL_TYPE_NAMES, UNLABELED  # noqa: E402
from rtclass.classify.model import CellTypeModel, default_model  # noqa: E402
from rtclass.config import Config, SimulateConfig  # noqa: E402
from rtclass.features.c4 import c4_acg  # noqa: E402
from rtclass.features.spike_quality import labelled_acg_spikes  # noqa: E402
from rtclass.ingest.base import SourceStats, StreamInfo  # noqa: E402
from rtclass.pipeline.chain import bank_from_templates  # noqa: E402
from rtclass.pipeline.live import Pipeline  # noqa: E402
from rtclass.sim.recording import Simulation  # noqa: E402


class SimSource:
    """The simulator as a finite source (as fast as possible): the benchmark measures labels."""

    def __init__(self, sim: Simulation, chunk: int):
        self.sim, self.chunk, self.syn = sim, chunk, sim.synthesizer()
        self.stats = SourceStats()

    def open(self):
        return StreamInfo("bench", self.sim.n_channels, self.sim.fs)

    @property
    def finished(self):
        return self.syn.next_sample >= self.sim.n_samples

    def read(self, timeout_s):
        from rtclass.ingest.chunk import Chunk

        first = self.syn.next_sample
        data = self.syn.read(min(self.chunk, self.sim.n_samples - first))
        self.stats.samples_in += data.shape[0]
        return Chunk(data, first, (first + data.shape[0] - 1) / self.sim.fs)

    def close(self):
        pass


def offline_labels(quality, fs, min_good_s, units, spikes, waves, layers, model, threshold, period_end_s):
    """Each unit's label from C4's features of its spikes after the run (through C4's spike filter
    ``quality`` over ``[0, period_end_s]`` when the live run used it; None: C4's period), and the
    units the filter withholds."""
    acg_spikes, withheld = {}, set()
    for u in units:
        if quality is None:
            acg_spikes[u] = np.sort(spikes["sample"][spikes["unit"] == u])
            continue
        t = labelled_acg_spikes(quality.spikes_of(u), quality.amplitudes_of(u), fs, min_good_s, period_end_s)
        if t is None:
            withheld.add(u)
            t = quality.spikes_of(u)
        acg_spikes[u] = t
    acg = np.stack([c4_acg(acg_spikes[u]) for u in units])
    names, _, _ = model.label(model.predict(acg, waves, layers), threshold)
    return [UNLABELED if u in withheld else str(o) for u, o in zip(units, names)], withheld


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--model", default="", help="the model (default: the shipped one, layer-aware with --layers)")
    ap.add_argument(
        "--layers", action="store_true", help="give the simulated layer stack as [classify] layers (layer-aware model)"
    )
    ap.add_argument("--spike-filter", dest="spike_filter", default="c4", help="classify.spike_filter: c4 or off")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "classifier.json"))
    args = ap.parse_args()
    pinned = pin_one_core()
    sim = Simulation(SimulateConfig(duration_s=args.duration, seed=args.seed))
    args.model = args.model or str(default_model(layers_known=args.layers))
    model = CellTypeModel(args.model)
    res = {
        "machine": {**machine(), "pinned_to_one_core": pinned},
        "model": args.model,
        "inference_ms_by_units": inference(),
    }

    classify = {"model": args.model, "interval_s": 1.0, "spike_filter": args.spike_filter}
    if args.layers:
        classify["layers"] = sim.layer_ranges()
    cfg = Config().replace(classify=classify, publish={"zmq": False, "lsl": False})
    res["classify_layers"] = cfg.classify.layers
    bank = bank_from_templates(cfg, sim.probe, sim.fs, sim.dense_templates(), np.arange(len(sim.units)), in_uv=True)
    pipe = Pipeline(cfg, SimSource(sim, 300), probe=sim.probe, bank=bank)
    pipe.open()
    lab = pipe.labeler
    history: dict[int, list[tuple[float, int]]] = {}
    next_tick = cfg.classify.interval_s
    # labelling rounds on data time (the benchmark runs faster than real time)
    while not pipe.source.finished:
        pipe.process(pipe.source.read(0.0))
        now = pipe.samples_processed / sim.fs
        if now >= next_tick:
            lab.tick()
            for u in range(lab.codes.size):
                history.setdefault(u, []).append((now, int(lab.codes[u])))
            next_tick += cfg.classify.interval_s
    feats = pipe.chain.features
    units = [
        u for u in feats.index if feats.spike_count(u) >= cfg.classify.min_spikes and feats.waveform(u) is not None
    ]
    spikes = pipe.log.spikes()
    waves = np.stack([feats.waveform(u) for u in units])
    live = {u: CELL_TYPE_NAMES[int(lab.codes[u])] if u < lab.codes.size else "unlabeled" for u in units}
    # the last round's proposal: the live label before the hysteresis holds it
    proposed = {u: lab.proposal_of(u) for u in units}
    # offline: C4's features of each unit's spikes, through C4's spike filter (with the live run's
    # minimum of good seconds) when the live run used it, over the whole run (the data the live run
    # had) and with C4's own period (up to the last whole minute of the unit's train)
    whole_run_s = sim.n_samples / sim.fs
    offline = {
        rule: offline_labels(
            pipe.chain.spike_quality,
            sim.fs,
            cfg.classify.spike_filter_min_good_s,
            units,
            spikes,
            waves,
            [lab.layers_of(u) for u in units] if model.use_layer else None,
            model,
            lab.threshold,
            period,
        )
        for rule, period in (("whole_run", whole_run_s), ("c4_period", None))
    }
    off_names, withheld_offline = offline["whole_run"]
    agree = {rule: float(np.mean([live[u] == o for u, o in zip(units, names)])) for rule, (names, _) in offline.items()}
    proposal_agrees = float(np.mean([proposed[u] == o for u, o in zip(units, off_names)]))
    # units labelled both live and offline with different types (not one side abstaining)
    contradicted = [u for u, o in zip(units, off_names) if UNLABELED not in (live[u], o) and live[u] != o]
    truth = {u: sim.units[u].cell_type for u in units}
    labelled = [u for u in units if live[u] != "unlabeled"]
    correct = np.mean([live[u] == truth[u] for u in labelled]) if labelled else float("nan")
    # time from a unit's first spike to its last label change (its stable label)
    first_spike = {u: spikes["sample"][spikes["unit"] == u].min() / sim.fs for u in units}
    stable = []
    for u in labelled:
        h = history.get(u, [])
        final = h[-1][1]
        t_stable = next(t for t, c in reversed(h) if c != final) if any(c != final for _, c in h) else h[0][0]
        last_change = min((t for t, c in h if c == final and t >= t_stable), default=h[-1][0])
        stable.append(last_change - first_spike[u])
    res["pipeline"] = {
        "seconds": args.duration,
        "units_with_features": len(units),
        "units_labelled": len(labelled),
        "live_equals_offline_label": agree["whole_run"],
        "live_equals_offline_label_c4_period": agree["c4_period"],
        "live_proposal_equals_offline_label": proposal_agrees,
        "units_labelled_as_different_types_live_and_offline": len(contradicted),
        "labels_right_vs_ground_truth": float(correct),
        "median_s_first_spike_to_stable_label": float(np.median(stable)) if stable else None,
        "confidence_ratio": lab.threshold,
        "spike_filter": cfg.classify.spike_filter,
        "spike_filter_withheld_live": {str(u): why for u, why in lab.withheld.items()},
        "spike_filter_withheld_offline": sorted(int(u) for u in withheld_offline),
        "spike_filter_spikes_left_out_live": {str(u): n for u, n in lab.filtered.items()},
        "per_unit": [
            {
                "unit": int(u),
                "cell_type": truth[u],
                "live_label": live[u],
                "live_proposal": proposed[u],
                "offline_label": str(o),
                "offline_label_c4_period": str(c4),
            }
            for u, o, c4 in zip(units, off_names, offline["c4_period"][0])
        ],
        "by_type": {
            t: {
                "units": sum(truth[u] == t for u in units),
                "labelled": sum(truth[u] == t for u in labelled),
                "right": sum(truth[u] == t and live[u] == t for u in labelled),
            }
            for t in sorted(set(truth.values()))
        },
    }
    save_json(res, args.out)
    print(f"machine: {res['machine']['cpu']} ({'1 core' if pinned else 'not pinned'}); model {args.model}")
    print("inference (ms) by units: " + ", ".join(f"{k}: {v:.2f}" for k, v in res["inference_ms_by_units"].items()))
    p = res["pipeline"]
    print(
        f"{args.duration:g} s through the live pipeline: "
        f"{p['units_labelled']} of {p['units_with_features']} units labelled; "
        f"live label == offline label for {p['live_equals_offline_label']:.3f} (whole run), "
        f"{p['live_equals_offline_label_c4_period']:.3f} (C4's period: to the last whole minute); "
        f"the last round's proposal == offline for {p['live_proposal_equals_offline_label']:.3f}; "
        f"labelled as different types {p['units_labelled_as_different_types_live_and_offline']}; "
        f"right vs ground truth "
        f"{p['labels_right_vs_ground_truth']:.3f}; "
        f"median first spike -> stable label {p['median_s_first_spike_to_stable_label']}"
    )
    for t, v in p["by_type"].items():
        wrong = [
            f"{r['unit']}: {r['live_label']}" for r in p["per_unit"] if r["cell_type"] == t and r["live_label"] != t
        ]
        print(
            f"    {t:7s} {v['units']:3d} units, {v['labelled']:3d} labelled, {v['right']:3d} right  {', '.join(wrong)}"
        )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
