"""Configuration: frozen dataclasses, one per TOML section, loaded and validated.

Each field is declared with :func:`param`, which carries its unit, bounds, allowed values and
doc string. That declaration is the one table of parameters: validation (:func:`validate`) and
the README's parameter table (:func:`parameter_table_markdown`, ``python -m rtclass.config``)
are both generated from it, so they cannot drift apart.

A TOML file holds any subset of the sections and keys; everything else keeps its default.
Unknown sections or keys, wrong types and out-of-range values raise :class:`ConfigError` naming
the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtclass.errors import ConfigError


def param(
    default: Any,
    doc: str,
    unit: str = "",
    lo: float | None = None,
    hi: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """Declare a configuration field with its documentation and bounds (inclusive)."""
    return field(
        default=default,
        metadata={"doc": doc, "unit": unit, "lo": lo, "hi": hi, "choices": choices},
    )


@dataclass(frozen=True)
class ProbeConfig:
    geometry: str = param(
        "np1",
        "probe geometry: `np1`, `np2`, a SpikeGLX `.meta` file or a phy folder "
        "(channel_positions.npy); a file source's own `.meta` wins over `np1`/`np2`",
    )
    n_channels: int = param(384, "channels the stream must carry (sync channel excluded)", "", 1, 4096)
    sample_rate_hz: float = param(30000.0, "sampling rate the stream must have", "Hz", 1000.0, 100000.0)


@dataclass(frozen=True)
class SourceConfig:
    chunk_ms: float = param(1.0, "chunk length read from files / pushed by replay", "ms", 0.05, 1000.0)
    speed: float = param(1.0, "file replay pace: 1 = real time, 0 = as fast as possible", "x", 0.0, 1000.0)
    resolve_timeout_s: float = param(10.0, "how long to wait for a live stream to appear", "s", 0.1, 3600.0)
    gap_tolerance_ms: float = param(
        20.0,
        "LSL: a timestamp jump larger than this between chunks counts as a gap (LSL loses no "
        "samples in transit; senders that stamp a chunk when they push it jitter by a few ms under load)",
        "ms",
        0.0,
        10000.0,
    )
    int16_uv_per_bit: float = param(
        2.34375,
        "scale of int16 LSL streams that do not declare one (NP1.0, gain 500: 2.34375)",
        "uV",
        1e-6,
        1e6,
    )
    buffer_s: float = param(10.0, "receive buffer of network sources before data is dropped", "s", 0.1, 600.0)
    lsl_loopback: bool = param(
        False,
        "keep LSL discovery and traffic on this machine (demo, tests); false on a rig that streams between machines",
    )


@dataclass(frozen=True)
class PreprocessConfig:
    bandpass_low_hz: float = param(300.0, "band-pass low cut (causal Butterworth)", "Hz", 1.0, 10000.0)
    bandpass_high_hz: float = param(6000.0, "band-pass high cut; must be below Nyquist", "Hz", 100.0, 49000.0)
    highpass_order: int = param(
        1, "Butterworth order of the high-pass edge; higher orders ring after broad spikes (echo peaks)", "", 1, 8
    )
    lowpass_order: int = param(3, "Butterworth order of the low-pass edge", "", 1, 8)
    common_reference: str = param("median", "common reference subtracted from every sample", choices=("median", "none"))


@dataclass(frozen=True)
class DetectConfig:
    threshold_sd: float = param(5.0, "detection threshold in noise standard deviations (MAD / 0.6745)", "sd", 2.0, 50.0)
    exclude_sweep_ms: float = param(
        0.2, "a peak must be the minimum within +- this time (also the added latency)", "ms", 0.0, 2.0
    )
    radius_um: float = param(50.0, "a peak must be the minimum among channels within this radius", "um", 0.0, 2000.0)
    echo_refractory_ms: float = param(
        0.0,
        "a smaller peak this soon after an accepted one nearby is an echo of it (0 = off; useful with "
        "high-pass orders >= 2, whose ringing makes second troughs)",
        "ms",
        0.0,
        20.0,
    )
    echo_radius_um: float = param(100.0, "how far from an accepted peak echoes are suppressed", "um", 0.0, 2000.0)
    echo_ratio: float = param(
        0.6, "a later peak counts as an echo if smaller than this fraction of the accepted one", "", 0.0, 1.0
    )
    noise_warmup_ms: float = param(500.0, "data used to estimate noise before detection starts", "ms", 10.0, 60000.0)
    noise_update_ms: float = param(100.0, "how often the per-channel noise level is refreshed", "ms", 1.0, 60000.0)
    noise_time_constant_s: float = param(
        10.0, "memory of the noise estimate (exponential forgetting)", "s", 0.1, 3600.0
    )
    noise_subsample: int = param(16, "every n-th sample feeds the noise estimate", "samples", 1, 1000)
    noise_bin_uv: float = param(0.5, "resolution of the per-channel |amplitude| histogram", "uV", 0.001, 100.0)
    noise_n_bins: int = param(
        256, "bins of that histogram (noise MAD beyond bins x resolution saturates)", "", 16, 65536
    )


@dataclass(frozen=True)
class UnitsConfig:
    templates: str = param(
        "", "a Kilosort/phy folder whose templates identify the units (`--templates`); empty: discover units online"
    )
    discovery: bool = param(True, "without templates, discover units online (false: publish unit -1)")
    match_pre_ms: float = param(0.33, "match window before the trough", "ms", 0.05, 2.0)
    match_post_ms: float = param(
        0.33,
        "match window after the trough (it, plus max_shift_samples, is the latency the matcher adds; 0.33 ms was as accurate as 0.67 in bench_units)",
        "ms",
        0.1,
        5.0,
    )
    match_radius_um: float = param(
        60.0, "a template covers the channels within this radius of its peak channel", "um", 0.0, 500.0
    )
    candidate_radius_um: float = param(
        80.0,
        "templates peaking within this radius of a spike's channel, and whose support (match_radius_um) holds it, compete for it",
        "um",
        0.0,
        1000.0,
    )
    max_shift_samples: int = param(2, "alignment search around the detected trough", "samples", 0, 10)
    subtract_post_ms: float = param(
        4.0,
        "each assigned spike's long template (to this long after the trough) is subtracted from the later spikes it overlaps (0 = off; 300 s simulated runs, 8 seeds, discovery: 4 ms takes a complex spike's first spikelets with it, whole-run score 0.806 at 1.33 ms -> 0.821; 6 ms: no better)",
        "ms",
        0.0,
        10.0,
    )
    truncated_post_ms: float = param(
        0.1,
        "a spike that fails its match is fitted again on its window up to this long after the trough, before most of a later overlapping spike (0 = off; bench_units, 4 seeds: 0.1 ms lifts the second-half score 0.78 -> 0.84)",
        "ms",
        0.0,
        5.0,
    )
    pair_offset_ms: float = param(
        0.2,
        "a peak no single template explains well is also fitted as two units' spikes up to this far apart; if that explains it, both are published (0 = off)",
        "ms",
        0.0,
        1.0,
    )
    max_residual: float = param(
        8.0,
        "with given templates, a match may leave at most this many times the energy noise alone would leave",
        "",
        1.0,
        100.0,
    )
    discovery_max_residual: float = param(
        5.0,
        "the same while discovering units: stricter, so that spikes of units not yet found stay unassigned",
        "",
        1.0,
        100.0,
    )
    min_explained: float = param(
        0.5,
        "with given templates, a match that removes this fraction of the snippet's energy is accepted anyway (overlaps)",
        "",
        0.0,
        1.0,
    )
    discovery_min_explained: float = param(0.9, "the same while discovering units", "", 0.0, 1.0)
    min_fit_explained: float = param(
        0.3,
        "every match must remove at least this fraction of the snippet's energy: a small spike of another unit leaves little energy whatever template it is fitted with, so the residual bound alone lets a unit absorb its small neighbours (seed 7: a 6.8-SNR unit's precision 0.67 -> 1.00 at 0.3)",
        "",
        0.0,
        1.0,
    )
    amplitude_tolerance: float = param(
        0.3,
        "a fit may differ from its unit's typical amplitude by this fraction (plus the fit's own noise)",
        "",
        0.0,
        10.0,
    )
    adapt_spikes: int = param(
        200,
        "templates follow the data: running mean over this many matched spikes (0 = fixed templates)",
        "spikes",
        0,
        1000000,
    )
    adapt_given_templates: bool = param(
        False,
        "template shapes given with --templates follow the data too (discovered ones do over their first discovery_shape_spikes spikes; amplitudes are always learnt). Off: over 300 s simulated runs, adapting shapes let 3 of 8 seeds' templates drift onto neighbours (0.81-0.94 of spikes right), fixed shapes held 0.95-0.99",
    )
    discovery_shape_spikes: int = param(
        500,
        "a discovered unit's template shape follows its first this many matched spikes (after its creation or a split), then stays; its amplitude is always learnt (300 s simulated runs, 8 seeds, whole-run discovery score: 0.789 adapting for the whole run, 0.796 with 500)",
        "spikes",
        1,
        1000000000,
    )
    discovery_interval_s: float = param(0.5, "data time between discovery rounds", "s", 0.05, 3600.0)
    discovery_min_spikes: int = param(40, "spikes a cluster needs to become a unit", "", 5, 100000)
    discovery_min_spikes_large: int = param(
        15,
        "a cluster whose trough is at least discovery_large_snr times its channel's noise needs only this many spikes (large units are found sooner)",
        "",
        5,
        100000,
    )
    discovery_large_snr: float = param(
        8.0,
        "see discovery_min_spikes_large (bench_units, 8 seeds: whole-run score 0.64 -> 0.69 at 15 spikes, SNR 8; 1000: every cluster needs discovery_min_spikes)",
        "",
        0.0,
        1000.0,
    )
    discovery_min_new: int = param(
        10,
        "new unexplained snippets that make a channel due for clustering again (once it holds discovery_min_spikes)",
        "",
        1,
        100000,
    )
    discovery_max_snippets: int = param(800, "unexplained snippets kept per channel for discovery", "", 50, 1000000)
    discovery_zones_per_round: int = param(12, "channels clustered per discovery round (bounds its cost)", "", 1, 4096)
    split_units: bool = param(
        True,
        "re-cluster each unit's recent spikes now and then and split off any other unit hidden in it (see rtclass.discovery.splitting)",
    )
    split_checks_per_round: int = param(
        1, "units whose recent spikes are clustered again per discovery round (the most overdue first)", "", 1, 4096
    )
    merge_similarity: float = param(
        0.9, "a new cluster this similar (correlation) to a known template is that unit, not a new one", "", 0.0, 1.0
    )
    pca_components: int = param(6, "features per snippet for clustering", "", 1, 64)
    acg_window_ms: int = param(100, "plain autocorrelogram kept per unit: lags 1 .. this (1 ms bins)", "ms", 10, 2000)
    table_interval_s: float = param(
        1.0, "the unit table is published at most this often (when it changed)", "s", 0.05, 3600.0
    )


@dataclass(frozen=True)
class ClassifyConfig:
    model: str = param("", "ONNX classifier; empty: the shipped default (models/rtclass-c4sim-v1); `none`: no labels")
    interval_s: float = param(2.0, "how often the live labeler relabels units (its own thread)", "s", 0.05, 3600.0)
    min_spikes: int = param(100, "units with fewer spikes stay unlabeled (C4's minimum)", "spikes", 3, 10000000)
    confidence_ratio: float = param(
        2.0, "label only if top probability / second reaches this (C4's default)", "", 1.0, 1000.0
    )
    hysteresis_ticks: int = param(2, "a label changes only after this many consecutive agreeing rounds", "", 1, 1000)


@dataclass(frozen=True)
class PublishConfig:
    zmq: bool = param(True, "publish labeled spikes on a ZMQ PUB socket (wire format v1)")
    zmq_address: str = param("tcp://127.0.0.1:5560", "where the ZMQ PUB socket binds")
    lsl: bool = param(True, "publish spikes on an LSL outlet `<source name>-spikes`")
    counts_bin_ms: float = param(
        20.0,
        "bin of the spike counts per cell type (ZMQ `counts/<type>`, LSL `<source>-counts`); 0 = off",
        "ms",
        0.0,
        10000.0,
    )


@dataclass(frozen=True)
class RunConfig:
    duration_s: float = param(0.0, "stop after this much data; 0 = until the source ends or SIGINT", "s", 0.0, 1e7)
    status_interval_s: float = param(1.0, "how often the live view and logs refresh", "s", 0.05, 3600.0)
    save_raw: bool = param(False, "also write the stream as float32 raw.bin in the output folder (phy's dat_path)")
    idle_timeout_s: float = param(
        0.0, "stop when a live source sends nothing for this long; 0 = wait for it forever", "s", 0.0, 1e7
    )


@dataclass(frozen=True)
class SimulateConfig:
    """The built-in simulated cerebellar probe (``rtclass simulate``, the demo, training sets)."""

    probe: str = param("np1", "probe type", choices=("np1", "np2"))
    duration_s: float = param(60.0, "length of the recording", "s", 0.01, 1e6)
    seed: int = param(0, "random seed: same seed, same bytes", "", 0, 2**32 - 1)
    layers: str = param(
        "ML:200,PCL:40,GCL:300,WM:150,GCL:300,PCL:40,ML:250",
        "layer stack from the top contact down the probe, `NAME:thickness_um,...`, "
        "NAME one of ML, PCL, GCL, WM (a folium crossing repeats them in reverse)",
    )
    units_per_type: int = param(
        0,
        "0: unit counts from layer thickness (a realistic probe); N: N units of every type (training sets)",
        "",
        0,
        100000,
    )
    noise_uv: float = param(
        8.0, "mean background noise per channel in 300-6000 Hz (varies +-25 % by channel)", "uV", 0.0, 1000.0
    )
    common_mode_uv: float = param(
        6.0, "noise shared by all channels in 300-6000 Hz (what CMR removes)", "uV", 0.0, 1000.0
    )
    lfp_uv: float = param(80.0, "slow common local-field component below ~10 Hz", "uV", 0.0, 10000.0)
    amplitude_scale: float = param(1.0, "multiplies every unit's amplitude (harder or easier sets)", "", 0.01, 100.0)
    parameter_spread: float = param(
        0.0,
        "widen every per-unit parameter range by this fraction (domain randomisation for training sets)",
        "",
        0.0,
        5.0,
    )
    rate_scale: float = param(1.0, "multiplies every firing rate (another preparation or species)", "", 0.05, 20.0)
    width_scale: float = param(
        1.0, "multiplies every waveform time constant (another preparation or species)", "", 0.2, 5.0
    )
    drift_um: float = param(
        0.0, "slow probe drift: units move +- this far along the probe (0 = none)", "um", 0.0, 500.0
    )
    drift_period_s: float = param(120.0, "period of that (sinusoidal) drift", "s", 1.0, 1e6)


@dataclass(frozen=True)
class Config:
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    units: UnitsConfig = field(default_factory=UnitsConfig)
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


def from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a Config from nested dicts (TOML layout); missing keys keep defaults."""
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
    det = cfg.detect
    if det.noise_warmup_ms < det.noise_update_ms:
        raise ConfigError(
            f"[detect] noise_warmup_ms ({det.noise_warmup_ms}) must be at least noise_update_ms ({det.noise_update_ms})"
        )


