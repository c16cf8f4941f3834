"""The independent generator's entry point: labelled units as a spike sorter would deliver them,
their C4 features, and the feature-set folder ``rtclass train`` loads.

**Sorting imperfections** (ranges in ``celltypes.SORTING_PARAMS``, drawn per unit):

- *Amplitude-dependent misses.* Every spike gets an amplitude: 1, shrunk by the spikes just
  before it (each spike removes ``burst_attenuation`` of what is left, recovering with
  ``attenuation_tau_ms``: sodium-channel inactivation, so spikes late in a burst are smaller),
  times a log-normal scatter, times the drift gain below. A spike is detected when its amplitude
  times ``detection_margin`` (full-size amplitude over threshold) reaches the threshold: a unit
  close to threshold loses its small spikes, bursty units lose the ends of their bursts.
- *Drift.* In some units a chunk of the recording (``drift_chunk_frac`` of it) has the unit
  drifted away: the gain ramps down to 0, stays there, and ramps back up, so the chunk holds no
  spikes and its edges only the largest ones.
- *Contamination.* Unsorted background spikes (homogeneous Poisson, ``background_frac`` of the
  unit's own count) and the largest spikes of a neighbouring unit recorded in the same layer
  (``neighbour_frac`` of the unit's own count: the neighbour's spikes with the largest
  amplitudes, wherever in time they fall): both bring refractory-period violations.

A Purkinje cell is generated as a pair: its simple-spike unit and its complex-spike unit share the
cell (the complex spikes pause the simple spikes); they are separate units, as sorters give them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from rtclass.cell_types import CELL_TYPES
from rtclass.config import ClassifyConfig
from rtclass.features.c4 import MIN_SPIKES, N_LOG_LAGS, N_RATE_BINS, WAVEFORM_SAMPLES, c4_acg, preprocess_waveform
from rtclass.features.spike_quality import labelled_acg_spikes
from rtclass.sim.independent import celltypes, trains, waveforms

#: independent random streams per unit and stage (numpy seeds them from [seed, type, unit, stage])
STAGE_PARAMS = 0
STAGE_TRAIN = 1
STAGE_WAVEFORM = 2
STAGE_SORTING = 3
#: what ``simulation.json`` calls this generator
GENERATOR_NAME = "independent"
FEATURES_FILE = "features.npz"
DESCRIPTION_FILE = "simulation.json"
#: C4's 3D-ACG: rate bins x (a zero column + the log lags)
ACG_SHAPE = (N_RATE_BINS, N_LOG_LAGS + 1)
#: shortest drift ramp (s), so that a zero ramp fraction still gives a defined gain
MIN_RAMP_S = 1e-9
#: background events are 1 to this many times the detection threshold
BACKGROUND_AMPLITUDE_MAX = 1.5


@dataclass
class GeneratedUnit:
    unit_id: int
    cell_type: str
    layer: str
    #: sorted unique int64 spike times in samples at 30 kHz (after sorting imperfections)
    spike_times_samples: np.ndarray
    #: the sorter's mean waveform on the peak channel (uV, variable length)
    template_uv: np.ndarray
    #: the drawn parameters: ``train``, ``waveform``, ``template``, ``sorting``, and ``realised``
    #: (what the imperfections did)
    params: dict = field(default_factory=dict)
    #: each spike's amplitude relative to the unit's full-size spike (what C4's spike filter judges)
    spike_amplitudes: np.ndarray | None = None


def _rng(seed: int, type_index: int, unit_index: int, stage: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), type_index, unit_index, stage])


@numba.njit(cache=True, nogil=True)
def burst_attenuation(times_s, depth, tau_s):
    """Relative amplitude of each spike: every spike removes ``depth`` of the remaining amplitude
    for the next ones, recovering exponentially with ``tau_s``."""
    out = np.empty(times_s.shape[0])
    deficit = 0.0
    last = trains.NEVER_S
    for k in range(times_s.shape[0]):
        deficit *= np.exp(-(times_s[k] - last) / tau_s)
        out[k] = 1.0 - deficit
        deficit += depth * (1.0 - deficit)
        last = times_s[k]
    return out


def drift_gain(times_s: np.ndarray, duration_s: float, sp: dict[str, float], rng: np.random.Generator) -> tuple:
    """Gain of each spike from a drift chunk (1 outside, ramping to 0 inside), and the chunk's
    (start, stop) in s (empty when the unit does not drift)."""
    where = rng.random()
    chunk = sp["drift_chunk_frac"] * duration_s
    if chunk <= 0:
        return np.ones(times_s.size), ()
    start = where * (duration_s - chunk)
    ramp = max(sp["drift_ramp_frac"] * chunk / 2, MIN_RAMP_S)  # the ramp fraction covers both edges
    inside = np.minimum(times_s - start, start + chunk - times_s)
    return np.clip(1 - inside / ramp, 0.0, 1.0) * (inside > 0) + (inside <= 0), (start, start + chunk)


def spike_amplitudes(rng: np.random.Generator, times_s: np.ndarray, duration_s: float, sp: dict[str, float]):
    """Relative amplitude of every spike (attenuation x scatter x drift) and the drift chunk."""
    att = burst_attenuation(times_s, sp["burst_attenuation"], sp["attenuation_tau_ms"] / trains.MS_PER_S)
    scatter = np.exp(sp["amplitude_jitter"] * rng.standard_normal(times_s.size))
    gain, chunk = drift_gain(times_s, duration_s, sp, rng)
    return att * scatter * gain, chunk


def _clean_trains(seed: int, units_per_type: int, duration_s: float, params: list) -> list[np.ndarray]:
    """Every unit's true spike times (s), in the order of ``params`` (type-major)."""
    out: list[np.ndarray | None] = [None] * len(params)
    n = units_per_type
    ss, cs = CELL_TYPES.index("PkC_ss"), CELL_TYPES.index("PkC_cs")
    for t, cell_type in enumerate(CELL_TYPES):
        for i in range(n):
            k = t * n + i
            if cell_type == "PkC_cs":
                continue  # made with its simple spikes
            rng = _rng(seed, t, i, STAGE_TRAIN)
            p = params[k]["train"]
            if cell_type == "PkC_ss":
                ss_t, cs_t, _ = trains.purkinje_pair(rng, duration_s, p, params[cs * n + i]["train"])
                out[ss * n + i], out[cs * n + i] = ss_t, cs_t
            elif cell_type == "MLI":
                out[k] = trains.interneuron_train(rng, duration_s, p)
            elif cell_type == "GoC":
                out[k] = trains.golgi_train(rng, duration_s, p)
            else:
                out[k] = trains.mossy_fibre_train(rng, duration_s, p)
    return out


