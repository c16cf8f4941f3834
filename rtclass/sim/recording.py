"""A simulated Neuropixels recording through cerebellar cortex, with ground truth.

``Simulation(cfg)`` draws the population (units placed in their layers, with waveforms and
spike trains) from ``cfg.seed``; nothing of the voltage traces exists until a
``TraceSynthesizer`` renders them chunk by chunk, so an hour-long stream needs no disk and the
ground truth (spike times, units, templates) is available without rendering anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np
from scipy.signal import freqz

from rtclass.cell_types import CELL_TYPES
from rtclass.classify.layers import KNOWN_LAYERS
from rtclass.config import SimulateConfig
from rtclass.errors import ConfigError
from rtclass.probe import Probe, neuropixels
from rtclass.sim import spike_trains as st
from rtclass.sim.celltypes import CS_PAUSE_MS, LAYERS, regime_specs
from rtclass.sim.noise_kernels import fill_background, normal_table, white_bank
from rtclass.sim.waveforms import (
    PRE_MS,
    contact_gain_mix,
    draw,
    draw_log,
    footprint,
    footprint_channels,
    smoothed,
    time_course,
)

SAMPLE_RATE_HZ = 30000.0
#: units sit this far (um) from the probe plane
UNIT_DISTANCE_UM = (10.0, 60.0)
#: and up to this far (um) beyond the outermost contact columns
UNIT_LATERAL_MARGIN_UM = 20.0
#: two cell bodies are at least this far apart (um; somata are 10-25 um across)
MIN_SEPARATION_UM = 20.0
#: placement attempts before a unit is placed regardless of its neighbours (a crowded layer)
PLACEMENT_TRIES = 50
#: sd of the per-spike amplitude jitter (fraction of the unit amplitude)
AMPLITUDE_JITTER = 0.06
#: band the noise levels of the config refer to
NOISE_BAND_HZ = (300.0, 6000.0)
#: corner of the headstage's anti-alias low-pass (one pole)
ANTIALIAS_HZ = 10000.0
#: corner of the slow local-field component (one pole)
LFP_CORNER_HZ = 10.0
#: spatial noise mixing weights for contact offsets 0, +-1, +-2 (normalised to unit power)
NOISE_SPATIAL_WEIGHTS = (1.0, 0.35, 0.2)
#: per-channel spread of the noise level and of the common-mode gain
NOISE_LEVEL_SPREAD = 0.25
COMMON_MODE_GAIN_SPREAD = 0.1
#: samples of a ground-truth template (C4's waveform length) and the trough's index in it
TEMPLATE_SAMPLES = 90
TEMPLATE_TROUGH = 30


@dataclass(frozen=True)
class LayerSegment:
    name: str
    top_um: float  # larger y (closer to the brain surface)
    bottom_um: float

    @property
    def thickness_um(self) -> float:
        return self.top_um - self.bottom_um


def parse_layers(text: str, top_um: float, bottom_um: float) -> list[LayerSegment]:
    """``"ML:200,PCL:40,..."`` from ``top_um`` downwards; the stack must fit on the probe."""
    segments = []
    y = top_um
    for item in text.split(","):
        name, _, thickness = item.strip().partition(":")
        if name not in LAYERS:
            raise ConfigError(f"[simulate] layers: unknown layer {name!r} in {text!r}; use {', '.join(LAYERS)}")
        try:
            t = float(thickness)
        except ValueError:
            raise ConfigError(f"[simulate] layers: {item!r} needs a thickness in um, e.g. {name}:200") from None
        if t <= 0:
            raise ConfigError(f"[simulate] layers: thickness of {item!r} must be positive")
        segments.append(LayerSegment(name, y, y - t))
        y -= t
    if y < bottom_um:
        raise ConfigError(
            f"[simulate] layers {text!r} span {top_um - y:g} um but the probe's contacts span only "
            f"{top_um - bottom_um:g} um; make the layers thinner or fewer"
        )
    return segments


@dataclass
class SimUnit:
    id: int
    cell_type: str
    layer: str
    xyz_um: np.ndarray  # x across the shank, y along it, z distance from the probe plane
    amplitude_uv: float  # trough depth on the peak channel (at zero drift)
    course: np.ndarray  # [T] waveform shape, trough -1 at trough_index
    smooth: np.ndarray  # [T] the shape distant contacts see
    scale_uv: float  # uV per unit of relative footprint amplitude
    channels: np.ndarray  # [K] contacts the unit reaches (over the whole drift range)
    waves_uv: np.ndarray  # [T, K] waveform on those contacts at zero drift, uV
    trough_index: int
    peak_channel: int
    partner: int = -1  # PkC_ss <-> PkC_cs of the same Purkinje cell


class Simulation:
    """Population, spike trains and ground truth of one simulated probe."""

    def __init__(self, cfg: SimulateConfig, sample_rate_hz: float = SAMPLE_RATE_HZ):
        self.cfg = cfg
        self.fs = sample_rate_hz
        self.probe: Probe = neuropixels(cfg.probe)
        self.n_samples = int(round(cfg.duration_s * sample_rate_hz))
        self.specs = regime_specs(cfg.parameter_spread, cfg.rate_scale, cfg.width_scale)
        pos = self.probe.positions_um
        self.layers = parse_layers(cfg.layers, float(pos[:, 1].max()), float(pos[:, 1].min()))
        seeds = np.random.SeedSequence(cfg.seed).spawn(4)
        self._noise_seed = int(seeds[2].generate_state(1, np.uint64)[0])
        levels = np.random.default_rng(seeds[3]).uniform(-1, 1, self.probe.n_channels)
        #: background noise sd per channel in NOISE_BAND_HZ (uV), common mode excluded
        self.noise_sd_uv = (cfg.noise_uv * (1 + NOISE_LEVEL_SPREAD * levels)).astype(np.float32)
        self.units: list[SimUnit] = []
        self._place_units(np.random.default_rng(seeds[0]))
        self._draw_trains(np.random.default_rng(seeds[1]))

    # ----------------------------------------------------------------------------- population
    def _positions(self, layer: str, n: int, rng: np.random.Generator) -> list[float]:
        segs = [s for s in self.layers if s.name == layer]
        if not segs:
            raise ConfigError(f"[simulate] layers {self.cfg.layers!r} have no {layer}: cannot place its cell types")
        thick = np.array([s.thickness_um for s in segs])
        which = rng.choice(len(segs), size=n, p=thick / thick.sum())
        return [rng.uniform(segs[i].bottom_um, segs[i].top_um) for i in which]

    def _counts(self, rng: np.random.Generator) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for name in CELL_TYPES:
            spec = self.specs[name]
            if name == "PkC_cs":
                continue  # one per PkC_ss, placed with it
            if self.cfg.units_per_type:
                out[name] = self._positions(spec.layer, self.cfg.units_per_type, rng)
            else:
                ys = []
                for seg in self.layers:
                    if seg.name == spec.layer:
                        n = rng.poisson(spec.density_per_um * seg.thickness_um)
                        ys += list(rng.uniform(seg.bottom_um, seg.top_um, n))
                out[name] = ys
        return out

    def _free_spot(self, y: float, rng: np.random.Generator) -> tuple[float, float]:
        """x and z for a cell body at depth y, at least MIN_SEPARATION_UM from the others."""
        pos = self.probe.positions_um
        taken = np.array([u.xyz_um for u in self.units]) if self.units else np.zeros((0, 3))
        for _ in range(PLACEMENT_TRIES):
            xz = (
                rng.uniform(pos[:, 0].min() - UNIT_LATERAL_MARGIN_UM, pos[:, 0].max() + UNIT_LATERAL_MARGIN_UM),
                rng.uniform(*UNIT_DISTANCE_UM),
            )
            d = np.sqrt(((taken - [xz[0], y, xz[1]]) ** 2).sum(1)) if taken.size else np.inf
            if np.all(d >= MIN_SEPARATION_UM):
                break
        return xz

    def _new_unit(self, name: str, y: float, rng: np.random.Generator, xz=None) -> SimUnit:
        spec = self.specs[name]
        pos = self.probe.positions_um
        if xz is None:
            xz = self._free_spot(y, rng)
        xyz = np.array([xz[0], y, xz[1]])
        course, trough = time_course(spec.shape, rng, self.fs)
        smooth = smoothed(course, self.fs)
        channels = footprint_channels(xyz, pos, self.cfg.drift_um)
        waves = footprint(course, smooth, xyz, pos, channels)
        peak = int(np.argmax(-waves[trough]))
        amplitude = draw_log(rng, spec.shape.amplitude_uv) * self.cfg.amplitude_scale
        scale = amplitude / -waves[trough, peak]
        return SimUnit(
            len(self.units),
            name,
            spec.layer,
            xyz,
            amplitude,
            course,
            smooth,
            float(scale),
            channels,
            waves * np.float32(scale),
            trough,
            int(channels[peak]),
        )

    def _place_units(self, rng: np.random.Generator) -> None:
        for name, ys in self._counts(rng).items():
            for y in ys:
                unit = self._new_unit(name, y, rng)
                self.units.append(unit)
                if name == "PkC_ss":
                    cs = self._new_unit("PkC_cs", y, rng, xz=(unit.xyz_um[0], unit.xyz_um[2]))
                    cs.partner, unit.partner = unit.id, cs.id
                    self.units.append(cs)

    # ----------------------------------------------------------------------------- spike trains
    def _train(self, name: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
        f = self.specs[name].firing
        duration = self.cfg.duration_s
        rate = draw_log(rng, f.rate_hz)
        dead = draw(rng, f.dead_time_ms) / 1000
        grid = st.modulated_rate(duration, rate, draw(rng, f.modulation_depth), draw(rng, f.modulation_tau_s), rng)
        times = st.renewal_train(duration, grid, draw(rng, f.gamma_k), dead, rng)
        if f.burst_rate_hz[1] > 0:
            spikes = (int(f.burst_spikes[0]), int(f.burst_spikes[1]))
            isi = (f.burst_isi_ms[0] / 1000, f.burst_isi_ms[1] / 1000)
            times = st.add_bursts(times, duration, draw(rng, f.burst_rate_hz), spikes, isi, dead, rng)
        return times, rate

    def _draw_trains(self, rng: np.random.Generator) -> None:
        trains: dict[int, np.ndarray] = {}
        for unit in self.units:
            if unit.cell_type == "PkC_ss":
                continue  # drawn after its complex spikes, which pause it
            trains[unit.id], _ = self._train(unit.cell_type, rng)
        for unit in self.units:
            if unit.cell_type == "PkC_ss":
                ss, _ = self._train("PkC_ss", rng)
                pause = draw(rng, CS_PAUSE_MS) / 1000
                dead = self.specs["PkC_ss"].firing.dead_time_ms[0] / 1000
                trains[unit.id] = st.pause_after(ss, trains[unit.partner], pause, dead)
        times, ids = [], []
        for uid, t in trains.items():
            samples = np.unique(np.round(t * self.fs).astype(np.int64))
            times.append(samples[samples < self.n_samples])
            ids.append(np.full(times[-1].size, uid, np.int32))
        order_t = np.concatenate(times) if times else np.zeros(0, np.int64)
        order_u = np.concatenate(ids) if ids else np.zeros(0, np.int32)
        order = np.lexsort((order_u, order_t))
        self.spike_times = order_t[order]
        self.spike_units = order_u[order]
        self.spike_scales = np.clip(1 + AMPLITUDE_JITTER * rng.standard_normal(self.spike_times.size), 0.5, 1.5).astype(
            np.float32
        )

    # ----------------------------------------------------------------------------- ground truth
    @property
    def n_channels(self) -> int:
        return self.probe.n_channels

    def raw_snr(self) -> np.ndarray:
        """Per unit: unfiltered trough depth on the peak channel / that channel's noise sd."""
        return np.array([u.amplitude_uv / self.noise_sd_uv[u.peak_channel] for u in self.units])

    def cell_types(self) -> list[str]:
        return [u.cell_type for u in self.units]

    def layer_ranges(self) -> str:
        """The simulated layer stack as ``[classify] layers`` gives it (``NAME:from-to`` in um along
        the probe, C4's layers only: white matter is left out)."""
        return ",".join(
            f"{seg.name}:{seg.bottom_um:g}-{seg.top_um:g}"
            for seg in sorted(self.layers, key=lambda seg: seg.bottom_um)
            if seg.name in KNOWN_LAYERS
        )

    def unit_trains(self) -> list[np.ndarray]:
        """Spike times (samples) of each unit, in unit id order."""
        return self._per_unit(self.spike_times)

    def unit_amplitudes_uv(self) -> list[np.ndarray]:
        """Each spike's trough depth on its unit's peak channel (uV, drift left out), in the order of
        ``unit_trains``."""
        depth = np.array([u.amplitude_uv for u in self.units], np.float64)
        return self._per_unit(self.spike_scales * depth[self.spike_units])

    def _per_unit(self, per_spike: np.ndarray) -> list[np.ndarray]:
        order = np.argsort(self.spike_units, kind="stable")
        bounds = np.searchsorted(self.spike_units[order], np.arange(len(self.units) + 1))
        return [per_spike[order[bounds[i] : bounds[i + 1]]] for i in range(len(self.units))]

    def dense_templates(self) -> np.ndarray:
        """``[n_units, TEMPLATE_SAMPLES, n_channels]`` mean waveforms (uV), trough at TEMPLATE_TROUGH."""
        out = np.zeros((len(self.units), TEMPLATE_SAMPLES, self.n_channels), np.float32)
        for u in self.units:
            a = u.trough_index - TEMPLATE_TROUGH
            seg = u.waves_uv[max(a, 0) : a + TEMPLATE_SAMPLES]
            out[u.id][max(-a, 0) : max(-a, 0) + seg.shape[0], u.channels] = seg
        return out

    def synthesizer(self) -> TraceSynthesizer:
        return TraceSynthesizer(self)


