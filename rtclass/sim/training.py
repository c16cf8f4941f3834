"""Training sets for the cell-type classifier: C4 features of simulated units, without rendering
voltage traces (``rtclass simulate --features-only``).

Each unit's 3D-ACG is computed from its ground-truth spike train and its waveform from its raw
mean waveform on the peak channel plus the noise an average of a few hundred spikes leaves. With
``augment``, each unit's train also gets what an online sort does to it: a random fraction of its
spikes missed (0-20 %) and spikes of another unit mixed in (0-5 %), so that a model learns from
features like those the live pipeline will hand it, and its waveform is cut as another sorter
would store it: a template of 61, 82, 90 or 120 samples (Kilosort 4, Kilosort 2/3, C4, rtclass's
snippets) with the trough anywhere from 30 % to 55 % of its length.

The 3D-ACG is built from the spikes the live labeller would use (``labelled_acg_spikes``: C4's
spike filter, judged on each spike's amplitude, with ``classify.spike_filter_min_good_s``'s
default); a unit the filter rejects is left out, as the live labeller leaves it unlabelled. The
spikes missed here are missed at random (not for being small), so the filter mostly removes
contaminated units.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtclass.config import ClassifyConfig, SimulateConfig
from rtclass.features.c4 import MIN_SPIKES, c4_acg, preprocess_waveform
from rtclass.features.spike_quality import labelled_acg_spikes
from rtclass.sim.recording import Simulation

#: what augmentation draws per unit
MISSED_FRACTION = (0.0, 0.2)
CONTAMINATION_FRACTION = (0.0, 0.05)
#: spikes averaged into a waveform (sets its residual noise)
AVERAGED_SPIKES = (50, 1000)
WAVE_HALF = 60
#: template lengths (samples) that augmentation cuts the waveform to, and where its trough may sit
TEMPLATE_LENGTHS = (61, 82, 90, 2 * WAVE_HALF)
TROUGH_POSITION_FRACTION = (0.3, 0.55)


def _raw_trace(unit) -> np.ndarray:
    """The unit's waveform on its peak channel, 60 samples either side of the trough."""
    k = int(np.flatnonzero(unit.channels == unit.peak_channel)[0])
    w = unit.waves_uv[:, k]
    out = np.zeros(2 * WAVE_HALF)
    a = WAVE_HALF - unit.trough_index
    seg = w[max(0, -a) : max(0, -a) + 2 * WAVE_HALF - max(a, 0)]
    out[max(a, 0) : max(a, 0) + seg.size] = seg
    return out


def cut_template(trace: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``trace`` (trough at ``WAVE_HALF``) cut to a random template length, the trough at a random
    position in it (edge values repeated where the cut reaches past the trace)."""
    length = int(TEMPLATE_LENGTHS[rng.integers(len(TEMPLATE_LENGTHS))])
    trough = int(round(rng.uniform(*TROUGH_POSITION_FRACTION) * (length - 1)))
    idx = np.clip(np.arange(length) - trough + WAVE_HALF, 0, trace.size - 1)
    return trace[idx]


def unit_features(
    sim: Simulation, augment: bool, seed: int, spike_filter_min_good_s: float | None = None
) -> dict[str, np.ndarray]:
    """The training arrays of every unit of ``sim``; ``spike_filter_min_good_s``: C4's spike filter
    with this many good seconds (``None``: every spike builds the 3D-ACG)."""
    rng = np.random.default_rng(seed)
    trains = sim.unit_trains()
    amplitudes = sim.unit_amplitudes_uv()
    rows: dict[str, list] = {k: [] for k in ("acg3d", "waveform", "cell_type", "layer", "unit_id", "n_spikes")}
    for u, t in zip(sim.units, trains):
        amps = amplitudes[u.id]
        if augment and t.size:
            keep = rng.random(t.size) >= rng.uniform(*MISSED_FRACTION)
            t, amps = t[keep], amps[keep]
            others = [v for v in range(len(trains)) if v != u.id and trains[v].size]
            if others:
                v = others[rng.integers(len(others))]
                n = int(rng.uniform(*CONTAMINATION_FRACTION) * t.size)
                pick = rng.choice(trains[v].size, size=min(n, trains[v].size), replace=False)
                t, first = np.unique(np.concatenate([t, trains[v][pick]]), return_index=True)
                amps = np.concatenate([amps, amplitudes[v][pick]])[first]
        if t.size < MIN_SPIKES:
            continue
        trace = _raw_trace(u)
        n_avg = rng.integers(*AVERAGED_SPIKES)
        noise = sim.noise_sd_uv[u.peak_channel] * np.sqrt(1 + sim.cfg.common_mode_uv**2 / sim.cfg.noise_uv**2)
        trace = trace + rng.normal(0, noise / np.sqrt(n_avg), trace.size)
        if augment:
            trace = cut_template(trace, rng)
        acg_spikes = t
        if spike_filter_min_good_s is not None:  # after every draw: a rejected unit does not change the others
            acg_spikes = labelled_acg_spikes(t, amps, sim.fs, spike_filter_min_good_s)
            if acg_spikes is None:
                continue
        rows["acg3d"].append(c4_acg(acg_spikes))
        rows["waveform"].append(preprocess_waveform(trace))
        rows["cell_type"].append(u.cell_type)
        rows["layer"].append(u.layer)
        rows["unit_id"].append(u.id)
        rows["n_spikes"].append(t.size)
    return {
        "acg3d": np.array(rows["acg3d"], np.float32).reshape(-1, 10, 101),
        "waveform": np.array(rows["waveform"], np.float32).reshape(-1, 90),
        "cell_type": np.array(rows["cell_type"]),
        "layer": np.array(rows["layer"]),
        "unit_id": np.array(rows["unit_id"], np.int64),
        "n_spikes": np.array(rows["n_spikes"], np.int64),
    }


def write_training_set(
    cfg: SimulateConfig,
    out_dir: str | Path,
    augment: bool = True,
    spike_filter_min_good_s: float | None = ClassifyConfig().spike_filter_min_good_s,
) -> Path:
    """``DIR/features.npz``: features of every simulated unit (see ``unit_features``), plus the
    settings that made them."""
    import json
    from dataclasses import asdict

    from rtclass.errors import PublishError

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot create output folder {out}: {exc.strerror}") from exc
    sim = Simulation(cfg)
    feats = unit_features(sim, augment, cfg.seed, spike_filter_min_good_s)
    path = out / "features.npz"
    np.savez_compressed(path, **feats)
    (out / "simulation.json").write_text(
        json.dumps(
            {"simulate": asdict(cfg), "augmented": augment, "spike_filter_min_good_s": spike_filter_min_good_s},
            indent=2,
        )
        + "\n"
    )
    return path
