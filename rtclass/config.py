"""Configuration: frozen dataclasses, one per TOML section, loaded and validated.

Each field is declared with :func:`param`, which carries its unit, bounds, allowed values and
doc string, and whether it is an advanced (tuning) parameter. That declaration is the one table
of parameters: validation (:func:`validate`) and the parameter tables of docs/configuration.md
(:func:`parameter_table_markdown`; ``python -m rtclass.config`` rewrites them) are both generated
from it, so they cannot drift apart.

A TOML file holds any subset of the sections and keys; everything else keeps its default.
Unknown sections or keys, wrong types and out-of-range values raise :class:`ConfigError` naming
the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtclass import package_data_path
from rtclass.errors import ConfigError

log = logging.getLogger("rtclass.config")


def param(
    default: Any,
    doc: str,
    unit: str = "",
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] | None = None,
    *,
    advanced: bool = False,
) -> Any:
    """Declare a configuration field with its documentation and bounds (inclusive).

    ``doc`` says what the value does (its effect, and when to change it); ``advanced`` marks the
    tuning parameters a rig user normally leaves alone (the documentation lists them apart from the
    everyday ones: source, probe, publishing, templates, model, duration, thresholds)."""
    return field(
        default=default,
        metadata={"doc": doc, "unit": unit, "lo": lo, "hi": hi, "choices": choices, "advanced": advanced},
    )


@dataclass(frozen=True)
class ProbeConfig:
    geometry: str = param(
        "np1",
        "contact positions, used for every channel neighbourhood: `np1` / `np2` (bank-0 layout of a Neuropixels "
        "1.0 / 2.0 single-shank probe), a SpikeGLX `.meta` file (its IMRO table) or a phy folder "
        "(`channel_positions.npy`). A file source's own `.meta` is used instead of `np1`/`np2`; give the "
        "session's `.meta` when a live probe records from electrodes other than bank 0",
    )
    n_channels: int = param(
        384, "channels the stream carries, sync channel excluded; a stream with another count is refused", "", 1, 4096
    )
    sample_rate_hz: float = param(
        30000.0,
        "sampling rate of the stream; an LSL stream at another nominal rate is refused, a file source uses "
        "the rate in its `.meta`",
        "Hz",
        1000.0,
        100000.0,
    )


@dataclass(frozen=True)
class SourceConfig:
    chunk_ms: float = param(
        1.0,
        "length of the blocks a file source reads and `rtclass replay` sends (live sources deliver their "
        "sender's chunks); shorter blocks mean less waiting per spike and more per-block overhead",
        "ms",
        0.05,
        1000.0,
        advanced=True,
    )
    speed: float = param(
        1.0,
        "pace of a file source: 1 = real time, 2 = twice as fast, 0 = as fast as possible (offline "
        "processing: discovery then clusters in place, so the result depends on the data alone)",
        "x",
        0.0,
        1000.0,
    )
    resolve_timeout_s: float = param(
        10.0,
        "how long `rtclass run` waits at start-up for a live stream (LSL, ZMQ, Open Ephys) before it stops "
        "with an error",
        "s",
        0.1,
        3600.0,
    )
    gap_tolerance_ms: float = param(
        20.0,
        "LSL only: once the inlet has caught up after a jump in the timestamps, a stream clock still this far "
        "ahead of the samples received means samples were lost (counted, and the sample index advances by "
        "them); less is a sender stall (nothing lost). Raise it for a sender with a very jittery clock",
        "ms",
        0.0,
        10000.0,
        advanced=True,
    )
    int16_uv_per_bit: float = param(
        2.34375,
        "microvolts per step of an int16 LSL stream (float32 streams are read as uV): 2.34375 for "
        "Neuropixels 1.0 at AP gain 500, 0.762939453125 for Neuropixels 2.0",
        "uV",
        1e-6,
        1e6,
    )
    buffer_s: float = param(
        10.0,
        "data a network source queues while the pipeline is busy; beyond it samples are lost (and counted "
        "as a gap). Raise it where other work can hold rtclass up for longer",
        "s",
        0.1,
        600.0,
        advanced=True,
    )
    batch_ms: float = param(
        0.0,
        "live sources: gather what arrives within this long into one block before processing it (0 = each "
        "chunk as it arrives). Each block has a fixed cost: with a sender's 1 ms chunks a probe takes about "
        "twice the CPU it takes with 10 ms blocks, and every spike waits up to this much longer. Set 5-10 "
        "on a machine that runs several probes and can afford the latency (metrics.json `batch_ms`)",
        "ms",
        0.0,
        1000.0,
    )
    lsl_loopback: bool = param(
        False,
        "keep LSL discovery and traffic on this machine (the demo and tests do); leave false on a rig whose "
        "stream comes from another machine",
    )


@dataclass(frozen=True)
class PreprocessConfig:
    bandpass_low_hz: float = param(
        300.0,
        "high-pass corner of the causal Butterworth band-pass: removes the local field potential and drift",
        "Hz",
        1.0,
        10000.0,
        advanced=True,
    )
    bandpass_high_hz: float = param(
        6000.0,
        "low-pass corner of the band-pass; must be below half the sampling rate",
        "Hz",
        100.0,
        49000.0,
        advanced=True,
    )
    highpass_order: int = param(
        1,
        "order of the high-pass edge: 1 (like Neuropixels 1.0's own AP filter) keeps broad spikes (Golgi "
        "cells, Purkinje simple spikes) whole; orders >= 2 shrink them and ring after them with a second "
        "trough (then set `detect.echo_refractory_ms`)",
        "",
        1,
        8,
        advanced=True,
    )
    lowpass_order: int = param(3, "order of the low-pass edge", "", 1, 8, advanced=True)
    common_reference: str = param(
        "median",
        "`median`: subtract at every sample the median over all channels (removes noise common to the probe); "
        "`none`: no reference, for streams that are already referenced",
        choices=("median", "none"),
        advanced=True,
    )


@dataclass(frozen=True)
class DetectConfig:
    threshold_sd: float = param(
        5.0,
        "detection threshold in noise SDs of the channel (MAD / 0.6745): lower finds smaller units and more "
        "noise, higher misses units whose spikes are near the threshold",
        "sd",
        2.0,
        50.0,
    )
    template_threshold_sd: float = param(
        4.0,
        "on the channel where a known unit (given or discovered) peaks, detect down to this many noise SDs; "
        "a peak below threshold_sd counts only if the matcher gives it to a unit, so units not yet known "
        "are found as before (set it to threshold_sd to switch this off)",
        "sd",
        2.0,
        50.0,
    )
    exclude_sweep_ms: float = param(
        0.2,
        "a peak must be the minimum over its neighbouring channels within +- this time (locally exclusive "
        "rule); detection decides a sample this long after it, so this is the latency it adds",
        "ms",
        0.0,
        2.0,
        advanced=True,
    )
    radius_um: float = param(
        50.0,
        "neighbourhood of the locally exclusive rule: a peak must be the minimum among the channels within "
        "this distance",
        "um",
        0.0,
        2000.0,
        advanced=True,
    )
    echo_refractory_ms: float = param(
        0.0,
        "echo suppression: a smaller peak this soon after an accepted one on a channel within "
        "`echo_radius_um` is dropped as its echo. 0 = off (the first-order high-pass makes no echoes); about "
        "2 ms with `preprocess.highpass_order` >= 2, whose second trough comes 1-2 ms after the first",
        "ms",
        0.0,
        20.0,
        advanced=True,
    )
    echo_radius_um: float = param(
        100.0, "how far from an accepted peak its echoes are suppressed", "um", 0.0, 2000.0, advanced=True
    )
    echo_ratio: float = param(
        0.6,
        "a later peak is an echo only if smaller than this fraction of the accepted one (bursts of one unit "
        "and larger spikes of other units pass)",
        "",
        0.0,
        1.0,
        advanced=True,
    )
    noise_warmup_ms: float = param(
        500.0,
        "data used to estimate the noise before detection starts (no spikes are detected in it)",
        "ms",
        10.0,
        60000.0,
        advanced=True,
    )
    noise_update_ms: float = param(
        100.0, "how often each channel's noise level and threshold are refreshed", "ms", 1.0, 60000.0, advanced=True
    )
    noise_time_constant_s: float = param(
        10.0,
        "memory of the noise estimate (exponential forgetting): longer is steadier, shorter follows changing "
        "noise sooner",
        "s",
        0.1,
        3600.0,
        advanced=True,
    )
    noise_subsample: int = param(
        16, "every n-th sample feeds the noise estimate (cheaper, same estimate)", "samples", 1, 1000, advanced=True
    )
    noise_bin_uv: float = param(
        0.5,
        "resolution of each channel's histogram of absolute amplitudes, from which the MAD is read",
        "uV",
        0.001,
        100.0,
        advanced=True,
    )
    noise_n_bins: int = param(
        256,
        "bins of that histogram: it spans noise_n_bins x noise_bin_uv (128 uV by default); a MAD beyond that saturates",
        "",
        16,
        65536,
        advanced=True,
    )


@dataclass(frozen=True)
class MatchingConfig:
    """Template matching: which templates, the match window, when a match is accepted, how templates adapt."""

    templates: str = param(
        "",
        "a Kilosort/phy folder whose templates identify the units (as `--templates`; unit id = phy cluster "
        "id); empty: units are discovered online",
    )
    prior_from_sort: bool = param(
        True,
        "with `templates`, each unit starts with its spike count in that sort (`spike_templates.npy`) as "
        "the matcher's rate prior: from the first spike, a near tie goes to the unit that fired more in "
        "the sort (without it, every unit starts equal and the prior builds up from the live counts)",
    )
    window_pre_ms: float = param(0.33, "match window before the trough", "ms", 0.05, 2.0, advanced=True)
    window_post_ms: float = param(
        0.33,
        "match window after the trough: a spike is decided once this much data after it (plus "
        "`max_shift_samples`) has arrived, so this is the latency matching adds",
        "ms",
        0.1,
        5.0,
        advanced=True,
    )
    radius_um: float = param(
        60.0,
        "a template's support: the channels within this distance of its peak channel, on which it is fitted",
        "um",
        0.0,
        500.0,
        advanced=True,
    )
    candidate_radius_um: float = param(
        80.0,
        "templates peaking within this distance of a spike's channel, and whose support holds that channel, "
        "compete for the spike",
        "um",
        0.0,
        1000.0,
        advanced=True,
    )
    max_shift_samples: int = param(
        2,
        "alignment search: each candidate is tried up to this many samples either side of the detected trough",
        "samples",
        0,
        10,
        advanced=True,
    )
    subtract_post_ms: float = param(
        4.0,
        "length after the trough of each unit's long template, subtracted from the later spikes it overlaps "
        "(a neighbour's decaying tail; a complex spike's spikelets 1.5-3 ms after it). 0 = no overlap "
        "subtraction; longer costs matching time",
        "ms",
        0.0,
        10.0,
        advanced=True,
    )
    truncated_post_ms: float = param(
        0.1,
        "a spike that fails its match is fitted again on a window ending this long after its trough, before "
        "most of a later overlapping spike; 0 = off",
        "ms",
        0.0,
        5.0,
        advanced=True,
    )
    unit_dead_time_ms: float = param(
        0.5,
        "a spike given to a unit closer than this to the unit's previous spike is the same spike seen twice "
        "(no neuron fires twice so soon): it is dropped and counted (metrics.json `repeats_dropped`); 0 = off",
        "ms",
        0.0,
        2.0,
        advanced=True,
    )
    late_window_post_ms: float = param(
        3.0,
        "a spike won by a unit whose waveform goes on past the match window (a complex spike's spikelets, "
        "a broad waveform) while a busier unit also competes for it is decided again, on a window this long "
        "after its trough, once that data has arrived: those units' spikes are published about this much "
        "later (the unit table's `late_decision_ms`). Must be shorter than `subtract_post_ms`; 0 = off",
        "ms",
        0.0,
        9.0,
        advanced=True,
    )
    late_tail_evidence: float = param(
        200.0,
        "a unit decides late when its long template past the match window, at its typical amplitude, "
        "carries at least this much energy over the noise on its peak channel (in noise variances summed "
        "over samples; a complex spike's spikelets at SNR 15 carry ~1000); lower makes more units decide late",
        "",
        0.0,
        1e6,
        advanced=True,
    )
    late_margin: float = param(
        100.0,
        "such a spike waits for its late decision only if a unit with more spikes so far fits it within this "
        "much energy of the winner (in noise variances; its amplitude gate aside, as for two overlapping "
        "spikes): a clear match is published at once",
        "",
        0.0,
        1e6,
        advanced=True,
    )
    pair_offset_ms: float = param(
        0.2,
        "a peak no single template explains well is also fitted as two units' spikes up to this far apart; "
        "if that explains it, both are published. 0 = off; the default is the detector's exclusion window, "
        "within which two spikes make one peak",
        "ms",
        0.0,
        1.0,
        advanced=True,
    )
    max_residual: float = param(
        8.0,
        "with given templates, a match may leave at most this many times the energy noise alone leaves "
        "(about 1 for a spike the template explains); higher assigns more spikes, more of them wrongly",
        "",
        1.0,
        100.0,
        advanced=True,
    )
    min_explained: float = param(
        0.5,
        "with given templates, a match that removes at least this fraction of the snippet's energy is "
        "accepted whatever its residual (overlapping spikes leave a large residual)",
        "",
        0.0,
        1.0,
        advanced=True,
    )
    min_fit_explained: float = param(
        0.3,
        "a template that removes less than this fraction of the energy on its channels does not compete: "
        "keeps a unit from absorbing the small spikes of its neighbours",
        "",
        0.0,
        1.0,
        advanced=True,
    )
    amplitude_tolerance: float = param(
        0.3,
        "a fit whose amplitude differs from the unit's typical amplitude by more than this fraction (plus "
        "the fit's own noise) rules the unit out: neighbouring units often share a shape but not a size",
        "",
        0.0,
        10.0,
        advanced=True,
    )
    adapt_spikes: int = param(
        200,
        "typical amplitudes, and the template shapes that adapt, follow the data as running means over this "
        "many matched spikes; 0 = nothing is learnt (fixed templates and amplitudes)",
        "spikes",
        0,
        1000000,
        advanced=True,
    )
    adapt_given_templates: bool = param(
        False,
        "let the shapes of templates given with `--templates` follow the data too (their amplitudes are "
        "always learnt). Off: on a stable probe, adapting shapes can drift onto a neighbour over minutes; "
        "it may help on a drifting probe (not measured)",
        advanced=True,
    )


@dataclass(frozen=True)
class DiscoveryConfig:
    """Online discovery of units when no templates are given: clustering rounds, splits and merges."""

    enabled: bool = param(
        True, "without templates, find units online; false: every spike is published as unit -1 (detection only)"
    )
    clustering_niceness: int = param(
        5,
        "niceness of the clustering process (live runs): higher yields more to the hot path and to other "
        "programs, but on a busy machine discovery then falls behind (status: rounds skipped); 19 is the "
        "lowest priority",
        "",
        0,
        19,
        advanced=True,
    )
    max_residual: float = param(
        5.0,
        "the same bound while discovering units: stricter, so that spikes of units not yet found stay "
        "unassigned and can form new units",
        "",
        1.0,
        100.0,
        advanced=True,
    )
    min_explained: float = param(0.9, "the same while discovering units", "", 0.0, 1.0, advanced=True)
    shape_spikes: int = param(
        500,
        "a discovered unit's template shape follows its first this many matched spikes (after its creation "
        "or a split), then stays; its amplitude is always learnt",
        "spikes",
        1,
        1000000000,
        advanced=True,
    )
    interval_s: float = param(
        0.5,
        "data time between discovery rounds (clustering of unexplained spikes, split checks, merges)",
        "s",
        0.05,
        3600.0,
        advanced=True,
    )
    min_spikes: int = param(
        25,
        "spikes a cluster needs to become a unit: fewer finds units sooner, from noisier clusters",
        "",
        5,
        100000,
        advanced=True,
    )
    min_spikes_large: int = param(
        15,
        "spikes a cluster needs if its trough is at least `discovery_large_snr` noise SDs deep, so that "
        "large units are found sooner",
        "",
        5,
        100000,
        advanced=True,
    )
    large_snr: float = param(
        8.0,
        "trough depth (noise SDs) from which `discovery_min_spikes_large` applies; 1000 = never",
        "",
        0.0,
        1000.0,
        advanced=True,
    )
    min_new: int = param(
        10,
        "new unexplained snippets that make a channel due for clustering again (once it holds `discovery_min_spikes`)",
        "",
        1,
        100000,
        advanced=True,
    )
    max_snippets: int = param(
        800, "unexplained snippets kept per channel for discovery (the latest)", "", 50, 1000000, advanced=True
    )
    zones_per_round: int = param(
        12,
        "channels clustered per discovery round, those with the most new snippets first; bounds a round's cost",
        "",
        1,
        4096,
        advanced=True,
    )
    split_units: bool = param(
        True,
        "re-cluster each unit's recent spikes from time to time and split off any other unit hidden in it",
        advanced=True,
    )
    split_checks_per_round: int = param(
        1,
        "units whose recent spikes are re-clustered per discovery round (the most overdue first)",
        "",
        1,
        4096,
        advanced=True,
    )
    merge_similarity: float = param(
        0.9,
        "a new cluster whose median waveform correlates at least this well with a known template (and fits "
        "it at that unit's amplitude) is that unit found again, not a new one",
        "",
        0.0,
        1.0,
        advanced=True,
    )
    pca_components: int = param(6, "principal components kept per snippet for clustering", "", 1, 64, advanced=True)


@dataclass(frozen=True)
class FeaturesConfig:
    """Each unit's features for the classifier, kept up to date as its spikes arrive."""

    acg_window_ms: int = param(
        100,
        "plain autocorrelogram kept per unit: lags 1 .. this in 1 ms bins (the classifier's 3D-ACG is "
        "separate, fixed by C4's definition)",
        "ms",
        10,
        2000,
        advanced=True,
    )