@numba.jit(nopython=True, nogil=True, cache=True)
def add_spikes(
    out,
    first,
    times,
    units,
    scales,
    trough,
    length,
    course,
    smooth,
    channels,
    contacts,
    unit_xyz,
    unit_scale,
    drift_um,
    drift_period,
):
    """Add each listed spike to ``out`` = samples [first, first + n) of the recording, clipped
    to that range. A spike's footprint is computed where its unit is at that moment: moved
    ``drift_um * sin(2 pi t / drift_period)`` along the probe (t, period in samples)."""
    n = out.shape[0]
    for i in range(times.shape[0]):
        u = units[i]
        onset = times[i] - trough - first
        a = max(0, -onset)
        b = min(length[u], n - onset)
        if a >= b:
            continue
        shift = drift_um * np.sin(2.0 * np.pi * times[i] / drift_period) if drift_um > 0 else 0.0
        for k in range(channels.shape[1]):
            c = channels[u, k]
            if c < 0:
                break
            gain, mix = contact_gain_mix(
                contacts[c, 0] - unit_xyz[u, 0], contacts[c, 1] - unit_xyz[u, 1] - shift, unit_xyz[u, 2]
            )
            g = np.float32(scales[i] * unit_scale[u] * gain)
            m = np.float32(mix)
            for j in range(a, b):
                out[onset + j, c] += g * ((1 - m) * course[u, j] + m * smooth[u, j])


