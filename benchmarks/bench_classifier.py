"""The live classifier: inference time vs number of units (one core), and on a simulated
recording run through the whole live pipeline (true templates, so labels are judged on units
that are right): how often the live label equals the offline label of the same unit, how soon
units get a stable label, and how often the label is the true cell type.

    python benchmarks/bench_classifier.py [--duration 120] [--out benchmarks/results/classifier.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rtclass.bench.benchmark import inference, machine, pin_one_core, save_json
from rtclass.bench.live_labels import live_against_offline
from rtclass.classify.model import default_model


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
    model = args.model or str(default_model(layers_known=args.layers))
    res = {
        "machine": {**machine(), "pinned_to_one_core": pinned},
        "model": model,
        "inference_ms_by_units": inference(),
    }
    res["pipeline"] = live_against_offline(args.duration, args.seed, model, args.layers, args.spike_filter)
    res["classify_layers"] = res["pipeline"]["classify_layers"]
    save_json(res, args.out)
    print(f"machine: {res['machine']['cpu']} ({'1 core' if pinned else 'not pinned'}); model {res['model']}")
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
