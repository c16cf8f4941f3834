"""Every per-type range of generator C, each with its source or marked ``estimate``.

A range is drawn once per unit (uniform, or log-uniform where ``log``). Ranges are wide on
purpose: they cover awake and anaesthetised preparations and mouse to monkey where the literature
differs, and they are widest where it is uncertain (MLI and GoC waveform widths and positivity).

Sources. "checked" = the claim was looked up while writing this module (abstracts or figure
legends); "recalled" = from memory of the literature, not re-read here; ranges built from either
are widened by judgement (then also marked ``estimate``).

- Vos, Volny-Luraghi, De Schutter 1999, Eur J Neurosci 11:2621 (checked): Golgi cells in
  anaesthetised rats fire 8.4 spikes/s at rest; 84 % respond to tactile input with precisely timed
  spikes (double peaks < 4 ms apart) followed by a silent period of 13-200 ms.
- Rancz, Ishikawa, Duguid, Chadderton, Mahon, Häusser 2007, Nature 450:1245 (checked): single
  mossy fibre boutons in vivo fire sensory-evoked bursts at > 700 Hz instantaneous rates.
- Burroughs, Wise, Xiao, Houghton, Tang, Wong, Apps, Cerminara 2017, J Physiol 595:283 (checked):
  complex spikes carry a variable number of spikelets; the simple-spike suppression after a
  complex spike is graded with spikelet number.
- Yartsev, Givon-Mayo, Maller, Donchin 2009, Front Syst Neurosci 3:2 (checked): about half of the
  Purkinje cells of awake cats pause (down-states) for up to seconds between ~1.3 s active periods;
  a 2015 J Neurophysiol mouse study (PMC4416590, figure legend checked) found long (>= 500 ms)
  pauses in 31 of 288 awake-mouse Purkinje cells.
- Beau et al. 2025, Cell 188:2218 (checked: abstract): ground truth PkC, MLI, GoC, MF in awake mice
  with Neuropixels; (recalled) MFB waveforms narrow and often triphasic, GoC waveforms broad.
- Zhou et al. 2014, eLife 3:e02536 (recalled): awake-mouse simple spikes ~60 Hz (zebrin+) and
  ~90-100 Hz (zebrin-), complex spikes ~1 Hz.
- Shin, Hong, De Schutter et al. 2007, PLoS One 2:e485 (recalled): simple-spike trains of awake
  rodents are regular in the short term (CV2 ~0.2-0.5) despite irregular long-term statistics.
- Lisberger & Fuchs 1978, J Neurophysiol 41:733 (recalled): monkey floccular Purkinje cells fire
  simple spikes ~50-150 Hz.
- Llinás & Yarom 1986, J Physiol 376:163 and Lampl & Yarom 1993, J Neurophysiol 70:2181
  (recalled): inferior olive neurons have 3-10 Hz subthreshold oscillations and a long after-
  hyperpolarisation; complex spikes are rarely < 100 ms apart.
- Jörntell & Ekerot 2002, Neuron 34:797; Jelitai et al. 2016, Nat Commun 7:13722 (recalled):
  MLIs fire irregularly, ~5-30 Hz, higher in awake animals and during movement.
- Holtzman, Rajapaksa, Mostofi, Edgley 2006, J Physiol 574:491 (recalled): juxtacellularly
  identified Golgi cells fire ~2-15 Hz under anaesthesia, fairly regularly.
- van Kan, Gibson, Houk 1993, J Neurophysiol 69:74 (recalled): mossy fibres of awake monkeys fire
  tonically at tens to a few hundred Hz, modulated with movement.
- Ritzau-Jost et al. 2014, Neuron 84:152 (recalled): mossy fibre boutons sustain ~1 kHz firing.
- Jun et al. 2017, Nature 551:232 (recalled): Neuropixels 1.0 AP band 0.3-10 kHz, ~5 µV rms
  input-referred noise.
- Brunel & Sergi 1998, J Theor Biol 195:87; Brunel 2000, J Comput Neurosci 8:183 (recalled): the
  LIF rate formula with coloured-noise correction used to set the drive (``neuron.py``).
- Pachitariu et al. 2016/2024 (Kilosort; recalled): templates of 61 samples with the trough at
  sample 20; a 150 Hz (Kilosort 2) or 300 Hz (Kilosort 4) software high-pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ESTIMATE = "estimate"


@dataclass(frozen=True)
class Span:
    """A range a parameter is drawn from once per unit."""

    low: float
    high: float
    source: str
    log: bool = False

    def draw(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class Chance:
    """A probability, with its source."""

    p: float
    source: str

    def happens(self, rng: np.random.Generator) -> bool:
        return bool(rng.random() < self.p)


# ---------------------------------------------------------------------------------------------
# preparation and behaviour
# ---------------------------------------------------------------------------------------------

#: a unit comes from an anaesthetised preparation (lower rates, little behaviour)
ANAESTHETISED = Chance(0.3, ESTIMATE)
#: behaviour-driven rate modulation is this much weaker under anaesthesia
ANAESTHETISED_MODULATION_FACTOR = Span(0.1, 0.4, ESTIMATE)
#: the slow behavioural signal: an Ornstein-Uhlenbeck part (correlation time) ...
BEHAVIOUR_TAU_S = Span(0.3, 4.0, ESTIMATE, log=True)
#: ... and a rest/move telegraph part (mean dwell per state); weight of the telegraph part
MOVEMENT_DWELL_S = Span(1.0, 12.0, ESTIMATE, log=True)
MOVEMENT_WEIGHT = Span(0.0, 1.0, ESTIMATE)


@dataclass(frozen=True)
class FiringRanges:
    """The integrate-and-fire model of one type's spike generator (``neuron.py``). Drive and noise
    are in threshold units; ``noise_sd`` is the white-noise-equivalent sigma."""

    rate_awake_hz: Span
    rate_anaesthetised_hz: Span
    membrane_tau_ms: Span
    noise_sd: Span
    noise_tau_ms: Span
    adapt_tau_ms: Span
    adapt_jump: Span
    refractory_ms: Span
    reset: Span
    #: sd of ln(rate) the behavioural signal causes
    modulation_depth: Span
    #: brief strong inputs (sensory/behavioural events) evoking bursts: is the unit responsive,
    #: how often, how long, and the firing rate they drive
    responsive: Chance
    event_rate_hz: Span
    event_duration_ms: Span
    event_rate_target_hz: Span
    #: long pauses (down-states) of the whole cell
    has_down_states: Chance
    down_state_s: Span
    up_state_s: Span


NO_DOWN_STATES = Chance(0.0, "none reported for this type")
UNUSED = Span(1.0, 1.0, "unused")

PKC_SIMPLE_SPIKES = FiringRanges(
    rate_awake_hz=Span(40.0, 150.0, "Zhou 2014 eLife; Lisberger & Fuchs 1978 J Neurophysiol", log=True),
    rate_anaesthetised_hz=Span(15.0, 70.0, ESTIMATE, log=True),
    membrane_tau_ms=Span(8.0, 20.0, ESTIMATE),
    noise_sd=Span(0.12, 0.5, "estimate, set for CV2 ~0.2-0.55 (Shin 2007 PLoS One)"),
    noise_tau_ms=Span(1.0, 4.0, ESTIMATE),
    adapt_tau_ms=Span(20.0, 80.0, ESTIMATE),
    adapt_jump=Span(0.01, 0.08, ESTIMATE),
    refractory_ms=Span(1.2, 2.5, ESTIMATE),
    reset=Span(0.0, 0.5, ESTIMATE),
    modulation_depth=Span(0.08, 0.4, ESTIMATE),
    responsive=Chance(0.2, ESTIMATE),
    event_rate_hz=Span(0.2, 1.0, ESTIMATE),
    event_duration_ms=Span(10.0, 40.0, ESTIMATE),
    event_rate_target_hz=Span(150.0, 250.0, ESTIMATE),
    has_down_states=Chance(0.2, "Yartsev 2009 Front Syst Neurosci (cat ~50 %); mouse 31/288 (J Neurophysiol 2015)"),
    down_state_s=Span(0.3, 3.0, "Yartsev 2009 Front Syst Neurosci", log=True),
    up_state_s=Span(1.0, 20.0, "Yartsev 2009 Front Syst Neurosci (~1.3 s active periods); estimate", log=True),
)

MLI_FIRING = FiringRanges(
    rate_awake_hz=Span(5.0, 60.0, "Jelitai 2016 Nat Commun; estimate", log=True),
    rate_anaesthetised_hz=Span(3.0, 30.0, "Jörntell & Ekerot 2002 Neuron; estimate", log=True),
    membrane_tau_ms=Span(8.0, 25.0, ESTIMATE),
    noise_sd=Span(0.35, 0.9, "estimate, set for irregular firing (CV2 ~0.6-1)"),
    noise_tau_ms=Span(1.0, 5.0, ESTIMATE),
    adapt_tau_ms=Span(30.0, 100.0, ESTIMATE),
    adapt_jump=Span(0.0, 0.06, ESTIMATE),
    refractory_ms=Span(1.0, 2.0, ESTIMATE),
    reset=Span(0.0, 0.3, ESTIMATE),
    modulation_depth=Span(0.15, 0.6, "Jelitai 2016 Nat Commun (movement-related); estimate"),
    responsive=Chance(0.3, ESTIMATE),
    event_rate_hz=Span(0.2, 1.5, ESTIMATE),
    event_duration_ms=Span(10.0, 40.0, ESTIMATE),
    event_rate_target_hz=Span(80.0, 250.0, ESTIMATE),
    has_down_states=NO_DOWN_STATES,
    down_state_s=UNUSED,
    up_state_s=UNUSED,
)

GOC_FIRING = FiringRanges(
    rate_awake_hz=Span(5.0, 35.0, "van Kan 1993 J Neurophysiol; estimate", log=True),
    rate_anaesthetised_hz=Span(2.0, 15.0, "Vos 1999 Eur J Neurosci (8.4 Hz); Holtzman 2006 J Physiol", log=True),
    membrane_tau_ms=Span(15.0, 40.0, ESTIMATE),
    noise_sd=Span(0.08, 0.3, "estimate, set for CV2 ~0.3-0.7"),
    noise_tau_ms=Span(2.0, 6.0, ESTIMATE),
    adapt_tau_ms=Span(80.0, 250.0, "estimate (SK-type AHP behind the post-burst pause, Vos 1999)"),
    adapt_jump=Span(0.08, 0.3, "estimate (strong enough for a post-burst pause, Vos 1999)"),
    refractory_ms=Span(2.0, 4.0, ESTIMATE),
    reset=Span(0.0, 0.4, ESTIMATE),
    modulation_depth=Span(0.1, 0.45, ESTIMATE),
    responsive=Chance(0.7, "Vos 1999 Eur J Neurosci (84 % responsive)"),
    event_rate_hz=Span(0.2, 2.0, ESTIMATE),
    event_duration_ms=Span(4.0, 20.0, "Vos 1999 Eur J Neurosci (early 5-10 ms, late 13-26 ms peaks)"),
    event_rate_target_hz=Span(120.0, 400.0, "Vos 1999 Eur J Neurosci (double peaks < 4 ms apart)"),
    has_down_states=NO_DOWN_STATES,
    down_state_s=UNUSED,
    up_state_s=UNUSED,
)

MFB_FIRING = FiringRanges(
    rate_awake_hz=Span(10.0, 200.0, "van Kan 1993 J Neurophysiol; estimate", log=True),
    rate_anaesthetised_hz=Span(3.0, 50.0, ESTIMATE, log=True),
    membrane_tau_ms=Span(2.0, 8.0, ESTIMATE),
    noise_sd=Span(0.2, 0.7, ESTIMATE),
    noise_tau_ms=Span(0.5, 2.0, ESTIMATE),
    adapt_tau_ms=Span(10.0, 50.0, ESTIMATE),
    adapt_jump=Span(0.0, 0.03, ESTIMATE),
    refractory_ms=Span(0.5, 1.0, "Rancz 2007 Nature; Ritzau-Jost 2014 Neuron (~1 kHz)"),
    reset=Span(0.0, 0.3, ESTIMATE),
    modulation_depth=Span(0.15, 0.6, "van Kan 1993 J Neurophysiol; estimate"),
    responsive=Chance(0.85, "Rancz 2007 Nature (sensory-evoked bursts); estimate"),
    event_rate_hz=Span(0.3, 3.0, ESTIMATE, log=True),
    event_duration_ms=Span(3.0, 20.0, ESTIMATE),
    event_rate_target_hz=Span(300.0, 1000.0, "Rancz 2007 Nature (> 700 Hz); Ritzau-Jost 2014 Neuron"),
    has_down_states=NO_DOWN_STATES,
    down_state_s=UNUSED,
    up_state_s=UNUSED,
)

FIRING = {"PkC_ss": PKC_SIMPLE_SPIKES, "MLI": MLI_FIRING, "GoC": GOC_FIRING, "MFB": MFB_FIRING}


@dataclass(frozen=True)
class ClimbingFibreRanges:
    """The inferior-olive neuron behind a Purkinje cell's complex spikes (a slow LIF with a long
    AHP and a subthreshold oscillation), and the complex spike's effect on the simple spikes."""

    rate_awake_hz: Span
    rate_anaesthetised_hz: Span
    membrane_tau_ms: Span
    noise_sd: Span
    noise_tau_ms: Span
    adapt_tau_ms: Span
    adapt_jump: Span
    refractory_ms: Span
    oscillation_hz: Span
    #: oscillation amplitude, threshold units
    oscillation_amplitude: Span
    #: phase diffusion of the oscillation (rad^2/s)
    oscillation_phase_diffusion: Span
    #: complex-spike drive follows the behaviour with this gain relative to the simple spikes
    #: (negative: reciprocal)
    behaviour_gain: Span
    #: mean spikelets per complex spike (per cell); per spike it varies by +-1
    mean_spikelets: Span
    #: the simple-spike pause after a complex spike: base + per spikelet, and the hyperpolarisation
    #: the cell restarts from (threshold units)
    pause_base_ms: Span
    pause_per_spikelet_ms: Span
    pause_jitter_ms: Span
    pause_hyperpolarisation: Span


