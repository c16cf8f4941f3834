"""Per-type parameter distributions of the independent generator, each traced to its source.

Every unit draws its own parameters from the ranges below. The ranges are deliberately WIDE: they
cover awake and anaesthetised preparations and mouse, rat, cat and monkey wherever the literature
differs, so that a classifier trained on them cannot lean on one lab's numbers. Each range names
its source (author, year, journal) or says ``estimate``; ``verified`` means that the statement was
checked against the paper's abstract or a figure legend while this module was written, the other
citations are from the literature as remembered and were not re-checked.

Sources (short names used below):

- Beau 2025: Beau, D'Agostino, Herzfeld et al., Cell 188:2218 (2025), the C4 ground-truth library
  (optotagged PkC, MLI, GoC, MFB in awake mice; layers ML/PCL/GCL). verified (abstract)
- Jelitai 2016: Jelitai, Puggioni, Ishikawa, Rinaldi, Duguid, Nat Commun (2016), PMC5172235: awake
  mouse PkC simple spikes ~50 Hz at rest, from ~5 up to 250 Hz during locomotion. verified
- Zhou 2014: Zhou, Lin, Voges et al., eLife (2014): awake mouse PkC simple spikes
  ~60 Hz (zebrin+) to ~90-100 Hz (zebrin-), complex spikes ~1 Hz. module difference verified
  (via Wu 2019 eLife), numbers not re-checked
- Xiao 2014: Xiao, Cerminara, Kotsurovskyy et al., PLoS One 9:e105633 (2014): anaesthetised rat,
  simple-spike rate and regularity and the post-complex-spike pause differ between zebrin bands.
  verified (abstract)
- Hensbroek 2014: Hensbroek, Belton, van Beugen et al., J Neurosci Methods (2014): PkC
  simple spikes have a high rate and intermediate regularity (CV2, MAD). verified (abstract)
- Yartsev 2009: Yartsev, Givon-Mayo, Maller, Donchin, Front Syst Neurosci (2009): awake cat,
  about half of the PkCs pause for up to several seconds. verified (abstract)
- PMC4416590 (2015): awake C57Bl/6 mice, 31 of 288 PkCs have at least one ISI >= 500 ms.
  verified (figure legend; authors and journal not checked)
- Kobayashi 1998: Kobayashi, Kawano, Takemura et al., J Neurophysiol 80:832 (1998): complex
  spikes do not exceed a few per second (monkey). verified (abstract)
- Herzfeld 2018: Herzfeld, Kojima, Soetedjo, Shadmehr, Nat Neurosci (2018), PMC6054128:
  complex spikes "approximately once per second" (monkey). verified (the statement; authors and
  journal from memory)
- Warnaar 2015: Warnaar, Couto, Negrello et al., Front Cell Neurosci 9:122 (2015): awake monkey
  complex spikes, spikelets at ~600 Hz (~1.7 ms apart), number and late jitter vary; waveform does
  not change the following pause. verified (abstract)
- Burroughs 2017: Burroughs, Wise, Xiao et al., J Physiol (2017), PMC5199739: anaesthetised rat,
  the number of spikelets varies from complex spike to complex spike. verified (abstract)
- Ruigrok 2011: Ruigrok, Hensbroek, Simpson, J Neurosci 31:712 (2011), PMC6623423: juxtacellularly labelled
  interneurons (anaesthetised rat, rabbit): Golgi cells somewhat irregular at low rates, basket
  and stellate cells irregular, some very slow. verified (abstract)
- Van Dijck 2013: Van Dijck, Van Hulle, Heiney et al., PLoS One (2013): identified
  cerebellar cortical neurons across species; rate separates PkC from granular-layer units,
  irregularity separates within the granular layer. verified (abstract)
- Vos 1999: Vos, Volny-Luraghi, De Schutter, Eur J Neurosci 11:2621 (1999): Golgi cells in
  ketamine/xylazine rats fire slowly at rest (8.4 Hz), respond to touch with precisely timed
  spikes (double peaks < 4 ms apart) followed by a silent period of 13-200 ms. verified (abstract)
- Forti 2006: Forti, Cesana, Mapelli, D'Angelo, J Physiol 574:711 (2006): Golgi cells are regular
  pacemakers in vitro. verified (as cited by Solinas 2007, Front Cell Neurosci)
- Rancz 2007: Rancz, Ishikawa, Duguid et al., Nature (2007): patch recordings from mossy
  fibre boutons in vivo, sensory bursts at > 700 Hz. verified (abstract)
- Arenz 2008: Arenz, Silver, Schaefer, Margrie, Science (2008): vestibular mossy fibres
  fire tonically at high rates, modulated by head motion. not re-checked
- Bagnall 2008: Bagnall, McElvain, Faulstich, du Lac, Neuron (2008): vestibular afferents
  span 5-150 spikes/s in vivo. verified (abstract)
- Robbins 2013: Robbins, Fox, Holmes, Scott, Barry, Front Neural Circuits (2013), PMC3831546:
  axonal short-duration waveforms are triphasic, ~0.18 ms peak-to-trough. verified (figure legend)
- Henze 2000: Henze, Borhegyi, Csicsvari et al., J Neurophysiol (2000): the somatic
  extracellular spike resembles the negative first derivative of the intracellular one.
  not re-checked
- Gold 2006: Gold, Henze, Koch, Buzsaki, J Neurophysiol 95:3113 (2006): the extracellular
  waveform follows the total membrane current; most recordings lack a prominent capacitive phase,
  so ionic (resistive) currents shape it too. verified (abstract)
- Yael 2017: Yael, Bar-Gad, PLoS One 12:e0174790 (2017): the causal (non-linear phase) filters of
  most hardware and online software distort spike waveforms. verified (abstract)
- ONIX/Neuropixels: Neuropixels 1.0 spike band is 0.3-10 kHz, sampled at 30 kHz (open-ephys ONIX
  documentation). verified
- Jun 2017: Jun, Steinmetz, Siegle et al., Nature (2017): Neuropixels AP-band noise of a
  few uV rms. not re-checked
- Sarnaik 2018: Sarnaik, Raman, eLife (2018): stride cycle of ~200-300 ms in head-fixed
  running mice modulates PkC firing. verified (abstract)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtclass.cell_types import CELL_TYPES

#: C4's layer names (Beau 2025)
LAYER_ML = "ML"
LAYER_PCL = "PCL"
LAYER_GCL = "GCL"
#: the layer each type is recorded in (Beau 2025: PkC somata in the Purkinje cell layer, MLIs in
#: the molecular layer, Golgi cells and mossy fibre boutons in the granular layer)
LAYER_OF_TYPE = {"PkC_ss": LAYER_PCL, "PkC_cs": LAYER_PCL, "MLI": LAYER_ML, "GoC": LAYER_GCL, "MFB": LAYER_GCL}

#: the process behind each type's spike train (see ``trains``)
PROCESS_OF_TYPE = {
    "PkC_ss": "inverse_gaussian",  # pacemaker-like, regular, paused by the paired complex spikes
    "PkC_cs": "hazard",  # Poisson-like with a long refractoriness
    "MLI": "hazard",  # irregular
    "GoC": "inverse_gaussian",  # regular-ish, with sensory burst-pause events
    "MFB": "two_state",  # tonic renewal firing interrupted by high-frequency bursts
}
#: the waveform model of each type (see ``waveforms``)
WAVEFORM_OF_TYPE = {"PkC_ss": "somatic", "PkC_cs": "complex", "MLI": "somatic", "GoC": "somatic", "MFB": "axonal"}


@dataclass(frozen=True)
class Param:
    """One parameter's distribution. ``kind``: ``uniform``, ``log`` (log-uniform), ``int``
    (integers low..high inclusive) or ``chance`` (True with probability ``low``). With
    ``absent_p`` > 0 the parameter is 0 (the feature is absent) in that fraction of units."""

    low: float
    high: float = 0.0
    kind: str = "uniform"
    absent_p: float = 0.0
    source: str = "estimate"

    def draw(self, rng: np.random.Generator) -> float:
        # draw both numbers always, so that the stream of random numbers does not depend on the outcome
        absent = rng.random() < self.absent_p
        u = rng.random()
        if self.kind == "chance":
            value = float(u < self.low)
        elif self.kind == "log":
            value = float(np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low))))
        elif self.kind == "int":
            value = float(int(self.low + np.floor(u * (self.high - self.low + 1))))
        else:
            value = float(self.low + u * (self.high - self.low))
        return 0.0 if absent else value


def _modulation(epoch_gain_sd_high: float, sine_depth_high: float) -> dict[str, Param]:
    """Slow rate changes shared by all types: behavioural epochs and a rhythmic component."""
    return {
        # rest / locomotion / licking bouts of seconds to tens of seconds (Jelitai 2016: self-paced
        # locomotion bouts; durations estimate)
        "epoch_mean_s": Param(2.0, 30.0, "log", source="estimate (behavioural bouts, Jelitai 2016)"),
        # log-sd of the epoch gains; Jelitai 2016: PkC rates change several-fold with locomotion
        "epoch_gain_sd": Param(0.03, epoch_gain_sd_high, "uniform", source="estimate (Jelitai 2016)"),
        # transitions between epochs are not instantaneous
        "epoch_ramp_ms": Param(50.0, 500.0, "log", source="estimate"),
        # stride (~3-5 Hz, Sarnaik 2018), licking (~6-8 Hz), whisking (up to ~12 Hz), slow breathing
        "sine_hz": Param(0.5, 12.0, "log", source="Sarnaik 2018 (stride); others estimate"),
        "sine_depth": Param(0.0, sine_depth_high, "uniform", absent_p=0.3, source="estimate"),
    }


#: spike-train parameters per type
TRAIN_PARAMS: dict[str, dict[str, Param]] = {
    "PkC_ss": {
        # awake mouse ~50-100 Hz (Zhou 2014, Jelitai 2016), anaesthetised rat lower (Xiao 2014),
        # monkey up to ~100+ Hz; the extremes of the wide range cover locomotion and deep anaesthesia
        "rate_hz": Param(20.0, 200.0, "log", source="Zhou 2014; Jelitai 2016; Xiao 2014"),
        # CV of the intervals at the mean rate, giving CV2 ~0.2-0.5 (Hensbroek 2014: intermediate
        # regularity; numbers estimate)
        "isi_cv": Param(0.2, 0.5, "uniform", source="Hensbroek 2014 (regularity); values estimate"),
        "dead_time_ms": Param(2.5, 4.0, "uniform", source="estimate (PkC refractoriness ~3-4 ms)"),
        # silent window after each complex spike of the same cell; the observed CS -> first SS
        # interval adds about half an ISI: ~10-30 ms awake (Xiao 2014, Zhou 2014; values estimate)
        "cs_pause_ms": Param(8.0, 25.0, "uniform", source="Xiao 2014; Zhou 2014 (values estimate)"),
        "cs_pause_jitter": Param(0.05, 0.3, "uniform", source="estimate (Warnaar 2015: pause varies)"),
        # long pauses (bistability): present in a minority of awake mouse PkCs (PMC4416590), in
        # about half of awake cat PkCs (Yartsev 2009)
        "long_pause_hz": Param(0.01, 0.1, "log", absent_p=0.8, source="PMC4416590; Yartsev 2009"),
        "long_pause_ms": Param(150.0, 1500.0, "log", source="Yartsev 2009; PMC4416590 (>= 500 ms ISIs)"),
        **_modulation(0.45, 0.35),
    },
    "PkC_cs": {
        # ~1 Hz (Zhou 2014, Herzfeld 2018), "a few per second" at most (Kobayashi 1998); down to
        # ~0.3 Hz under anaesthesia, but the floor is raised to 0.8 Hz so that 300 s give >= 100
        # spikes after the worst sorting losses (C4's minimum)
        "rate_hz": Param(0.8, 3.0, "log", source="Zhou 2014; Herzfeld 2018; Kobayashi 1998; floor raised"),
        # climbing-fibre refractoriness: no CS within tens of ms of the previous one
        "abs_refractory_ms": Param(40.0, 80.0, "uniform", source="estimate (~50-100 ms refractoriness)"),
        "recovery_ms": Param(10.0, 120.0, "log", source="estimate"),
        **_modulation(0.3, 0.2),
    },
    "MLI": {
        # irregular, from very slow to tens of Hz (Ruigrok 2011, Van Dijck 2013); higher in
        # awake, moving animals (Jelitai 2016: MLI drive during locomotion; values estimate)
        "rate_hz": Param(5.0, 80.0, "log", source="Ruigrok 2011; Van Dijck 2013; upper end estimate"),
        "abs_refractory_ms": Param(1.0, 2.5, "uniform", source="estimate"),
        # slow recovery -> more regular; fast recovery -> Poisson-like
        "recovery_ms": Param(2.0, 30.0, "log", source="estimate (irregularity, Ruigrok 2011)"),
        **_modulation(0.6, 0.4),
    },
    "GoC": {
        # 8.4 Hz at rest under ketamine/xylazine (Vos 1999), low rates (Ruigrok 2011); awake higher
        "rate_hz": Param(2.0, 40.0, "log", source="Vos 1999; Ruigrok 2011; upper end estimate"),
        # regular pacemakers in vitro (Forti 2006), somewhat irregular in vivo (Ruigrok 2011)
        "isi_cv": Param(0.25, 0.7, "uniform", source="Forti 2006; Ruigrok 2011 (values estimate)"),
        "dead_time_ms": Param(3.0, 8.0, "uniform", source="estimate (long Golgi AHP)"),
        # sensory burst-pause responses (Vos 1999): precisely timed spikes then a silent period
        "burst_event_hz": Param(0.05, 0.5, "log", absent_p=0.3, source="estimate (stimulus rate)"),
        "burst_spikes": Param(1, 3, "int", source="Vos 1999 (single or double peaks)"),
        "burst_isi_ms": Param(2.0, 4.0, "uniform", source="Vos 1999 (double peaks < 4 ms)"),
        "burst_pause_ms": Param(20.0, 150.0, "log", source="Vos 1999 (silent period 13-200 ms)"),
        **_modulation(0.4, 0.35),
    },
    "MFB": {
        # vestibular afferents 5-150 Hz (Bagnall 2008), tonic high rates (Arenz 2008), sparse
        # bursting sensory fibres (Rancz 2007)
        "rate_hz": Param(5.0, 200.0, "log", source="Bagnall 2008; Arenz 2008; Rancz 2007"),
        # tonic firing between bursts: regular (vestibular) to irregular (sensory)
        "isi_cv": Param(0.3, 1.0, "uniform", source="estimate (Arenz 2008 vs. Rancz 2007)"),
        "dead_time_ms": Param(0.6, 1.0, "uniform", source="estimate (axon refractoriness allows ~1 kHz)"),
        # share of the spikes fired in bursts
        "burst_fraction": Param(0.05, 0.6, "uniform", source="estimate"),
        "burst_spikes_mean": Param(2.5, 8.0, "uniform", source="estimate (Rancz 2007 bursts)"),
        # intra-burst rate 500-1000 Hz (Rancz 2007: > 700 Hz)
        "intra_burst_hz": Param(500.0, 1000.0, "uniform", source="Rancz 2007"),
        # intervals lengthen through a burst
        "burst_slowing": Param(0.0, 0.15, "uniform", source="estimate"),
        "post_burst_silence_ms": Param(2.0, 10.0, "uniform", source="estimate"),
        **_modulation(0.6, 0.4),
    },
}

#: intracellular action-potential shape per type (``waveforms``): rise and decay time constants of
#: ``(1 - exp(-t/rise))**3 * exp(-t/decay)``, the after-hyperpolarisation (size relative to the
#: spike, alpha-function time constant) and how much of the extracellular spike is capacitive
#: (dV/dt) rather than resistive (V). Ranges are estimates tuned so that trough-to-peak times after
#: the acquisition band-pass fall where the brief's physiology puts them (GoC broad ~0.7-1.6 ms,
#: MFB narrow ~0.25-0.6 ms; Beau 2025 shows GoC broadest, MFB narrowest, PkC_ss and MLI narrow)
WAVEFORM_PARAMS: dict[str, dict[str, Param]] = {
    "PkC_ss": {
        "ap_rise_ms": Param(0.1, 0.22, "uniform"),
        "ap_decay_ms": Param(0.25, 0.7, "uniform"),
        "ahp_frac": Param(0.05, 0.3, "uniform"),
        "ahp_tau_ms": Param(0.8, 3.0, "log"),
        "capacitive_weight": Param(0.5, 0.9, "uniform", source="Henze 2000; Gold 2006 (mix estimate)"),
    },
    "PkC_cs": {
        # the initial spike of a complex spike is a somatic spike like the simple spike
        "ap_rise_ms": Param(0.1, 0.25, "uniform"),
        "ap_decay_ms": Param(0.3, 0.8, "uniform"),
        "ahp_frac": Param(0.0, 0.2, "uniform"),
        "ahp_tau_ms": Param(0.8, 3.0, "log"),
        "capacitive_weight": Param(0.4, 0.9, "uniform", source="Henze 2000; Gold 2006 (mix estimate)"),
        # 1-5 spikelets at ~1.5-3 ms (Warnaar 2015: ~600 Hz; Burroughs 2017: variable number)
        "n_spikelets": Param(1, 5, "int", source="Warnaar 2015; Burroughs 2017"),
        "spikelet_interval_ms": Param(1.4, 3.0, "uniform", source="Warnaar 2015 (~1.7 ms)"),
        "spikelet_decay": Param(0.35, 0.8, "uniform", source="estimate (decrementing spikelets)"),
        "spikelet_broadening": Param(0.1, 0.5, "uniform", source="estimate"),
        # the slow (dendritic calcium) component under the spikelets
        "slow_frac": Param(0.15, 0.6, "uniform", source="estimate (Warnaar 2015: slow component)"),
        "slow_tau_ms": Param(1.0, 4.0, "log", source="estimate"),
        "slow_positive": Param(0.75, kind="chance", source="estimate"),
    },
    "MLI": {
        "ap_rise_ms": Param(0.1, 0.25, "uniform"),
        "ap_decay_ms": Param(0.3, 0.9, "uniform"),
        "ahp_frac": Param(0.05, 0.35, "uniform"),
        "ahp_tau_ms": Param(1.0, 4.0, "log"),
        "capacitive_weight": Param(0.45, 0.9, "uniform", source="Henze 2000; Gold 2006 (mix estimate)"),
    },
    "GoC": {
        "ap_rise_ms": Param(0.2, 0.45, "uniform"),
        "ap_decay_ms": Param(0.8, 2.0, "uniform"),
        "ahp_frac": Param(0.1, 0.4, "uniform"),
        "ahp_tau_ms": Param(2.0, 6.0, "log"),
        "capacitive_weight": Param(0.25, 0.6, "uniform", source="Henze 2000; Gold 2006 (mix estimate)"),
    },
    "MFB": {
        # a fast axonal spike (Rancz 2007: brief bouton APs) seen through its second derivative
        "ap_rise_ms": Param(0.09, 0.2, "uniform"),
        "ap_decay_ms": Param(0.2, 0.6, "uniform"),
        "ahp_frac": Param(0.0, 0.15, "uniform"),
        "ahp_tau_ms": Param(0.5, 2.0, "log"),
        # triphasic: second derivative mixed with first derivative (Robbins 2013); more second
        # derivative -> a larger first positive phase
        "axonal_weight": Param(0.3, 0.6, "uniform", source="Robbins 2013 (triphasic; mix estimate)"),
    },
}

#: what the sorter and the acquisition make of the spike, the same for every type
TEMPLATE_PARAMS: dict[str, Param] = {
    # peak-channel amplitude of the mean waveform (Neuropixels units: tens to hundreds of uV)
    "amplitude_uv": Param(30.0, 600.0, "log", source="estimate (Jun 2017 amplitude range)"),
    # the template is an average of N spikes: residual noise shrinks as 1/sqrt(N)
    "n_averaged": Param(30.0, 2000.0, "log", source="estimate"),
    "noise_rms_uv": Param(4.0, 15.0, "uniform", source="Jun 2017 (AP-band noise; range estimate)"),
    # spectral exponent of the residual noise: 1/f**exponent (pink-ish, not white)
    "noise_exponent": Param(0.5, 1.5, "uniform", source="estimate"),
    # where the trough sits in the template, as a fraction of its length
    "trough_fraction": Param(0.3, 0.55, "uniform", source="estimate (sorters put it off-centre)"),
    # a constant baseline offset and a small slope, in a fraction of the units
    "offset_frac": Param(-0.06, 0.06, "uniform", absent_p=0.6, source="estimate"),
    "slope_frac": Param(-0.06, 0.06, "uniform", absent_p=0.7, source="estimate"),
    # a positive-going unit (C4 flips it back)
    "flipped": Param(0.05, kind="chance", source="estimate"),
    # acquisition: a causal high-pass at ~300 Hz (hardware single pole to software 3rd order) and a
    # low-pass at 8-10 kHz (ONIX/Neuropixels: 0.3-10 kHz spike band)
    "highpass_hz": Param(250.0, 350.0, "uniform", source="ONIX/Neuropixels (300 Hz)"),
    "highpass_order": Param(1, 3, "int", source="estimate"),
    "lowpass_hz": Param(8000.0, 10000.0, "uniform", source="ONIX/Neuropixels (10 kHz)"),
    # sub-sample position of the spike on the 30 kHz grid
    "subsample_phase": Param(0.0, 1.0, "uniform", source="sampling"),
}
#: template lengths (samples at 30 kHz) sorters and exporters produce
TEMPLATE_LENGTHS = (61, 82, 90, 121)

#: sorting imperfections, drawn per unit (``units``)
SORTING_PARAMS: dict[str, Param] = {
    # amplitude of a full-size spike over the detection threshold: near 1 -> many misses
    "detection_margin": Param(1.1, 3.0, "log", source="estimate"),
    # spike-to-spike amplitude scatter (log-sd)
    "amplitude_jitter": Param(0.05, 0.22, "uniform", source="estimate"),
    # each spike shrinks the next ones by this fraction, recovering with the time constant:
    # spikes late in a burst are smaller and missed more often
    "burst_attenuation": Param(0.0, 0.4, "uniform", source="estimate (Na channel inactivation)"),
    "attenuation_tau_ms": Param(1.0, 8.0, "log", source="estimate"),
    # a chunk of the recording in which the unit drifted away from the probe (no spikes)
    "drift_chunk_frac": Param(0.03, 0.15, "uniform", absent_p=0.7, source="estimate"),
    "drift_ramp_frac": Param(0.1, 0.4, "uniform", source="estimate"),
    # unsorted background spikes (Poisson), as a fraction of the unit's own spikes
    "background_frac": Param(0.002, 0.03, "log", absent_p=0.3, source="estimate"),
    # the largest spikes of a neighbouring unit, as a fraction of the unit's own spikes
    "neighbour_frac": Param(0.002, 0.05, "log", absent_p=0.3, source="estimate"),
}

assert set(TRAIN_PARAMS) == set(CELL_TYPES) == set(WAVEFORM_PARAMS) == set(LAYER_OF_TYPE)


def draw(spec: dict[str, Param], rng: np.random.Generator) -> dict[str, float]:
    """One unit's values of every parameter in ``spec`` (in the spec's order)."""
    return {name: p.draw(rng) for name, p in spec.items()}


def draw_unit_params(cell_type: str, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """All of one unit's drawn parameters: train, waveform, template and sorting."""
    if cell_type not in TRAIN_PARAMS:
        raise ValueError(f"unknown cell type {cell_type!r}; expected one of {CELL_TYPES}")
    out = {
        "train": draw(TRAIN_PARAMS[cell_type], rng),
        "waveform": draw(WAVEFORM_PARAMS[cell_type], rng),
        "template": draw(TEMPLATE_PARAMS, rng),
        "sorting": draw(SORTING_PARAMS, rng),
    }
    out["template"]["length_samples"] = float(TEMPLATE_LENGTHS[int(rng.integers(len(TEMPLATE_LENGTHS)))])
    return out
