"""Labelled synthetic units of generator C and the feature set they are written to.

Each cell gets its own random stream (from the seed and its index), so a set is deterministic
for its seed. Cells come in rounds of one Purkinje cell (a PkC_ss and a PkC_cs unit), one MLI,
one GoC and one MFB; a unit's foreign spikes (contamination) come from the cell simulated before
it (a complex-spike unit's from its own cell's simple spikes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtclass.cell_types import CELL_TYPES, N_LOG_LAGS, N_RATE_BINS, WAVEFORM_SAMPLES
from rtclass.config import ClassifyConfig
from rtclass.features.c4 import C4_SAMPLE_RATE_HZ, MIN_SPIKES, c4_acg, preprocess_waveform
from rtclass.features.spike_quality import labelled_acg_spikes
from rtclass.sim.generator_c import celltypes as ct
from rtclass.sim.generator_c.sorting import draw_sorter, sorted_unit
from rtclass.sim.generator_c.trains import simulate_purkinje_cell, simulate_tonic_cell
from rtclass.sim.generator_c.waveforms import (
    draw_complex_spike_shape,
    draw_recording,
    draw_shape,
    scaled_in_time,
    template_uv,
)

GENERATOR_NAME = "generator_c"
#: a Purkinje cell gives two units (its simple and its complex spikes)
PURKINJE_CELL = "PkC"
PURKINJE_UNITS = ("PkC_ss", "PkC_cs")
#: the cells simulated per round
CELL_KINDS = (PURKINJE_CELL, *(t for t in CELL_TYPES if t not in PURKINJE_UNITS))
MS_PER_S = 1000.0


@dataclass(frozen=True)
class SimulatedUnit:
    unit_id: int
    cell_type: str
    #: sorted unique spike times, samples at 30 kHz
    spike_samples: np.ndarray
    #: the peak-channel template, µV
    template_uv: np.ndarray
    #: each spike's amplitude relative to the detection threshold
    spike_amplitudes: np.ndarray


def _unit(
    rng: np.random.Generator,
    unit_id: int,
    cell_type: str,
    spike_s: np.ndarray,
    duration_s: float,
    other_unit_s: np.ndarray,
    width_scale: float,
    spikelet_counts: np.ndarray | None = None,
) -> SimulatedUnit:
    complex_spikes = cell_type == PURKINJE_UNITS[1]
    shape = scaled_in_time(draw_shape(rng, ct.SHAPES[cell_type]), width_scale)
    contaminant = scaled_in_time(
        draw_shape(rng, ct.SHAPES[CELL_TYPES[int(rng.integers(len(CELL_TYPES)))]]), width_scale
    )
    cs_shape = scaled_in_time(draw_complex_spike_shape(rng), width_scale) if complex_spikes else None
    template = template_uv(rng, shape, draw_recording(rng, cell_type), contaminant, cs_shape, spikelet_counts)
    spikelet_s = spike_s + cs_shape.first_spikelet_ms / MS_PER_S if cs_shape is not None else None
    sorter = draw_sorter(rng, complex_spikes)
    samples, amplitudes = sorted_unit(rng, sorter, spike_s, duration_s, other_unit_s, spikelet_s)
    return SimulatedUnit(unit_id, cell_type, samples, template, amplitudes)


def simulate_units(
    seed: int, units_per_type: int, duration_s: float, rate_scale: float = 1.0, width_scale: float = 1.0
) -> Iterator[SimulatedUnit]:
    """``units_per_type`` units of each type (before the spike-count cut), in rounds of cells.
    ``rate_scale``, ``width_scale``: a held-out regime, every drawn firing rate and every waveform
    time (ms) multiplied by them."""
    if rate_scale <= 0 or width_scale <= 0:
        raise ValueError(f"rate_scale and width_scale must be > 0 (got {rate_scale}, {width_scale})")
    streams = np.random.SeedSequence(seed).spawn(units_per_type * len(CELL_KINDS))
    previous_s = np.zeros(0)
    unit_id = 0
    for index, stream in enumerate(streams):
        rng = np.random.default_rng(stream)
        kind = CELL_KINDS[index % len(CELL_KINDS)]
        if kind == PURKINJE_CELL:
            cell = simulate_purkinje_cell(rng, duration_s, rate_scale)
            simple_unit, complex_unit = PURKINJE_UNITS
            yield _unit(rng, unit_id, simple_unit, cell.simple_s, duration_s, previous_s, width_scale)
            yield _unit(
                rng, unit_id + 1, complex_unit, cell.complex_s, duration_s, cell.simple_s, width_scale, cell.spikelets
            )
            unit_id += 2
            previous_s = cell.simple_s
        else:
            cell = simulate_tonic_cell(rng, kind, duration_s, rate_scale)
            yield _unit(rng, unit_id, kind, cell.spike_s, duration_s, previous_s, width_scale)
            unit_id += 1
            previous_s = cell.spike_s


def write_feature_set(
    out_dir,
    seed: int,
    units_per_type: int,
    duration_s: float,
    spike_filter_min_good_s: float | None = ClassifyConfig().spike_filter_min_good_s,
    rate_scale: float = 1.0,
    width_scale: float = 1.0,
) -> Path:
    """Simulate a labelled set and write ``out_dir/features.npz`` (C4's inputs, labels, layers)
    and ``out_dir/simulation.json``; units with fewer than ``MIN_SPIKES`` spikes are skipped.
    ``spike_filter_min_good_s``: each 3D-ACG is built from the spikes the live labeller would use
    (C4's spike filter with this many good seconds, ``labelled_acg_spikes``) and units it rejects
    are skipped; ``None``: from every spike. ``rate_scale``, ``width_scale``: a held-out regime
    (``simulate_units``). Returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    acgs, waves, types, layers, ids, counts = [], [], [], [], [], []
    for unit in simulate_units(seed, units_per_type, duration_s, rate_scale, width_scale):
        if unit.spike_samples.size < MIN_SPIKES:
            continue
        acg_spikes = unit.spike_samples
        if spike_filter_min_good_s is not None:
            acg_spikes = labelled_acg_spikes(
                unit.spike_samples, unit.spike_amplitudes, C4_SAMPLE_RATE_HZ, spike_filter_min_good_s
            )
            if acg_spikes is None:
                continue
        acgs.append(c4_acg(acg_spikes))
        waves.append(preprocess_waveform(unit.template_uv))
        types.append(unit.cell_type)
        layers.append(ct.LAYERS[unit.cell_type])
        ids.append(unit.unit_id)
        counts.append(unit.spike_samples.size)
    np.savez(
        out / "features.npz",
        acg3d=np.array(acgs, np.float32).reshape(len(acgs), N_RATE_BINS, N_LOG_LAGS + 1),
        waveform=np.array(waves, np.float32).reshape(len(waves), WAVEFORM_SAMPLES),
        cell_type=np.array(types, dtype=str),
        layer=np.array(layers, dtype=str),
        unit_id=np.array(ids, np.int64),
        n_spikes=np.array(counts, np.int64),
    )
    description = {
        "generator": GENERATOR_NAME,
        "simulate": {
            "seed": seed,
            "duration_s": duration_s,
            "units_per_type": units_per_type,
            "rate_scale": rate_scale,
            "width_scale": width_scale,
        },
        "spike_filter_min_good_s": spike_filter_min_good_s,
    }
    (out / "simulation.json").write_text(json.dumps(description, indent=2))
    return out