CLIMBING_FIBRE = ClimbingFibreRanges(
    rate_awake_hz=Span(0.5, 2.0, "Zhou 2014 eLife (~1 Hz)", log=True),
    rate_anaesthetised_hz=Span(0.3, 1.5, ESTIMATE, log=True),
    membrane_tau_ms=Span(20.0, 50.0, ESTIMATE),
    noise_sd=Span(0.25, 0.5, ESTIMATE),
    noise_tau_ms=Span(3.0, 10.0, ESTIMATE),
    adapt_tau_ms=Span(100.0, 300.0, "Llinás & Yarom 1986 J Physiol (long AHP); estimate"),
    adapt_jump=Span(0.2, 0.8, ESTIMATE),
    refractory_ms=Span(15.0, 50.0, "Lampl & Yarom 1993 J Neurophysiol; estimate"),
    oscillation_hz=Span(3.0, 10.0, "Llinás & Yarom 1986 J Physiol; Lampl & Yarom 1993 J Neurophysiol"),
    oscillation_amplitude=Span(0.0, 0.25, ESTIMATE),
    oscillation_phase_diffusion=Span(1.0, 20.0, ESTIMATE, log=True),
    behaviour_gain=Span(-0.6, 0.6, ESTIMATE),
    mean_spikelets=Span(1.5, 4.0, "Burroughs 2017 J Physiol"),
    pause_base_ms=Span(6.0, 18.0, "estimate (10-30 ms pauses in total)"),
    pause_per_spikelet_ms=Span(1.0, 4.0, "Burroughs 2017 J Physiol (graded with spikelets); estimate"),
    pause_jitter_ms=Span(1.0, 4.0, ESTIMATE),
    pause_hyperpolarisation=Span(0.0, 0.6, ESTIMATE),
)

