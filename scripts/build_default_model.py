"""Rebuild the shipped default classifier, rtclass/models/rtclass-c4sim-v1, from scratch (about 10 min on 2 cores).

    pip install -e '.[train]' && python scripts/build_default_model.py

A build step of the source checkout, not part of the installed package: it writes the model into the
checkout's package data (rtclass/models/), which the wheel then ships.

Training data: simulated units (rtclass's cerebellar simulator) with every per-unit parameter range
widened by 30 % (domain randomisation), four seeds. Held out: a new seed at the published ranges,
and a shifted regime (all rates x0.75, all waveform time constants x1.15) the model never saw.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rtclass.classify.model import DEFAULT_MODEL_NAME
from rtclass.classify.train import train_command
from rtclass.config import SimulateConfig
from rtclass.sim.training import write_training_set

CHECKOUT = Path(__file__).resolve().parents[1]
#: cached training sets (git-ignored): a rerun with the same settings reuses them
WORK = CHECKOUT / "scripts" / "_training_sets"
#: the checkout's package data, not the installed package's (which may be a wheel in site-packages)
OUT = CHECKOUT / "rtclass" / "models" / DEFAULT_MODEL_NAME
TRAIN_SEEDS = (101, 102, 103, 104)
UNITS_PER_TYPE = 100
DURATION_S = 300.0
SPREAD = 0.3
#: ensemble size: 3 keeps inference for 400 units near 20 ms on one core
MEMBERS = 3


def _set(cfg: SimulateConfig, name: str) -> str:
    """A training set folder, made unless an earlier run left it (same settings, same bytes)."""
    folder = WORK / name
    if not (folder / "features.npz").exists():
        write_training_set(cfg, folder)
    print("set", folder, flush=True)
    return str(folder)


def main() -> int:
    train = [
        _set(
            SimulateConfig(duration_s=DURATION_S, seed=s, units_per_type=UNITS_PER_TYPE, parameter_spread=SPREAD),
            f"train_seed{s}",
        )
        for s in TRAIN_SEEDS
    ]
    held = [
        _set(SimulateConfig(duration_s=DURATION_S, seed=201, units_per_type=60), "heldout_seed201"),
        _set(
            SimulateConfig(duration_s=DURATION_S, seed=202, units_per_type=60, rate_scale=0.75, width_scale=1.15),
            "heldout_regime_rates0.75_widths1.15",
        ),
    ]
    results = train_command(train, str(OUT), held, members=MEMBERS, epochs=40, seed=0, use_layer=False)
    for name, ev in results.items():
        print(f"{name}: balanced accuracy {ev['balanced_accuracy']:.3f} ({ev['units']} units)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