#: ``[classify] classifier``: the one the model card chose, the network, or the physiology baseline
CLASSIFIER_CHOICES = ("auto", "model", "baseline")
#: ``classify.spike_filter`` values
SPIKE_FILTER_CHOICES = ("c4", "off")


@dataclass(frozen=True)
class ClassifyConfig:
    model: str = param(
        "",
        "the ONNX cell-type model (as `--model`); empty: the model shipped in the package "
        "(`rtclass-c4sim-v2`, or `rtclass-c4sim-v2-layer` when `layers` is set; trained on simulated units only); "
        "`none`: no labels",
    )
    classifier: str = param(
        "auto",
        "which of the model folder's classifiers labels units: `auto` (the one its model card found better "
        "on a generator it was not trained on), `model` (the ONNX network) or `baseline` (the physiology "
        "nearest-centroid baseline, `baseline.json` beside the model)",
        choices=CLASSIFIER_CHOICES,
    )
    layers: str = param(
        "",
        "the cerebellar layers along the probe, for models that take the layer (`rtclass-c4sim-v2-layer`, "
        "C4's `layer_information` models): `NAME:from-to` in um from the tip, comma-separated, NAME one of "
        "GCL, PCL, ML, e.g. "
        "`GCL:0-450,PCL:450-500,ML:500-900`; a unit is in the range of its peak contact, else `unknown`",
    )
    interval_s: float = param(
        2.0,
        "how often the live labeler relabels units (in its own thread, off the hot path)",
        "s",
        0.05,
        3600.0,
        advanced=True,
    )
    min_spikes: int = param(
        100,
        "units with fewer spikes stay unlabeled (C4's minimum: their features are too noisy)",
        "spikes",
        3,
        10000000,
        advanced=True,
    )
    confidence_ratio: float = param(
        0.0,
        "a unit is labelled only if its top class probability is at least this many times the second, else "
        "`unlabeled`; 0: the threshold the model card calibrated (at most 10 % of units abstained on a "
        "generator the model was not trained on), or C4's 2 for a model without one; raise it for fewer, "
        "surer labels",
        "",
        0.0,
        1000.0,
    )
    spike_filter: str = param(
        "c4",
        "which spikes build a unit's 3D-ACG: `c4` keeps, as C4 does, only its 10 s chunks where 30 s windows "
        "show few refractory violations and few missed spikes (an amplitude distribution cut by the threshold), "
        "and leaves unlabeled a unit with too few such spikes; `off`: all its spikes",
        choices=SPIKE_FILTER_CHOICES,
    )
    spike_filter_fp_max: float = param(
        0.05,
        "C4's spike filter: the largest false-positive fraction (refractory violations) a window may show",
        "",
        0.0,
        10.0,
        advanced=True,
    )
    spike_filter_fn_max: float = param(
        0.05,
        "C4's spike filter: the largest fraction of missed spikes (a Gaussian fitted to the amplitudes, below "
        "their cut) a window may show",
        "",
        0.0,
        1.0,
        advanced=True,
    )
    spike_filter_min_good_s: float = param(
        0.0,
        "C4's spike filter: a live unit is labelled only if its good sections span more than this; C4 needs "
        "180 s (as `rtclass classify` does), 0 labels a unit as soon as it has good sections",
        "s",
        0.0,
        100000.0,
        advanced=True,
    )
    hysteresis_ticks: int = param(
        2,
        "a unit's published label changes only after this many consecutive labelling rounds agree",
        "",
        1,
        1000,
        advanced=True,
    )