# ---------------------------------------------------------------------------------------------
# waveforms: anchors of the wideband extracellular spike, in trough units (trough = -1) and ms
# from the trough; the probe's and the sorter's filters reshape them afterwards
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeRanges:
    pre_peak: Span
    pre_peak_ms: Span
    #: full width at half the trough depth, and the fraction of it before the trough
    half_width_ms: Span
    descent_fraction: Span
    trough_to_peak_ms: Span
    peak_ratio: Span
    #: from the peak to half the peak, and from that to baseline (ms)
    recovery_half_ms: Span
    recovery_tail_ms: Span
    #: a late negativity after the peak (triphasic spike): how often, how deep, how late after the peak
    triphasic: Chance
    late_trough: Span
    late_trough_delay_ms: Span
    #: the unit is positive-going on its best channel
    positive_going: Chance
    amplitude_uv: Span


PKC_SS_SHAPE = ShapeRanges(
    pre_peak=Span(0.0, 0.25, ESTIMATE),
    pre_peak_ms=Span(0.15, 0.4, ESTIMATE),
    half_width_ms=Span(0.12, 0.3, ESTIMATE),
    descent_fraction=Span(0.35, 0.55, ESTIMATE),
    trough_to_peak_ms=Span(0.25, 0.6, "estimate (Beau 2025 Cell: PkC_ss narrow)"),
    peak_ratio=Span(0.15, 0.6, ESTIMATE),
    recovery_half_ms=Span(0.15, 0.5, ESTIMATE),
    recovery_tail_ms=Span(0.3, 1.0, ESTIMATE),
    triphasic=Chance(0.1, ESTIMATE),
    late_trough=Span(0.0, 0.15, ESTIMATE),
    late_trough_delay_ms=Span(0.2, 0.6, ESTIMATE),
    positive_going=Chance(0.05, ESTIMATE),
    amplitude_uv=Span(60.0, 500.0, ESTIMATE, log=True),
)
PKC_CS_SHAPE = ShapeRanges(
    pre_peak=Span(0.0, 0.2, ESTIMATE),
    pre_peak_ms=Span(0.15, 0.4, ESTIMATE),
    half_width_ms=Span(0.15, 0.4, ESTIMATE),
    descent_fraction=Span(0.35, 0.55, ESTIMATE),
    trough_to_peak_ms=Span(0.3, 0.8, ESTIMATE),
    peak_ratio=Span(0.2, 0.8, ESTIMATE),
    recovery_half_ms=Span(0.2, 0.6, ESTIMATE),
    recovery_tail_ms=Span(0.3, 1.0, ESTIMATE),
    triphasic=Chance(0.0, ESTIMATE),
    late_trough=Span(0.0, 0.0, ESTIMATE),
    late_trough_delay_ms=Span(0.3, 0.3, ESTIMATE),
    positive_going=Chance(0.15, "estimate (dendritic recording sites, Beau 2025 Cell)"),
    amplitude_uv=Span(60.0, 500.0, ESTIMATE, log=True),
)
MLI_SHAPE = ShapeRanges(
    pre_peak=Span(0.0, 0.35, "estimate (uncertain: wide)"),
    pre_peak_ms=Span(0.12, 0.4, ESTIMATE),
    half_width_ms=Span(0.12, 0.35, "estimate (uncertain: wide)"),
    descent_fraction=Span(0.35, 0.55, ESTIMATE),
    trough_to_peak_ms=Span(0.25, 0.75, "estimate (uncertain: wide)"),
    peak_ratio=Span(0.15, 0.75, "estimate (uncertain: wide)"),
    recovery_half_ms=Span(0.15, 0.6, ESTIMATE),
    recovery_tail_ms=Span(0.3, 1.2, ESTIMATE),
    triphasic=Chance(0.1, ESTIMATE),
    late_trough=Span(0.0, 0.15, ESTIMATE),
    late_trough_delay_ms=Span(0.2, 0.6, ESTIMATE),
    positive_going=Chance(0.08, "estimate (uncertain)"),
    amplitude_uv=Span(50.0, 350.0, ESTIMATE, log=True),
)
GOC_SHAPE = ShapeRanges(
    pre_peak=Span(0.0, 0.3, "estimate (uncertain: wide)"),
    pre_peak_ms=Span(0.2, 0.5, ESTIMATE),
    half_width_ms=Span(0.2, 0.5, "estimate (Beau 2025 Cell: GoC broad; uncertain: wide)"),
    descent_fraction=Span(0.35, 0.55, ESTIMATE),
    trough_to_peak_ms=Span(0.45, 1.1, "estimate (Beau 2025 Cell: GoC broad; uncertain: wide)"),
    peak_ratio=Span(0.1, 0.5, "estimate (uncertain: wide)"),
    recovery_half_ms=Span(0.3, 1.0, ESTIMATE),
    recovery_tail_ms=Span(0.5, 2.0, ESTIMATE),
    triphasic=Chance(0.05, ESTIMATE),
    late_trough=Span(0.0, 0.1, ESTIMATE),
    late_trough_delay_ms=Span(0.4, 1.0, ESTIMATE),
    positive_going=Chance(0.08, "estimate (uncertain)"),
    amplitude_uv=Span(50.0, 300.0, ESTIMATE, log=True),
)
MFB_SHAPE = ShapeRanges(
    pre_peak=Span(0.1, 0.6, "estimate (Beau 2025 Cell: axonal, triphasic)"),
    pre_peak_ms=Span(0.07, 0.2, ESTIMATE),
    half_width_ms=Span(0.06, 0.15, "estimate (Beau 2025 Cell: narrow)"),
    descent_fraction=Span(0.35, 0.55, ESTIMATE),
    trough_to_peak_ms=Span(0.12, 0.3, "estimate (Beau 2025 Cell: narrowest)"),
    peak_ratio=Span(0.2, 0.9, ESTIMATE),
    recovery_half_ms=Span(0.06, 0.2, ESTIMATE),
    recovery_tail_ms=Span(0.1, 0.4, ESTIMATE),
    triphasic=Chance(0.7, "estimate (Beau 2025 Cell: often triphasic)"),
    late_trough=Span(0.1, 0.4, ESTIMATE),
    late_trough_delay_ms=Span(0.12, 0.35, ESTIMATE),
    positive_going=Chance(0.1, ESTIMATE),
    amplitude_uv=Span(40.0, 250.0, ESTIMATE, log=True),
)