def load_config(path: str | Path | None = None) -> Config:
    """Read a TOML config; ``None`` gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}; check the path") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        return from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def parameter_table_markdown() -> str:
    """The parameter table of the README, generated from the dataclass declarations."""
    rows = ["| key | default | unit | allowed | meaning |", "|---|---|---|---|---|"]
    for name, cls in _section_types().items():
        for f in dataclasses.fields(cls):
            m = f.metadata
            if m["choices"]:
                allowed = " / ".join(m["choices"])
            elif m["lo"] is not None:
                allowed = f"{m['lo']:g} .. {m['hi']:g}"
            else:
                allowed = ""
            default = str(f.default).lower() if isinstance(f.default, bool) else f.default
            rows.append(f"| `{name}.{f.name}` | `{default}` | {m['unit']} | {allowed} | {m['doc']} |")
    return "\n".join(rows)


def update_readme(path: str | Path) -> None:
    """Rewrite the table between the README's ``parameters:start/end`` markers."""
    path = Path(path)
    text = path.read_text()
    head, rest = text.split("<!-- parameters:start -->\n", 1)
    _, tail = rest.split("\n<!-- parameters:end -->", 1)
    path.write_text(f"{head}<!-- parameters:start -->\n{parameter_table_markdown()}\n<!-- parameters:end -->{tail}")


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1:
        update_readme(sys.argv[1])
    else:
        print(parameter_table_markdown())
