"""Rebuild the shipped classifiers, rtclass/models/rtclass-c4sim-v2 (and with ``--layer`` the layer-aware
rtclass-c4sim-v2-layer), from scratch: about 30 min on 2 cores (17 of them making the sets), then 6 min.

    pip install -e '.[train]' && python scripts/build_default_model.py && python scripts/build_default_model.py --layer

A build step of the source checkout, not part of the installed package: it writes the model into the
checkout's package data (rtclass/models/), which the wheel then ships, and the cross-generator
evaluation into benchmarks/results/classifier_generalisation.json.

Three generators of labelled units, designed independently: A (``rtclass.sim``, every per-unit range
widened by 30 % for training), B (``rtclass.sim.independent``: other spike-train processes, waveform
model, noise and sorting errors) and C (``rtclass.sim.generator_c``: integrate-and-fire trains,
feature-anchored waveforms, threshold/collision sorting losses). The recipe (network ensemble and
physiology baseline) is trained on each generator alone and tested on each other one, and on every
pair of generators and tested on the third (a generator it never saw); the shipped model is then
trained on all three and tested on held-out seeds and regimes of each. The card reports all of it;
the evaluations on generators left out decide which classifier is used live and the default
confidence ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rtclass.bench.live_labels import live_against_offline
from rtclass.classify.layout import LAYER_ORDER
from rtclass.classify.model import DEFAULT_LAYER_MODEL_NAME, DEFAULT_MODEL_NAME
from rtclass.classify.train import (
    LabelledSet,
    cross_generator_evaluation,
    load_set,
    randomise_layers,
    train_command,
)
from rtclass.config import SimulateConfig
from rtclass.sim.generator_c.units import write_feature_set as write_generator_c_set
from rtclass.sim.independent.units import write_feature_set as write_generator_b_set
from rtclass.sim.training import write_training_set

CHECKOUT = Path(__file__).resolve().parents[1]
#: cached training sets (git-ignored): a rerun with the same settings reuses them
WORK = CHECKOUT / "scripts" / "_training_sets"
#: the code a set depends on (its generator, C4's features and spike filter with their config
#: defaults, the cell types, the probe): the cache's key
SET_CODE = ("rtclass/sim", "rtclass/features", "rtclass/config.py", "rtclass/cell_types.py", "rtclass/probe.py")
FINGERPRINT_FILE = "made_by_code.sha256"
#: the checkout's package data, not the installed package's (which may be a wheel in site-packages)
MODELS = CHECKOUT / "rtclass" / "models"
RESULTS = CHECKOUT / "benchmarks" / "results"
#: layer-aware model: test units given a wrong known layer in this fraction (a unit near a layer
#: boundary), as well as with their true layer and with none
WRONG_LAYER_FRACTION = 0.1
WRONG_LAYER_SEED = 0
TRAIN_SEEDS = {"A": (101, 102, 103, 104), "B": (1, 2, 3, 4), "C": (1, 2, 3, 4, 5, 6, 7, 8)}
HELD_SEED = {"A": 201, "B": 11, "C": 11}
UNITS_PER_TYPE = 100
HELD_UNITS_PER_TYPE = 60
#: a held-out regime of each generator (another preparation): every rate and waveform time scaled
REGIME = {"rate_scale": 0.75, "width_scale": 1.15}
REGIME_SEED = {"A": 202, "B": 12, "C": 12}
DURATION_S = 300.0
SPREAD = 0.3
#: ensemble size: 3 keeps inference for 400 units near 20 ms on one core
MEMBERS = 3
EPOCHS = 30
#: the live check of the exported model (the card's live == offline target): seeds of the
#: simulated probe, each run for LIVE_CHECK_S
LIVE_CHECK_SEEDS = (7, 11, 13)
LIVE_CHECK_S = 120.0
LIVE_CHECK_SPIKE_FILTER = "c4"
GENERATORS = {
    "A": "rtclass.sim (gamma renewal trains with slow rate modulation, waveforms as sums of Gaussian phases, "
    "uniform missed spikes and contamination)",
    "B": "rtclass.sim.independent (inverse-Gaussian and hazard trains, waveforms from action-potential derivatives "
    "through an acquisition filter, coloured averaging noise, amplitude- and burst-dependent missed spikes)",
    "C": "rtclass.sim.generator_c (integrate-and-fire trains, feature-anchored waveforms, threshold and collision "
    "sorting losses)",
}
CROSS_DESCRIPTION = (
    "Three generators, designed independently: "
    + "; ".join(f"{k}: {v}" for k, v in GENERATORS.items())
    + ". Each evaluation trains the same recipe on some generators only and tests it on another; "
    "'trained on A, B, tested on C' is the shipped recipe facing a generator it never saw."
)


@functools.cache
def _generator_fingerprint() -> str:
    """A digest of the code that makes a set (``SET_CODE``), read once a build: a cached set made by
    other code is made again."""
    digest = hashlib.sha256()
    for code in SET_CODE:
        top = CHECKOUT / code
        for path in sorted(top.rglob("*.py")) if top.is_dir() else [top]:
            digest.update(str(path.relative_to(CHECKOUT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _set(name: str, make) -> str:
    """A training set folder, made unless an earlier run of the same code left it (the name holds the
    settings; a set made twice is the same to the byte)."""
    folder = WORK / name
    stamp = folder / FINGERPRINT_FILE
    fingerprint = _generator_fingerprint()
    if not (folder / "features.npz").exists() or not stamp.exists() or stamp.read_text() != fingerprint:
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        make(folder)
        stamp.write_text(fingerprint)
        print(f"made {folder} in {time.perf_counter() - t0:.0f} s", flush=True)
    return str(folder)


def _a(seed: int, units: int, **kw) -> Callable:
    cfg = SimulateConfig(duration_s=DURATION_S, seed=seed, units_per_type=units, **kw)
    return lambda folder: write_training_set(cfg, folder)


def _b(seed: int, units: int, **regime) -> Callable:
    return lambda folder: write_generator_b_set(folder, seed, units, DURATION_S, **regime)


def _c(seed: int, units: int, **regime) -> Callable:
    return lambda folder: write_generator_c_set(folder, seed, units, DURATION_S, **regime)


def live_runs(model_path: Path, use_layer: bool) -> dict[str, dict]:
    """The exported model in live runs of the simulated probe (C4's spike filter on; the layer
    stack given for a layer-aware model), each against the offline labels of the same spikes."""
    runs = {}
    for seed in LIVE_CHECK_SEEDS:
        run = live_against_offline(LIVE_CHECK_S, seed, str(model_path), use_layer, LIVE_CHECK_SPIKE_FILTER)
        print(f"live run, seed {seed}: live == offline {run['live_equals_offline_label']:.3f}", flush=True)
        runs[f"{LIVE_CHECK_S:g} s live run of the simulated probe, seed {seed}"] = run
    return runs


def _summary(evaluations: dict) -> str:
    return ", ".join(
        f"{k}: network {v['balanced_accuracy']:.3f} (abstains {100 * v['abstained']:.0f} %), "
        f"baseline {v['baseline']['balanced_accuracy']:.3f}"
        for k, v in evaluations.items()
    )


def _sets() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(training sets, held-out sets) of each generator."""
    make = {"A": lambda seed, n: _a(seed, n, parameter_spread=SPREAD), "B": _b, "C": _c}
    train = {
        g: [_set(f"{g.lower()}_train_seed{s}", make[g](s, UNITS_PER_TYPE)) for s in TRAIN_SEEDS[g]] for g in GENERATORS
    }
    held_make = {"A": _a, "B": _b, "C": _c}
    held = {
        g: [
            _set(f"{g.lower()}_heldout_seed{HELD_SEED[g]}", held_make[g](HELD_SEED[g], HELD_UNITS_PER_TYPE)),
            _set(
                f"{g.lower()}_heldout_regime_rates{REGIME['rate_scale']}_widths{REGIME['width_scale']}",
                held_make[g](REGIME_SEED[g], HELD_UNITS_PER_TYPE, **REGIME),
            ),
        ]
        for g in GENERATORS
    }
    return train, held