SHAPES = {"PkC_ss": PKC_SS_SHAPE, "PkC_cs": PKC_CS_SHAPE, "MLI": MLI_SHAPE, "GoC": GOC_SHAPE, "MFB": MFB_SHAPE}


@dataclass(frozen=True)
class ComplexSpikeShapeRanges:
    """What follows a complex spike's initial spike: decrementing spikelets and a slow
    (dendritic, calcium) component; each complex spike draws its own around the cell's values."""

    first_spikelet_ms: Span
    spikelet_interval_ms: Span
    spikelet_timing_jitter_ms: Span
    first_spikelet_amplitude: Span
    spikelet_decrement: Span
    spikelet_width_factor: Span
    slow_amplitude: Span
    slow_positive: Chance
    slow_onset_ms: Span
    slow_duration_ms: Span


COMPLEX_SPIKE_SHAPE = ComplexSpikeShapeRanges(
    first_spikelet_ms=Span(1.0, 2.5, "Burroughs 2017 J Physiol; estimate"),
    spikelet_interval_ms=Span(1.0, 3.0, "Burroughs 2017 J Physiol; estimate"),
    spikelet_timing_jitter_ms=Span(0.1, 0.4, ESTIMATE),
    first_spikelet_amplitude=Span(0.2, 0.7, ESTIMATE),
    spikelet_decrement=Span(0.5, 0.9, ESTIMATE),
    spikelet_width_factor=Span(1.0, 1.8, ESTIMATE),
    slow_amplitude=Span(0.1, 0.8, ESTIMATE),
    slow_positive=Chance(0.6, "estimate (dendritic calcium spike seen as a positive wave near the soma)"),
    slow_onset_ms=Span(0.3, 1.5, ESTIMATE),
    slow_duration_ms=Span(3.0, 10.0, ESTIMATE),
)