def _band_power_fraction(b: np.ndarray, a: np.ndarray, fs: float) -> float:
    """Fraction of white-noise power a filter (b, a) leaves in NOISE_BAND_HZ."""
    f, h = freqz(b, a, worN=8192, fs=fs)
    band = (f >= NOISE_BAND_HZ[0]) & (f <= NOISE_BAND_HZ[1])
    return float(np.sum(np.abs(h[band]) ** 2) / f.size)


class TraceSynthesizer:
    """Renders the simulation's voltage traces (float32 uV) in consecutive blocks; any
    sequence of block sizes gives the same samples."""

    def __init__(self, sim: Simulation):
        self.sim = sim
        cfg, fs, n_ch = sim.cfg, sim.fs, sim.n_channels
        rng = np.random.default_rng(sim._noise_seed)
        self._state = np.array([sim._noise_seed], np.uint64)
        self._table = normal_table()
        self._bank = white_bank(self._state, self._table, n_ch)
        alpha = 1 - np.exp(-2 * np.pi * ANTIALIAS_HZ / fs)
        in_band = _band_power_fraction(np.array([alpha]), np.array([1.0, alpha - 1.0]), fs)
        self._sd = (sim.noise_sd_uv / np.sqrt(in_band)).astype(np.float32)
        self._cm_sd = np.float32(cfg.common_mode_uv / np.sqrt(in_band))
        self._cm_gain = (1 + COMMON_MODE_GAIN_SPREAD * rng.uniform(-1, 1, n_ch)).astype(np.float32)
        w = np.array(NOISE_SPATIAL_WEIGHTS, np.float32)
        self._spatial = (w / np.sqrt(w[0] ** 2 + 2 * w[1] ** 2 + 2 * w[2] ** 2)).astype(np.float32)
        self._alpha = np.float32(alpha)
        self._lp = np.zeros(n_ch, np.float32)
        lfp_alpha = 1 - np.exp(-2 * np.pi * LFP_CORNER_HZ / fs)
        self._lfp_alpha = float(lfp_alpha)
        self._lfp_sd = np.float32(cfg.lfp_uv / np.sqrt(lfp_alpha / (2 - lfp_alpha)))
        self._lfp = np.zeros(1)
        units = sim.units
        n_units = max(len(units), 1)
        t_max = max((u.course.size for u in units), default=1)
        k_max = max((u.channels.size for u in units), default=1)
        self._course = np.zeros((n_units, t_max), np.float32)
        self._smooth = np.zeros((n_units, t_max), np.float32)
        self._channels = np.full((n_units, k_max), -1, np.int32)
        self._length = np.zeros(n_units, np.int64)
        self._xyz = np.zeros((n_units, 3))
        self._unit_scale = np.zeros(n_units)
        for u in units:
            self._course[u.id, : u.course.size] = u.course
            self._smooth[u.id, : u.smooth.size] = u.smooth
            self._channels[u.id, : u.channels.size] = u.channels
            self._length[u.id] = u.course.size
            self._xyz[u.id] = u.xyz_um
            self._unit_scale[u.id] = u.scale_uv
        self._contacts = sim.probe.positions_um.astype(np.float64)
        self._drift = float(cfg.drift_um)
        self._drift_period = float(cfg.drift_period_s * fs)
        self._trough = int(round(PRE_MS * fs / 1000))
        self._t_max = t_max
        self.next_sample = 0

    def read(self, n: int) -> np.ndarray:
        """The next ``n`` samples ``[n, n_channels]`` (float32 uV)."""
        sim = self.sim
        first = self.next_sample
        out = np.empty((n, sim.n_channels), np.float32)
        fill_background(
            out,
            self._state,
            self._table,
            self._bank,
            self._sd,
            self._spatial,
            self._cm_gain,
            self._cm_sd,
            self._alpha,
            self._lp,
            self._lfp_alpha,
            self._lfp_sd,
            self._lfp,
        )
        lo = np.searchsorted(sim.spike_times, first - (self._t_max - self._trough))
        hi = np.searchsorted(sim.spike_times, first + n + self._trough)
        add_spikes(
            out,
            first,
            sim.spike_times[lo:hi],
            sim.spike_units[lo:hi],
            sim.spike_scales[lo:hi],
            self._trough,
            self._length,
            self._course,
            self._smooth,
            self._channels,
            self._contacts,
            self._xyz,
            self._unit_scale,
            self._drift,
            self._drift_period,
        )
        self.next_sample += n
        return out

    def blocks(self, block_samples: int) -> Iterator[np.ndarray]:
        """The rest of the recording in blocks of ``block_samples`` (the last may be shorter)."""
        while self.next_sample < self.sim.n_samples:
            yield self.read(min(block_samples, self.sim.n_samples - self.next_sample))