@dataclass(frozen=True)
class PublishConfig:
    zmq: bool = param(True, "publish labeled spikes, the unit table and counts on a ZMQ PUB socket (wire format v1)")
    zmq_address: str = param(
        "tcp://127.0.0.1:5560",
        "where that socket binds; the default serves this machine only, `tcp://0.0.0.0:5560` serves decoders "
        "on other machines too",
    )
    lsl: bool = param(
        True, "publish spikes on the LSL outlet `<source name>-spikes` (and counts on `<source name>-counts`)"
    )
    counts_bin_ms: float = param(
        20.0,
        "bin of the spike counts per cell type (ZMQ `counts/<type>`, LSL `<source>-counts`), published once "
        "every spike in the bin is decided; 0 = no counts",
        "ms",
        0.0,
        10000.0,
    )
    unit_table_interval_s: float = param(
        1.0,
        "the unit table (ZMQ topic `units`) is published when it changed, at most this often",
        "s",
        0.05,
        3600.0,
        advanced=True,
    )
    unit_table_repeat_s: float = param(
        5.0,
        "an unchanged unit table is published again this often, so that a subscriber that joins late "
        "(or missed a message) has it within this time; 0: only when it changed",
        "s",
        0.0,
        3600.0,
        advanced=True,
    )
    status_interval_s: float = param(
        0.5,
        "the health counters (ZMQ topic `status`: drops, gaps, restarts, per-chunk time, spike -> publish lag, "
        "labeller and discovery state) are published this often, for `rtclass view` and monitors; 0: never",
        "s",
        0.0,
        3600.0,
        advanced=True,
    )
    features: bool = param(
        True,
        "after each labelling round, publish every labelled unit's classifier input (ZMQ topic `features`: "
        "3D-ACG and waveform, 4.4 kB per unit), which `rtclass view` shows",
        advanced=True,
    )