# ---------------------------------------------------------------------------------------------
# the probe and the sorter's template
# ---------------------------------------------------------------------------------------------

#: Neuropixels 1.0 AP band: first-order 300 Hz high-pass and 10 kHz low-pass (Jun 2017 Nature)
PROBE_HIGHPASS_HZ = 300.0
PROBE_LOWPASS_HZ = 10000.0
#: software high-pass of the sorter: none, Kilosort 2's 150 Hz or Kilosort 4's 300 Hz
#: (3rd-order Butterworth, zero-phase); one is picked per unit
SOFTWARE_HIGHPASS_HZ = (None, 150.0, 300.0)
SOFTWARE_HIGHPASS_ORDER = 3
#: background noise on the peak channel (µV rms per sample, band-passed): Jun 2017 Nature
#: (~5 µV hardware) plus biological background, estimate
NOISE_UV = Span(6.0, 15.0, "Jun 2017 Nature; estimate")
#: spikes averaged into the template, their timing jitter (the sorter's alignment error) and
#: their amplitude spread
AVERAGED_SPIKES = Span(100.0, 1000.0, ESTIMATE, log=True)
ALIGNMENT_JITTER_MS = Span(0.005, 0.07, ESTIMATE, log=True)
SPIKE_AMPLITUDE_CV = Span(0.03, 0.2, ESTIMATE)
#: template lengths a sorter saves (samples at 30 kHz; 61: Kilosort) and where the trough sits
TEMPLATE_LENGTHS = (61, 82, 90)
TROUGH_POSITION_FRACTION = Span(0.28, 0.5, "estimate (Kilosort: sample 20 of 61)")
BASELINE_OFFSET_UV = Span(-5.0, 5.0, ESTIMATE)
#: a fraction of the template's spikes come from another unit (contamination)
TEMPLATE_CONTAMINATION = Span(0.0, 0.08, ESTIMATE)