def _with_layers(s: LabelledSet, how: str) -> LabelledSet:
    """A copy of a layer-aware set whose layer one-hots are all ``unknown`` or, in
    ``WRONG_LAYER_FRACTION`` of its units, another known layer."""
    x = s.x.copy()
    one_hot = x[:, -len(LAYER_ORDER) :]
    rng = np.random.default_rng(WRONG_LAYER_SEED)
    if how == "unknown":
        x[:, -len(LAYER_ORDER) :] = randomise_layers(one_hot, rng, unknown_fraction=1.0, wrong_fraction=0.0)
        label = "layer unknown"
    else:
        x[:, -len(LAYER_ORDER) :] = randomise_layers(
            one_hot, rng, unknown_fraction=0.0, wrong_fraction=WRONG_LAYER_FRACTION
        )
        label = f"{100 * WRONG_LAYER_FRACTION:.0f} % wrong layers"
    return dataclasses.replace(s, name=f"{s.name} ({label})", x=x)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--members", type=int, default=MEMBERS)
    ap.add_argument(
        "--layer",
        action="store_true",
        help=f"build the layer-aware model {DEFAULT_LAYER_MODEL_NAME} (evaluated with a generator left out only)",
    )
    args = ap.parse_args()
    use_layer = args.layer
    out = MODELS / (DEFAULT_LAYER_MODEL_NAME if use_layer else DEFAULT_MODEL_NAME)
    results_path = RESULTS / ("classifier_generalisation_layer.json" if use_layer else "classifier_generalisation.json")
    train, held = _sets()

    def load(folders):
        return [load_set(f, use_layer) for f in folders]

    # tested on a generator's first training seed and its held-out sets (a layer-aware model also
    # with every layer unknown and with some layers wrong)
    tests = {g: load(train[g][:1] + held[g]) for g in GENERATORS}
    if use_layer:
        tests = {
            g: [v for s in t for v in (s, _with_layers(s, "unknown"), _with_layers(s, "wrong"))]
            for g, t in tests.items()
        }
    directions = {}
    t0 = time.perf_counter()
    plans = [] if use_layer else [((g,), o) for g in GENERATORS for o in GENERATORS if o != g]
    plans += [(tuple(g for g in GENERATORS if g != o), o) for o in GENERATORS]
    for trained_on, tested_on in plans:
        name = f"trained on {', '.join(trained_on)}, tested on {tested_on}"
        data = load([f for g in trained_on for f in train[g]])
        directions[name] = cross_generator_evaluation(
            data, tests[tested_on], args.members, args.epochs, 0, use_layer=use_layer
        )
        print(f"{name}:", _summary(directions[name]), flush=True)
    # the shipped recipe (trained on all but one generator) decides the live classifier and threshold
    deciding = [name for name in directions if name.count(",") == 2]
    cross = {"description": CROSS_DESCRIPTION, "directions": directions, "deciding": deciding}
    all_train = [f for g in GENERATORS for f in train[g]]
    all_held = [f for g in GENERATORS for f in held[g]]
    results = train_command(
        all_train,
        str(out),
        all_held,
        args.members,
        args.epochs,
        0,
        use_layer,
        cross_generator=cross,
        live_check=lambda model_path: live_runs(model_path, use_layer),
    )
    print("shipped:", _summary({k: results[k] for k in results if "heldout" in k}), flush=True)
    card = json.loads((out / "model_card.json").read_text())
    results_path.write_text(
        json.dumps(
            {
                "cross_generator": cross,
                "shipped_model": {k: results[k] for k in results},
                "live_classifier": card["live_classifier"],
                "confidence_ratio": card["confidence_ratio"],
                "epochs": args.epochs,
                "members": args.members,
                "build_seconds": time.perf_counter() - t0,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out} and {results_path}; live classifier: {card['live_classifier']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