@dataclass(frozen=True)
class RunConfig:
    duration_s: float = param(
        0.0, "stop after this much data (as `--duration`); 0 = until the source ends or SIGINT/SIGTERM", "s", 0.0, 1e7
    )
    status_interval_s: float = param(
        1.0, "how often the live view and the status log refresh", "s", 0.05, 3600.0, advanced=True
    )
    save_raw: bool = param(
        False,
        "also write the stream as the pipeline saw it (float32 uV) to `raw.bin` in the output folder, named in "
        "`params.py` so that phy shows the traces (as `--save-raw`)",
    )
    idle_timeout_s: float = param(
        0.0, "stop when a live source has sent nothing for this long; 0 = wait for it forever", "s", 0.0, 1e7
    )
    cpu_cores: str = param(
        "",
        "run the pipeline on these CPU cores only, e.g. `3` or `2-3,6` (a core kept for rtclass on a rig); "
        "discovery's clustering then runs on the others; empty = any core",
        advanced=True,
    )
    realtime_priority: int = param(
        0,
        "run the hot path with real-time scheduling (SCHED_FIFO) at this priority where the system permits it "
        "(root, CAP_SYS_NICE or an rtprio limit); where not, a warning and normal scheduling; 0 = normal",
        "",
        0,
        99,
        advanced=True,
    )