def _neighbour(rng: np.random.Generator, k: int, layers: list[str], pair_of: dict[int, int]) -> int:
    """A unit recorded nearby: another unit of the same layer (not the same cell)."""
    candidates = [j for j, layer in enumerate(layers) if layer == layers[k] and j != k and pair_of.get(k) != j]
    if not candidates:
        candidates = [j for j in range(len(layers)) if j != k] or [k]
    return candidates[int(rng.integers(len(candidates)))]


def in_regime(
    params: dict[str, dict[str, float]], rate_scale: float, width_scale: float
) -> dict[str, dict[str, float]]:
    """One unit's drawn parameters in another preparation: its firing rate (``rate_hz``) times
    ``rate_scale`` and every time constant of its action potential (``*_ms``) times ``width_scale``."""
    train = {**params["train"], "rate_hz": params["train"]["rate_hz"] * rate_scale}
    waveform = {k: v * width_scale if k.endswith("_ms") else v for k, v in params["waveform"].items()}
    return {**params, "train": train, "waveform": waveform}


def generate_units(
    seed: int, units_per_type: int, duration_s: float, rate_scale: float = 1.0, width_scale: float = 1.0
) -> list[GeneratedUnit]:
    """``units_per_type`` units of each of the five types over ``duration_s`` s, reproducible for
    a seed. Unit ids run type-major (PkC_ss 0..n-1, PkC_cs n..2n-1, ...); PkC_ss unit i and PkC_cs
    unit i are the same Purkinje cell. ``rate_scale``, ``width_scale``: a held-out regime
    (``in_regime``)."""
    if units_per_type < 0 or duration_s <= 0:
        raise ValueError("units_per_type must be >= 0 and duration_s > 0")
    if rate_scale <= 0 or width_scale <= 0:
        raise ValueError(f"rate_scale and width_scale must be > 0 (got {rate_scale}, {width_scale})")
    n = units_per_type
    types = [cell_type for cell_type in CELL_TYPES for _ in range(n)]
    params = [
        in_regime(
            celltypes.draw_unit_params(c, _rng(seed, CELL_TYPES.index(c), k % n, STAGE_PARAMS)), rate_scale, width_scale
        )
        for k, c in enumerate(types)
    ]
    layers = [celltypes.LAYER_OF_TYPE[c] for c in types]
    ss, cs = CELL_TYPES.index("PkC_ss"), CELL_TYPES.index("PkC_cs")
    pair_of = {ss * n + i: cs * n + i for i in range(n)} | {cs * n + i: ss * n + i for i in range(n)}
    clean = _clean_trains(seed, n, duration_s, params)
    # first pass: every spike's amplitude and which ones the sorter detects
    amps, chunks, sort_rngs = [], [], []
    for k, c in enumerate(types):
        rng = _rng(seed, CELL_TYPES.index(c), k % n, STAGE_SORTING)
        a, chunk = spike_amplitudes(rng, clean[k], duration_s, params[k]["sorting"])
        amps.append(a)
        chunks.append(chunk)
        sort_rngs.append(rng)
    detected = [amps[k] * params[k]["sorting"]["detection_margin"] >= 1.0 for k in range(len(types))]
    units = []
    for k, c in enumerate(types):
        rng = sort_rngs[k]
        sp = params[k]["sorting"]
        own = clean[k][detected[k]]
        background = trains.poisson_events(rng, sp["background_frac"] * own.size / duration_s, duration_s)
        j = _neighbour(rng, k, layers, pair_of)
        n_from_neighbour = min(int(round(sp["neighbour_frac"] * own.size)), clean[j].size)
        biggest = np.argsort(-amps[j], kind="stable")[:n_from_neighbour]
        from_neighbour = clean[j][biggest]
        # background events are just big enough to be detected; a neighbour's spikes keep their size
        background_amplitude = rng.uniform(1.0, BACKGROUND_AMPLITUDE_MAX, background.size) / sp["detection_margin"]
        spikes, source = trains.to_samples(np.concatenate([own, background, from_neighbour]), duration_s)
        spike_amps = np.concatenate([amps[k][detected[k]], background_amplitude, amps[j][biggest]])[source]
        wrng = _rng(seed, CELL_TYPES.index(c), k % n, STAGE_WAVEFORM)
        model = celltypes.WAVEFORM_OF_TYPE[c]
        tmpl = waveforms.template(wrng, model, params[k]["waveform"], params[k]["template"])
        realised = {
            "n_true_spikes": int(clean[k].size),
            "n_missed": int(clean[k].size - own.size),
            "n_background": int(background.size),
            "n_from_neighbour": int(from_neighbour.size),
            "neighbour_unit_id": int(j),
            "drift_chunk_s": list(chunks[k]),
            "paired_unit_id": int(pair_of[k]) if k in pair_of else -1,
        }
        units.append(GeneratedUnit(k, c, layers[k], spikes, tmpl, {**params[k], "realised": realised}, spike_amps))
    return units


