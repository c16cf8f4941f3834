"""Cerebellar cell types of the simulator: where they live, how they fire, what they look like.

Ranges are drawn per unit (uniform, or log-uniform for rates and amplitudes). Sources:

* Beau M, D'Agostino F, Herzfeld DJ, et al., Hull C, Häusser M, Medina JF (2025). A deep learning
  strategy to identify cell types across species from high-density extracellular recordings.
  Cell 188:2218-2234 (C4). Ground-truth mouse units (69 PkC_ss, 58 PkC_cs, 27 MLI, 18 GoC,
  30 MFB): firing rate, CV, CV2, ISI percentiles and Neuropixels 1.0 waveform widths and
  amplitudes, read from the per-unit feature tables published with the paper's dashboard.
* Phyllum (Medina lab): complex spikes suppress simple spikes for >= 7-10 ms; mossy fibre
  boutons fire bursts up to 1 kHz with a triphasic waveform.
* Zhou H et al. (2014) eLife 3:e02536; Xiao J et al. (2014) PLoS One 9:e105633; Arancillo M et al.
  (2015) J Neurophysiol 113:578-591: simple spike rates and regularity.
* Ruigrok TJH, Hensbroek RA, Simpson JI (2011) J Neurosci 31:712-724: MLI and GoC firing.
* Vos BP, Volny-Luraghi A, De Schutter E (1999) Eur J Neurosci 11:2621-2634: GoC firing.
* Badura A et al. (2013) Neuron 80:700-713; Burroughs A et al. (2017) J Physiol 595:283-299:
  complex-spike pause and spikelets.
* Chabrol FP et al. (2015) Nat Neurosci 18:718-727; Rancz EA et al. (2007) Nature 450:1245-1248:
  mossy fibre high-frequency bursts.

Which numbers are measured and which are estimates is stated per field below; the gamma shape
``k`` of each renewal process is derived from the measured CV2 (E[CV2] = 0.75 at k = 2, 0.62 at 3,
0.49 at 5, 0.35 at 10), the extra global variability (CV > CV2) comes from slow rate modulation.
Layer thicknesses are anatomical estimates (mouse: molecular layer 150-300 um, Purkinje layer
20-40 um, granular layer 100-400 um).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: layer names, as C4's layer input names them
LAYERS = ("ML", "PCL", "GCL", "WM")

Range = tuple[float, float]


@dataclass(frozen=True)
class FiringSpec:
    """Spike-train generator parameters (ranges drawn per unit)."""

    rate_hz: Range  # mean rate, log-uniform. C4 mouse P5-P95 (measured)
    gamma_k: Range  # renewal shape: local regularity, from CV2 (derived)
    dead_time_ms: Range  # absolute refractory period (estimate; lower bound from ISI P5)
    modulation_depth: Range  # sd of the log-rate's slow Ornstein-Uhlenbeck modulation (estimate)
    modulation_tau_s: Range  # its time constant (estimate)
    burst_rate_hz: Range = (0.0, 0.0)  # MFB: burst onsets per second (estimate)
    burst_spikes: Range = (0.0, 0.0)  # MFB: extra spikes per burst (estimate)
    burst_isi_ms: Range = (0.0, 0.0)  # MFB: intra-burst interval, 500-1000 Hz (Phyllum; C4 modal ISI)


@dataclass(frozen=True)
class ShapeSpec:
    """Waveform on the nearest contact, as a sum of Gaussian phases (ranges drawn per unit).

    Times are relative to the trough, in ms; ratios relative to the trough depth.
    """

    trough_halfwidth_ms: Range  # full width at half depth of the trough (C4 mouse, measured)
    post_ratio: Range  # after-positivity height / trough depth (C4 mouse, measured)
    post_delay_ms: Range  # trough-to-peak time (C4 mouse, measured)
    post_width_ms: Range  # width (sd) of the after-positivity (estimate)
    pre_ratio: Range = (0.0, 0.0)  # positivity before the trough (MFB triphasic: estimate)
    pre_delay_ms: Range = (0.2, 0.3)
    spikelets: Range = (0.0, 0.0)  # PkC_cs: number of spikelets after the initial spike (literature)
    spikelet_interval_ms: Range = (2.0, 3.0)
    spikelet_decay: Range = (0.5, 0.8)  # amplitude ratio from one spikelet to the next
    slow_positive_ratio: Range = (0.0, 0.0)  # PkC_cs: broad positive component (estimate)
    amplitude_uv: Range = (50.0, 200.0)  # trough depth on the nearest contact, log-uniform


@dataclass(frozen=True)
class CellTypeSpec:
    name: str
    layer: str
    firing: FiringSpec
    shape: ShapeSpec
    #: units per um of layer crossed, for the default population (estimate)
    density_per_um: float


SPECS: dict[str, CellTypeSpec] = {
    "PkC_ss": CellTypeSpec(
        "PkC_ss",
        "PCL",
        # C4: rate median 96 Hz (P5-P95 55-175), CV2 0.36 -> k ~ 10, ISI P5 ~ 5 ms; CV 0.44
        FiringSpec((55.0, 160.0), (3.0, 8.0), (2.5, 3.5), (0.15, 0.3), (0.2, 1.0)),
        # C4: trough half-width 0.44 ms, trough-to-peak 0.81 (0.71-0.91), peak/trough 0.39
        ShapeSpec((0.35, 0.5), (0.3, 0.5), (0.6, 0.95), (0.15, 0.25), amplitude_uv=(60.0, 450.0)),
        0.04,  # Purkinje cells per um of Purkinje layer (a row of 15-25 um somata); each has a CS unit
    ),
    "PkC_cs": CellTypeSpec(
        "PkC_cs",
        "PCL",
        # C4: rate 1.2 Hz (0.64-2.0), CV ~ CV2 ~ 0.9, ISI P5 ~ 100 ms -> Poisson + dead time
        FiringSpec((0.6, 2.0), (0.7, 1.2), (40.0, 80.0), (0.0, 0.1), (0.5, 2.0)),
        # initial spike + 2-4 decrementing spikelets at 2-3 ms (Burroughs 2017), broad positivity
        ShapeSpec(
            (0.3, 0.45),
            (0.2, 0.5),
            (0.5, 0.9),
            (0.2, 0.4),
            spikelets=(2.0, 4.0),
            spikelet_interval_ms=(1.5, 3.0),
            spikelet_decay=(0.5, 0.8),
            slow_positive_ratio=(0.15, 0.4),
            amplitude_uv=(50.0, 350.0),
        ),
        0.0,  # paired with PkC_ss: one per Purkinje cell
    ),
    "MLI": CellTypeSpec(
        "MLI",
        "ML",
        # C4: rate 16.5 Hz (P5-P95 3.3-68), CV2 0.69 -> k ~ 2.5, CV 0.80
        FiringSpec((4.0, 60.0), (1.5, 3.5), (1.5, 2.5), (0.25, 0.45), (0.3, 2.0)),
        # C4: narrow trough (half-width 0.44) with a small (0.22), late (1.0-1.5 ms) positivity
        ShapeSpec((0.3, 0.45), (0.12, 0.3), (0.9, 1.5), (0.3, 0.5), amplitude_uv=(30.0, 160.0)),
        0.025,
    ),
    "GoC": CellTypeSpec(
        "GoC",
        "GCL",
        # C4: rate 16 Hz (5-43), CV2 0.63 -> k ~ 3, CV 0.65, ISI P5 ~ 14 ms
        FiringSpec((5.0, 40.0), (1.8, 4.0), (3.0, 5.0), (0.15, 0.3), (0.3, 2.0)),
        # C4: broad: half-width 0.53, trough-to-peak 1.16 (0.91-1.39), peak/trough 0.6
        ShapeSpec((0.48, 0.65), (0.45, 0.75), (0.9, 1.4), (0.25, 0.4), amplitude_uv=(30.0, 150.0)),
        0.012,
    ),
    "MFB": CellTypeSpec(
        "MFB",
        "GCL",
        # C4: rate 11 Hz (4.6-39), CV 1.42, CV2 0.94, modal ISI ~ 1 ms: bursts of 500-1000 Hz
        FiringSpec(
            (2.0, 12.0),
            (0.8, 1.5),
            (0.6, 0.8),
            (0.2, 0.4),
            (0.3, 2.0),
            burst_rate_hz=(0.5, 3.0),
            burst_spikes=(1.0, 5.0),
            burst_isi_ms=(1.0, 2.0),
        ),
        # C4: narrowest: half-width 0.25, trough-to-peak 0.40 (0.30-0.51); triphasic (Phyllum)
        ShapeSpec(
            (0.2, 0.3),
            (0.3, 0.5),
            (0.3, 0.5),
            (0.08, 0.15),
            pre_ratio=(0.2, 0.5),
            pre_delay_ms=(0.15, 0.3),
            amplitude_uv=(40.0, 300.0),
        ),
        0.02,
    ),
}

#: simple spikes are silent for this long after each complex spike of the same cell
#: (Phyllum: >= 7-10 ms; Badura 2013, Zhou 2014: 10-30 ms)
CS_PAUSE_MS: Range = (8.0, 25.0)


#: spikelets never grow from one to the next
MAX_SPIKELET_DECAY = 0.95


def _widen(r: Range, spread: float, log: bool) -> Range:
    """Widen a range about its centre by ``spread`` of its half-width on each side (plus the same
    fraction of the centre, so that narrow ranges open up too); log scale for rates."""
    a, b = r
    if b <= 0:
        return r
    if log and a > 0:
        la, lb = np.log(a), np.log(b)
        c, h = (la + lb) / 2, (lb - la) / 2
        h = h * (1 + spread) + spread * 0.5
        return (float(np.exp(c - h)), float(np.exp(c + h)))
    c, h = (a + b) / 2, (b - a) / 2
    h = h * (1 + spread) + spread * abs(c) * 0.25
    return (max(0.0, c - h) if a >= 0 else c - h, c + h)


def _scale(r: Range, k: float) -> Range:
    return (r[0] * k, r[1] * k)


def regime_specs(spread: float = 0.0, rate_scale: float = 1.0, width_scale: float = 1.0) -> dict[str, CellTypeSpec]:
    """The cell types with every per-unit range widened by ``spread`` (domain randomisation for
    training), rates multiplied by ``rate_scale`` and waveform time constants by ``width_scale``
    (a different preparation or species, for held-out evaluation)."""
    from dataclasses import fields, replace

    out = {}
    for name, spec in SPECS.items():
        f = spec.firing
        firing = replace(
            f,
            rate_hz=_scale(_widen(f.rate_hz, spread, True), rate_scale),
            gamma_k=_widen(f.gamma_k, spread, True),
            modulation_depth=_widen(f.modulation_depth, spread, False),
            burst_rate_hz=_scale(_widen(f.burst_rate_hz, spread, True), rate_scale),
        )
        sh = spec.shape
        changes = {}
        for fld in fields(sh):
            r = getattr(sh, fld.name)
            if fld.name == "amplitude_uv":
                changes[fld.name] = _widen(r, spread, True)
            elif fld.name.endswith("_ms"):
                changes[fld.name] = _scale(_widen(r, spread, False), width_scale)
            elif fld.name in ("post_ratio", "pre_ratio", "slow_positive_ratio"):
                changes[fld.name] = _widen(r, spread, False)
            elif fld.name == "spikelet_decay":
                lo, hi = _widen(r, spread, False)
                changes[fld.name] = (lo, min(hi, MAX_SPIKELET_DECAY))
        out[name] = replace(spec, firing=firing, shape=replace(sh, **changes))
    return out