def parse_cpu_cores(text: str) -> set[int]:
    """``"2-3,6"`` -> {2, 3, 6}; empty -> empty set (any core)."""
    cores: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise ConfigError(f"[run] cpu_cores = {text!r}: {part!r} is not a core number or range like 2-3") from None
        if first < 0 or last < first:
            raise ConfigError(f"[run] cpu_cores = {text!r}: {part!r} is not a range of core numbers")
        cores.update(range(first, last + 1))
    return cores


@dataclass(frozen=True)
class SimulateConfig:
    """The built-in simulated cerebellar probe (``rtclass simulate``, the demo, training sets)."""

    probe: str = param("np1", "probe of the simulated recording", choices=("np1", "np2"))
    duration_s: float = param(60.0, "length of the simulated recording", "s", 0.01, 1e6)
    seed: int = param(0, "random seed: the same seed gives the same bytes", "", 0, 2**32 - 1)
    layers: str = param(
        "ML:200,PCL:40,GCL:300,WM:150,GCL:300,PCL:40,ML:250",
        "layer stack from the top contact down the probe, `NAME:thickness_um,...`, NAME one of ML, PCL, GCL, "
        "WM; the default crosses a folium (the layers repeat in reverse)",
        advanced=True,
    )
    units_per_type: int = param(
        0,
        "0: unit counts follow the layer thicknesses (a realistic probe); N: N units of every cell type "
        "(classifier training sets)",
        "",
        0,
        100000,
        advanced=True,
    )
    noise_uv: float = param(
        8.0,
        "mean background noise per channel in 300-6000 Hz (varies +-25 % between channels)",
        "uV",
        0.0,
        1000.0,
        advanced=True,
    )
    common_mode_uv: float = param(
        6.0,
        "noise shared by all channels in 300-6000 Hz (what the common median reference removes)",
        "uV",
        0.0,
        1000.0,
        advanced=True,
    )
    lfp_uv: float = param(
        80.0, "slow local-field component common to all channels, below ~10 Hz", "uV", 0.0, 10000.0, advanced=True
    )
    amplitude_scale: float = param(
        1.0, "multiplies every unit's amplitude (harder or easier recordings)", "", 0.01, 100.0, advanced=True
    )
    parameter_spread: float = param(
        0.0,
        "widens every per-unit parameter range by this fraction (domain randomisation for training sets)",
        "",
        0.0,
        5.0,
        advanced=True,
    )
    rate_scale: float = param(
        1.0, "multiplies every firing rate (to mimic another preparation or species)", "", 0.05, 20.0, advanced=True
    )
    width_scale: float = param(
        1.0,
        "multiplies every waveform time constant (to mimic another preparation or species)",
        "",
        0.2,
        5.0,
        advanced=True,
    )
    drift_um: float = param(
        0.0, "slow probe drift: units move +- this far along the probe (0 = none)", "um", 0.0, 500.0, advanced=True
    )
    drift_period_s: float = param(120.0, "period of that sinusoidal drift", "s", 1.0, 1e6, advanced=True)