# ---------------------------------------------------------------------------------------------
# sorting: which spikes the sorter assigns to the unit
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SortingRanges:
    #: the unit's mean amplitude over the detection threshold
    amplitude_over_threshold: Span
    #: slow amplitude drift: sd of ln(amplitude) and its correlation time
    drift_sd: Span
    drift_tau_s: Span
    #: fades: the unit drifts off the channel for a while (count, duration, depth lost)
    fades: Chance
    fade_count: Span
    fade_duration_s: Span
    fade_depth: Span
    #: a spike after a short interval is smaller (Na+ channel inactivation): depth, recovery (ms)
    short_interval_attenuation: Span
    attenuation_recovery_ms: Span
    #: measured amplitude noise per spike, relative to the threshold
    amplitude_noise: Span
    #: collisions with other units' spikes: their summed rate, the window, the chance of a loss
    neighbour_rate_hz: Span
    collision_window_ms: Span
    collision_loss: Span
    #: contamination: fraction of another unit's spikes, and noise events
    other_unit_fraction: Span
    noise_event_rate_hz: Span


SORTING = SortingRanges(
    amplitude_over_threshold=Span(1.1, 4.0, ESTIMATE, log=True),
    drift_sd=Span(0.03, 0.2, ESTIMATE),
    drift_tau_s=Span(20.0, 200.0, ESTIMATE, log=True),
    fades=Chance(0.25, ESTIMATE),
    fade_count=Span(1.0, 3.0, ESTIMATE),
    fade_duration_s=Span(5.0, 60.0, ESTIMATE, log=True),
    fade_depth=Span(0.3, 0.9, ESTIMATE),
    short_interval_attenuation=Span(0.0, 0.35, ESTIMATE),
    attenuation_recovery_ms=Span(1.0, 5.0, ESTIMATE),
    amplitude_noise=Span(0.1, 0.25, ESTIMATE),
    neighbour_rate_hz=Span(20.0, 300.0, ESTIMATE, log=True),
    collision_window_ms=Span(0.3, 1.0, ESTIMATE),
    collision_loss=Span(0.2, 0.9, ESTIMATE),
    other_unit_fraction=Span(0.0, 0.04, ESTIMATE),
    noise_event_rate_hz=Span(0.0, 1.0, ESTIMATE),
)
#: a complex-spike unit also picks up one of its spikelets as a second spike, this often
SPIKELET_DOUBLE_DETECTION = Span(0.0, 0.1, ESTIMATE)

#: the layer each type is recorded in
LAYERS = {"PkC_ss": "PCL", "PkC_cs": "PCL", "MLI": "ML", "GoC": "GCL", "MFB": "GCL"}