def unit_features(units: list[GeneratedUnit], spike_filter_min_good_s: float | None = None) -> dict[str, np.ndarray]:
    """The arrays of an rtclass training set: ``acg3d`` float32 [n, 10, 101] (C4's 3D-ACG),
    ``waveform`` float32 [n, 90] (C4's preprocessed waveform), ``cell_type``, ``layer`` (str),
    ``unit_id``, ``n_spikes`` (int64). Units with fewer than C4's MIN_SPIKES spikes are skipped.
    ``spike_filter_min_good_s``: the 3D-ACG is built from the spikes the live labeller would use
    (C4's spike filter with this many good seconds, ``labelled_acg_spikes``) and units it rejects
    are skipped; ``None``: from every spike."""
    kept, acg_spikes = [], []
    for u in units:
        if u.spike_times_samples.size < MIN_SPIKES:
            continue
        spikes = u.spike_times_samples
        if spike_filter_min_good_s is not None:
            if u.spike_amplitudes is None:
                raise ValueError(f"unit {u.unit_id} has no spike amplitudes for C4's spike filter")
            spikes = labelled_acg_spikes(spikes, u.spike_amplitudes, trains.SAMPLE_RATE_HZ, spike_filter_min_good_s)
            if spikes is None:
                continue
        kept.append(u)
        acg_spikes.append(spikes)
    acg = np.zeros((len(kept), *ACG_SHAPE), np.float32)
    wave = np.zeros((len(kept), WAVEFORM_SAMPLES), np.float32)
    for i, u in enumerate(kept):
        acg[i] = c4_acg(acg_spikes[i])
        wave[i] = preprocess_waveform(u.template_uv)
    return {
        "acg3d": acg,
        "waveform": wave,
        "cell_type": np.array([u.cell_type for u in kept], dtype=str),
        "layer": np.array([u.layer for u in kept], dtype=str),
        "unit_id": np.array([u.unit_id for u in kept], np.int64),
        "n_spikes": np.array([u.spike_times_samples.size for u in kept], np.int64),
    }


def write_feature_set(
    out_dir: str | Path,
    seed: int,
    units_per_type: int,
    duration_s: float,
    spike_filter_min_good_s: float | None = ClassifyConfig().spike_filter_min_good_s,
    rate_scale: float = 1.0,
    width_scale: float = 1.0,
) -> Path:
    """Generate units and write ``out_dir/features.npz`` and ``out_dir/simulation.json`` (the
    folder ``rtclass train`` / ``rtclass.classify.train.load_set`` reads). Returns ``out_dir``.
    ``rate_scale``, ``width_scale``: a held-out regime (``in_regime``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    units = generate_units(seed, units_per_type, duration_s, rate_scale, width_scale)
    features = unit_features(units, spike_filter_min_good_s)
    np.savez_compressed(out / FEATURES_FILE, **features)
    description = {
        "generator": GENERATOR_NAME,
        "simulate": {
            "seed": int(seed),
            "duration_s": float(duration_s),
            "units_per_type": int(units_per_type),
            "rate_scale": float(rate_scale),
            "width_scale": float(width_scale),
        },
        "spike_filter_min_good_s": spike_filter_min_good_s,
    }
    (out / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n")
    return out