@dataclass(frozen=True)
class Config:
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    run: RunConfig = field(default_factory=RunConfig)
    simulate: SimulateConfig = field(default_factory=SimulateConfig)

    def replace(self, **sections: dict[str, Any]) -> Config:
        """A copy with some keys changed, e.g. ``cfg.replace(source={"speed": 0})``; validated."""
        return from_dict({**as_dict(self), **{s: {**as_dict(self)[s], **v} for s, v in sections.items()}})


def _section_types() -> dict[str, type]:
    return {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def as_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    return dataclasses.asdict(cfg)


def _coerce(section: str, f: dataclasses.Field, value: Any) -> Any:
    key = f"[{section}] {f.name}"
    want = f.type if isinstance(f.type, type) else {"float": float, "int": int, "str": str, "bool": bool}[f.type]
    meta = f.metadata
    if want is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if want is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        if meta["choices"] and value not in meta["choices"]:
            raise ConfigError(f"{key} = {value!r} is not allowed; choose one of {', '.join(meta['choices'])}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if want is int:
        if isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{key} must be a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be finite, got {value!r}")
    lo, hi, unit = meta["lo"], meta["hi"], meta["unit"]
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{key} = {value} is out of range; allowed {lo} .. {hi} {unit}".rstrip())
    return value


#: the keys of the former ``[units]`` section -> (section, key) they are now; files that use them still load
LEGACY_UNITS_KEYS: dict[str, tuple[str, str]] = {
    "templates": ("matching", "templates"),
    "match_pre_ms": ("matching", "window_pre_ms"),
    "match_post_ms": ("matching", "window_post_ms"),
    "match_radius_um": ("matching", "radius_um"),
    "candidate_radius_um": ("matching", "candidate_radius_um"),
    "max_shift_samples": ("matching", "max_shift_samples"),
    "subtract_post_ms": ("matching", "subtract_post_ms"),
    "truncated_post_ms": ("matching", "truncated_post_ms"),
    "pair_offset_ms": ("matching", "pair_offset_ms"),
    "max_residual": ("matching", "max_residual"),
    "min_explained": ("matching", "min_explained"),
    "min_fit_explained": ("matching", "min_fit_explained"),
    "amplitude_tolerance": ("matching", "amplitude_tolerance"),
    "adapt_spikes": ("matching", "adapt_spikes"),
    "adapt_given_templates": ("matching", "adapt_given_templates"),
    "discovery": ("discovery", "enabled"),
    "discovery_max_residual": ("discovery", "max_residual"),
    "discovery_min_explained": ("discovery", "min_explained"),
    "discovery_shape_spikes": ("discovery", "shape_spikes"),
    "discovery_interval_s": ("discovery", "interval_s"),
    "discovery_min_spikes": ("discovery", "min_spikes"),
    "discovery_min_spikes_large": ("discovery", "min_spikes_large"),
    "discovery_large_snr": ("discovery", "large_snr"),
    "discovery_min_new": ("discovery", "min_new"),
    "discovery_max_snippets": ("discovery", "max_snippets"),
    "discovery_zones_per_round": ("discovery", "zones_per_round"),
    "split_units": ("discovery", "split_units"),
    "split_checks_per_round": ("discovery", "split_checks_per_round"),
    "merge_similarity": ("discovery", "merge_similarity"),
    "pca_components": ("discovery", "pca_components"),
    "acg_window_ms": ("features", "acg_window_ms"),
    "table_interval_s": ("publish", "unit_table_interval_s"),
}


def _from_legacy_units(data: dict[str, Any]) -> dict[str, Any]:
    """``[units]`` (one section for matching, discovery, features and the unit table, as configs
    written for rtclass 0.1 have it) moved to the sections of those stages: its keys are moved,
    with a warning; a key given in both places is an error."""
    if "units" not in data:
        return data
    units = data["units"]
    if not isinstance(units, dict):
        raise ConfigError(f"[units] must be a table of keys, got {units!r}")
    out = {
        name: dict(values) if isinstance(values, dict) else values for name, values in data.items() if name != "units"
    }
    for key, value in units.items():
        if key not in LEGACY_UNITS_KEYS:
            raise ConfigError(
                f"unknown key {key!r} in [units] (a section of rtclass 0.1, now split: see docs/configuration.md)"
            )
        section, new_key = LEGACY_UNITS_KEYS[key]
        target = out.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"[{section}] must be a table of keys, got {target!r}")
        if new_key in target:
            raise ConfigError(
                f"[units] {key} and [{section}] {new_key} are the same setting; keep only [{section}] {new_key}"
            )
        target[new_key] = value
    log.warning(
        "[units] is split into [matching], [discovery], [features] and [publish]: its keys were moved "
        "(see docs/configuration.md); write them in their new sections"
    )
    return out


def from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a Config from nested dicts (TOML layout); missing keys keep defaults."""
    data = _from_legacy_units(data)
    sections = _section_types()
    unknown = set(data) - set(sections)
    if unknown:
        raise ConfigError(f"unknown config section(s) {sorted(unknown)}; known sections: {', '.join(sections)}")
    cfg = Config(**{name: build_section(name, cls, data.get(name, {})) for name, cls in sections.items()})
    validate(cfg)
    return cfg


def build_section(name: str, cls: type, values: Any) -> Any:
    """One section's dataclass from a dict of its keys (validated, defaults for missing keys)."""
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table of keys, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    bad = set(values) - set(fields)
    if bad:
        raise ConfigError(f"unknown key(s) {sorted(bad)} in [{name}]; known keys: {', '.join(fields)}")
    return cls(**{k: _coerce(name, fields[k], v) for k, v in values.items()})


def validate(cfg: Config) -> None:
    """Checks that involve more than one key."""
    pre, fs = cfg.preprocess, cfg.probe.sample_rate_hz
    if pre.bandpass_low_hz >= pre.bandpass_high_hz:
        raise ConfigError(
            f"[preprocess] bandpass_low_hz ({pre.bandpass_low_hz}) must be below "
            f"bandpass_high_hz ({pre.bandpass_high_hz})"
        )
    if pre.bandpass_high_hz >= fs / 2:
        raise ConfigError(
            f"[preprocess] bandpass_high_hz ({pre.bandpass_high_hz}) must be below Nyquist "
            f"({fs / 2} Hz for [probe] sample_rate_hz = {fs})"
        )
    parse_cpu_cores(cfg.run.cpu_cores)
    det = cfg.detect
    if det.noise_warmup_ms < det.noise_update_ms:
        raise ConfigError(
            f"[detect] noise_warmup_ms ({det.noise_warmup_ms}) must be at least noise_update_ms ({det.noise_update_ms})"
        )


def shipped_config_names() -> list[str]:
    """Names of the configs shipped in the package (rtclass/configs/NAME.toml), for ``--config NAME``."""
    return sorted(p.stem for p in package_data_path("configs").glob("*.toml"))


#: where a shipped config's name is looked up when no such file exists: a bare name (``np1-lsl``,
#: ``np1-lsl.toml``) or the path the configs had in a source checkout before they became package data
#: (``configs/np1-lsl.toml``)
SHIPPED_CONFIG_ALIAS_DIRS = (Path("."), Path("configs"))


def load_config(path: str | Path | None = None) -> Config:
    """Read a TOML config: a file path or the name of a shipped config (``np1-lsl``); ``None`` gives the defaults.

    An existing file always wins over a shipped config of the same name.
    """
    if path is None:
        return Config()
    path = Path(path)
    shipped = shipped_config_names()
    shipped_list = ", ".join(shipped)
    name = path.name.removesuffix(".toml")
    if not path.is_file() and path.parent in SHIPPED_CONFIG_ALIAS_DIRS:
        if name in shipped:
            path = package_data_path("configs", f"{name}.toml")
        elif not path.suffix and not path.exists():
            raise ConfigError(f"{path} is neither a config file nor the name of a shipped config ({shipped_list})")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}; pass a TOML file or the name of a shipped config "
            f"({shipped_list})"
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        return from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


