"""Rebuild the shipped default classifier, rtclass/models/rtclass-c4sim-v2, from scratch (about 40 min on 2 cores).

    pip install -e '.[train]' && python scripts/build_default_model.py

A build step of the source checkout, not part of the installed package: it writes the model into the
checkout's package data (rtclass/models/), which the wheel then ships, and the cross-generator
evaluation into benchmarks/results/classifier_generalisation.json.

Two generators of labelled units, designed independently: A (``rtclass.sim``, every per-unit range
widened by 30 % for training) and B (``rtclass.sim.independent``: other spike-train processes, waveform
model, noise and sorting errors). The recipe (network ensemble and physiology baseline) is first
trained on one generator and tested on the other, both ways; the shipped model is then trained on
both, and tested on held-out seeds and regimes of each. The card reports all of it, and the
classifier that did better across generators is the one used live.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rtclass.classify.model import DEFAULT_MODEL_NAME
from rtclass.classify.train import cross_generator_evaluation, load_set, train_command
from rtclass.config import SimulateConfig
from rtclass.sim.independent.units import write_feature_set
from rtclass.sim.training import write_training_set

CHECKOUT = Path(__file__).resolve().parents[1]
#: cached training sets (git-ignored): a rerun with the same settings reuses them
WORK = CHECKOUT / "scripts" / "_training_sets"
#: the checkout's package data, not the installed package's (which may be a wheel in site-packages)
OUT = CHECKOUT / "rtclass" / "models" / DEFAULT_MODEL_NAME
RESULTS = CHECKOUT / "benchmarks" / "results" / "classifier_generalisation.json"
A_TRAIN_SEEDS = (101, 102, 103, 104)
B_TRAIN_SEEDS = (1, 2, 3, 4)
B_HELD_SEED = 11
UNITS_PER_TYPE = 100
HELD_UNITS_PER_TYPE = 60
DURATION_S = 300.0
SPREAD = 0.3
#: ensemble size: 3 keeps inference for 400 units near 20 ms on one core
MEMBERS = 3
EPOCHS = 30
CROSS_DESCRIPTION = (
    "Generator A is rtclass's simulator (rtclass.sim: gamma renewal trains with slow rate modulation, waveforms "
    "as sums of Gaussian phases, uniform missed spikes and contamination). Generator B (rtclass.sim.independent) "
    "was designed separately: other spike-train processes, a waveform model built from action-potential "
    "derivatives through an acquisition filter, coloured averaging noise, amplitude- and burst-dependent "
    "missed spikes. Each direction trains the same recipe on one generator only and tests it on the other."
)


def _set(name: str, make) -> str:
    """A training set folder, made unless an earlier run left it (same settings, same bytes)."""
    folder = WORK / name
    if not (folder / "features.npz").exists():
        t0 = time.perf_counter()
        make(folder)
        print(f"made {folder} in {time.perf_counter() - t0:.0f} s", flush=True)
    return str(folder)


def _a(seed: int, units: int, **kw) -> Callable:
    cfg = SimulateConfig(duration_s=DURATION_S, seed=seed, units_per_type=units, **kw)
    return lambda folder: write_training_set(cfg, folder)


def _b(seed: int, units: int) -> Callable:
    return lambda folder: write_feature_set(folder, seed, units, DURATION_S)


def _summary(evaluations: dict) -> str:
    return ", ".join(
        f"{k}: network {v['balanced_accuracy']:.3f} (abstains {100 * v['abstained']:.0f} %), "
        f"baseline {v['baseline']['balanced_accuracy']:.3f}"
        for k, v in evaluations.items()
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--members", type=int, default=MEMBERS)
    args = ap.parse_args()
    a_train = [_set(f"a_train_seed{s}", _a(s, UNITS_PER_TYPE, parameter_spread=SPREAD)) for s in A_TRAIN_SEEDS]
    a_held = [
        _set("a_heldout_seed201", _a(201, HELD_UNITS_PER_TYPE)),
        _set("a_heldout_regime_rates0.75_widths1.15", _a(202, HELD_UNITS_PER_TYPE, rate_scale=0.75, width_scale=1.15)),
    ]
    b_train = [_set(f"b_train_seed{s}", _b(s, UNITS_PER_TYPE)) for s in B_TRAIN_SEEDS]
    b_held = [_set(f"b_heldout_seed{B_HELD_SEED}", _b(B_HELD_SEED, HELD_UNITS_PER_TYPE))]

    def load(folders):
        return [load_set(f, False) for f in folders]

    directions = {}
    t0 = time.perf_counter()
    directions["trained on A, tested on B"] = cross_generator_evaluation(
        load(a_train), load(b_train[:1] + b_held), args.members, args.epochs, 0
    )
    print("A -> B:", _summary(directions["trained on A, tested on B"]), flush=True)
    directions["trained on B, tested on A"] = cross_generator_evaluation(
        load(b_train), load(a_train[:1] + a_held), args.members, args.epochs, 0
    )
    print("B -> A:", _summary(directions["trained on B, tested on A"]), flush=True)
    cross = {"description": CROSS_DESCRIPTION, "directions": directions}
    results = train_command(
        a_train + b_train, str(OUT), a_held + b_held, args.members, args.epochs, 0, False, cross_generator=cross
    )
    print("shipped:", _summary({k: results[k] for k in results if "heldout" in k}), flush=True)
    card = json.loads((OUT / "model_card.json").read_text())
    RESULTS.write_text(
        json.dumps(
            {
                "cross_generator": cross,
                "shipped_model": {k: results[k] for k in results},
                "live_classifier": card["live_classifier"],
                "epochs": args.epochs,
                "members": args.members,
                "build_seconds": time.perf_counter() - t0,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {OUT} and {RESULTS}; live classifier: {card['live_classifier']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