#: the generated parameter tables live between these markers in the configuration guide
TABLE_START = "<!-- parameters:start -->"
TABLE_END = "<!-- parameters:end -->"
#: the configuration guide (relative to a source checkout's root), rewritten by ``python -m rtclass.config``
PARAMETER_DOC = Path("docs") / "configuration.md"
_TABLE_HEADER = ["| key | default | unit | allowed | what it does |", "|---|---|---|---|---|"]


def _table_row(section: str, f: dataclasses.Field) -> str:
    m = f.metadata
    if m["choices"]:
        allowed = " / ".join(m["choices"])
    elif m["lo"] is not None:
        whole = isinstance(f.default, int) and not isinstance(f.default, bool)  # bounds of int keys as integers
        lo, hi = (int(m["lo"]), int(m["hi"])) if whole else (f"{m['lo']:g}", f"{m['hi']:g}")
        allowed = f"{lo} .. {hi}"
    else:
        allowed = ""
    default = str(f.default).lower() if isinstance(f.default, bool) else f.default if f.default != "" else '""'
    doc = m["doc"].replace("|", "\\|")
    return f"| `{section}.{f.name}` | `{default}` | {m['unit']} | {allowed} | {doc} |"


def parameter_table_markdown() -> str:
    """The parameter tables of docs/configuration.md, generated from the dataclass declarations:
    the everyday settings, then the advanced ones, each in section order."""
    everyday, advanced = [], []
    for name, cls in _section_types().items():
        for f in dataclasses.fields(cls):
            (advanced if f.metadata["advanced"] else everyday).append(_table_row(name, f))
    return "\n".join(
        [
            "### Everyday settings",
            "",
            *_TABLE_HEADER,
            *everyday,
            "",
            "### Advanced settings",
            "",
            "Tuning of the signal chain, unit assignment, discovery, labelling and the simulator. The defaults "
            "are the measured ones (docs/performance.md); change one when you know which behaviour you want.",
            "",
            *_TABLE_HEADER,
            *advanced,
        ]
    )


def update_parameter_doc(path: str | Path = PARAMETER_DOC) -> None:
    """Rewrite the tables between the ``parameters:start/end`` markers of ``path``."""
    path = Path(path)
    text = path.read_text()
    if text.count(TABLE_START) != 1 or text.count(TABLE_END) != 1:
        raise ConfigError(f"{path} must hold one {TABLE_START} and one {TABLE_END} marker")
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    path.write_text(f"{head}{TABLE_START}\n{parameter_table_markdown()}\n{TABLE_END}{tail}")


if __name__ == "__main__":
    import sys

    # python -m rtclass.config [FILE | -]: rewrite docs/configuration.md (or FILE); "-" prints the tables
    target = sys.argv[1] if len(sys.argv) > 1 else PARAMETER_DOC
    if target == "-":
        print(parameter_table_markdown())
    else:
        update_parameter_doc(target)
        print(f"wrote the parameter tables of {target}")
