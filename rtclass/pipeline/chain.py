"""The signal chain of one probe: guard -> band-pass -> common median reference -> threshold
detector -> template matcher (with online discovery when no templates were given) -> per-unit
features. No I/O: ``rtclass.pipeline.live`` feeds it chunks and publishes what it decides."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from rtclass.config import Config
from rtclass.discovery.online import OnlineDiscovery
from rtclass.dsp.detection import ThresholdDetector
from rtclass.dsp.filtering import BandpassFilter, CommonMedianReference
from rtclass.dsp.guard import NonFiniteGuard
from rtclass.features.spike_quality import SpikeQualityFilter
from rtclass.features.unit_features import UnitFeatures
from rtclass.matching.matcher import ASSIGNED_DTYPE, MatchResult, TemplateMatcher
from rtclass.matching.templates import TemplateBank, bandpassed_templates, bank_from_dense
from rtclass.probe import Probe
from rtclass.publish.wire import NO_UNIT
from rtclass.stage import Stage, ms_to_samples

#: largest block the signal stages process at once (keeps each stage's data in cache)
BLOCK_SAMPLES = 300


class DetectionChain:
    """The signal stages of one probe, run in order on each block of samples:
    guard -> band-pass -> common median reference -> threshold detector -> template matcher
    (with online discovery when no templates were given) -> per-unit features (UnitFeatures).

    Large chunks are processed in blocks of at most ``BLOCK_SAMPLES`` so that every stage works
    on cache-resident data (results do not depend on the blocking: every stage is chunk
    invariant). ``times_s`` holds the time each stage spent on the last ``process`` call.
    """

    STAGES = ("guard", "filter", "reference", "detect", "match")

    def __init__(
        self, cfg: Config, probe: Probe, sample_rate_hz: float, bank: TemplateBank | None = None, live: bool = False
    ):
        """``live``: a live stream, where discovery clusters in a background thread (else in
        place, so that results depend on the data alone)."""
        n = probe.n_channels
        self.guard = NonFiniteGuard()
        self.filter = BandpassFilter(cfg.preprocess, n, sample_rate_hz)
        self.reference = CommonMedianReference(n) if cfg.preprocess.common_reference == "median" else None
        self.bank = bank
        self.matcher: TemplateMatcher | None = None
        self.discovery: OnlineDiscovery | None = None
        if bank is None and cfg.discovery.enabled:
            self.bank = bank = new_bank(cfg, probe, sample_rate_hz)
            self.discovery = OnlineDiscovery(cfg.discovery, cfg.matching, bank, sample_rate_hz, threaded=live)
        sweep = ms_to_samples(cfg.detect.exclude_sweep_ms, sample_rate_hz)
        self.features: UnitFeatures | None = None
        #: C4's spike filter, fed with the features (``classify.spike_filter = c4``)
        self.spike_quality: SpikeQualityFilter | None = None
        if bank is not None:
            self.matcher = TemplateMatcher(
                cfg.matching,
                bank,
                sweep,
                sample_rate_hz,
                discovery=cfg.discovery if self.discovery is not None else None,
            )
        self.detector = ThresholdDetector(
            cfg.detect,
            probe.neighbours(cfg.detect.radius_um),
            probe.neighbours(cfg.detect.echo_radius_um),
            sample_rate_hz,
            history=self.matcher.history if self.matcher is not None else 0,
        )
        #: samples after a spike before its unit is decided: the stages' decision latencies added
        #: up along the path (detection look-ahead, then the match window with its shifts and the
        #: lead of an overlapping pair's second spike)
        self.decision_lag = sum(stage.decision_latency_samples for stage in self.stages)
        if self.matcher is not None:
            self.features = UnitFeatures(
                n, sample_rate_hz, cfg.features.acg_window_ms, bank.k, decision_lag=self.decision_lag
            )
            c = cfg.classify
            if c.spike_filter == "c4":
                self.spike_quality = SpikeQualityFilter(
                    sample_rate_hz,
                    c.spike_filter_fp_max,
                    c.spike_filter_fn_max,
                    c.spike_filter_min_good_s,
                    decision_lag_samples=self.decision_lag,  # (it includes a pair's lead)
                )
        #: (sample, channel) keys of weak peaks (below ``threshold_sd``) not decided yet: one the
        #: matcher leaves unassigned is dropped (``_drop_weak_unassigned``)
        self._weak_keys = np.zeros(0, np.int64)
        self._template_channels()
        self.times_s = [0.0] * len(self.STAGES)
        self._feature_work: list[tuple[np.ndarray, np.ndarray, int]] = []  # (spikes, raw block, its first sample)

    @property
    def stages(self) -> list[Stage]:
        """The signal stages in order (those this chain runs)."""
        found = [self.guard, self.filter, self.reference, self.detector, self.matcher, self.discovery]
        return [s for s in found if s is not None]

    @property
    def lookback_samples(self) -> int:
        """Past samples the chain keeps (the detector's buffer holds the most any stage needs)."""
        return max(stage.lookback_samples for stage in self.stages)

    def process(self, data: np.ndarray, first_sample: int) -> np.ndarray:
        """float32 [n, C] uV (repaired in place if non-finite) -> spikes (ASSIGNED_DTYPE) whose
        unit is decided, in sample order (but for the second spike of an overlapping pair, which
        can precede the spikes before it by up to ``matcher.pair_lead`` samples, and a spike held
        for a late decision, which comes after the spikes decided meanwhile); the units' features
        are updated too."""
        spikes = self.decide(data, first_sample)
        self.update_features()
        return spikes

    def decide(self, data: np.ndarray, first_sample: int) -> np.ndarray:
        """The signal stages and unit assignment only: the decided spikes' features wait for
        ``update_features`` (a live pipeline publishes the spikes first: that is the latency a
        subscriber sees). ``data`` must stay unchanged until then."""
        clock = time.perf_counter  # stage times: plain clock reads (a lap object costs ~0.5 us a call)
        t_guard = t_filter = t_reference = t_detect = t_match = 0.0
        found = []
        for a, b in self._blocks(data.shape[0], first_sample):
            block = data[a:b]
            t0 = clock()
            self.guard.process(block)
            t1 = clock()
            y = self.filter.process(block, out=self.detector.intake(block.shape[0]))  # into the detector's buffer
            t2 = clock()
            if self.reference is not None:
                self.reference.process(y)
            t3 = clock()
            peaks = self.detector.process(y, first_sample + a)
            t4 = clock()
            if self.matcher is None:
                spikes = np.zeros(peaks.size, ASSIGNED_DTYPE)
                spikes["sample"], spikes["channel"], spikes["unit"] = peaks["sample"], peaks["channel"], NO_UNIT
                spikes["amplitude"] = -peaks["amplitude"]
            else:
                det = self.detector
                disc = self.discovery
                match = self.matcher.process(
                    det.work,
                    det.work_first,
                    peaks,
                    det.noise_sd,
                    det.noise_from,
                    disc.wanted if disc is not None else None,
                )
                if peaks.size and not peaks["strong"].all():
                    weak = peaks[~peaks["strong"]]
                    self._weak_keys = np.concatenate([self._weak_keys, _peak_keys(weak["sample"], weak["channel"])])
                if self._weak_keys.size:
                    match = self._drop_weak_unassigned(match)
                spikes = match.spikes
                if disc is not None:
                    found_units = disc.process(match, first_sample + a + block.shape[0], det.noise_sd)
                    if found_units.new_unit_ids or disc.merges != self._merges_seen:
                        self._template_channels()
                self._feature_work.append((spikes, block, first_sample + a))
            t5 = clock()
            t_guard += t1 - t0
            t_filter += t2 - t1
            t_reference += t3 - t2
            t_detect += t4 - t3
            t_match += t5 - t4
            found.append(spikes)
        self.times_s = [t_guard, t_filter, t_reference, t_detect, t_match]
        if not found:  # an empty chunk (a valid no-op)
            return np.zeros(0, ASSIGNED_DTYPE)
        return found[0] if len(found) == 1 else np.concatenate(found)

    def _template_channels(self) -> None:
        """The detector's lower threshold goes on the peak channels of the active units."""
        bank = self.bank
        if bank is None:
            return
        active = bank.active[: bank.n]
        self.detector.use_template_channels(bank.peak_channel[: bank.n][active])
        self._merges_seen = self.discovery.merges if self.discovery is not None else 0

    def _drop_weak_unassigned(self, match: MatchResult) -> MatchResult:
        """A weak peak (below ``threshold_sd``, found on a known unit's channel) counts only if the
        matcher gave it to a unit: left unassigned it is noise, neither published nor given to
        discovery. Keys of peaks now decided are forgotten."""
        spikes = match.spikes
        if spikes.size == 0:
            return match
        keys = _peak_keys(spikes["sample"], spikes["channel"])
        weak = np.isin(keys, self._weak_keys)
        # every peak up to the newest decided one, less the lead of a pair's second spike, is decided
        decided_to = int(spikes["sample"].max()) - self.matcher.pair_lead
        self._weak_keys = self._weak_keys[(self._weak_keys >> CHANNEL_BITS) > decided_to]
        drop = weak & (spikes["unit"] < 0)
        if not drop.any():
            return match
        dropped = set(zip(spikes["sample"][drop].tolist(), spikes["channel"][drop].tolist()))
        return replace(
            match,
            spikes=spikes[~drop],
            unexplained=[u for u in match.unexplained if (u[0], u[1]) not in dropped],
        )

    def _blocks(self, n_samples: int, first_sample: int):
        """(start, end) of the blocks a chunk is processed in: at most ``BLOCK_SAMPLES`` each,
        and cut where a discovery round is due, so that every round runs on the spikes decided
        from the data up to its sample, whatever the chunking."""
        a = 0
        while a < n_samples:
            b = min(n_samples, a + BLOCK_SAMPLES)
            if self.discovery is not None:
                due = self.discovery.next_round_sample(first_sample + a) - first_sample
                if a < due < b:
                    b = due
            yield a, b
            a = b

    def update_features(self) -> None:
        """Feed the spikes decided since the last call (and their raw blocks) to the UnitFeatures."""
        t0 = time.perf_counter()
        for spikes, block, first in self._feature_work:
            self.features.process(spikes, self.bank.channels_for, block, first)
            if self.spike_quality is not None:
                self.spike_quality.process(spikes, first + block.shape[0])
        self._feature_work.clear()
        self.times_s[4] += time.perf_counter() - t0


#: a peak's key: its sample shifted left by this many bits, plus its channel
CHANNEL_BITS = 16


def _peak_keys(samples: np.ndarray, channels: np.ndarray) -> np.ndarray:
    return (samples.astype(np.int64) << CHANNEL_BITS) | channels.astype(np.int64)


def new_bank(cfg: Config, probe: Probe, sample_rate_hz: float) -> TemplateBank:
    u = cfg.matching
    pre = ms_to_samples(u.window_pre_ms, sample_rate_hz)
    width = pre + ms_to_samples(u.window_post_ms, sample_rate_hz)
    long_post = ms_to_samples(u.subtract_post_ms, sample_rate_hz)
    return TemplateBank(probe, width, pre, u.radius_um, u.candidate_radius_um, long_post)


def bank_from_templates(
    cfg: Config,
    probe: Probe,
    sample_rate_hz: float,
    templates: np.ndarray,
    unit_ids: np.ndarray,
    in_uv: bool,
    prior_spikes: np.ndarray | None = None,
) -> TemplateBank:
    """A bank of known templates ``[U, T, C]`` (raw or zero-phase filtered), passed through
    this pipeline's causal band-pass so their shapes match the filtered stream. ``in_uv``: the
    templates are in uV (a simulator's), else their scale is arbitrary (Kilosort's) and each
    unit's amplitude is learnt from its first matches. ``prior_spikes``: each template's spike
    count in a prior sort, the matcher's rate prior from the first spike (see ``bank_from_dense``)."""
    bank = new_bank(cfg, probe, sample_rate_hz)
    sos = BandpassFilter(cfg.preprocess, 1, sample_rate_hz).sos
    bank_from_dense(
        bank,
        bandpassed_templates(templates, sos),
        unit_ids,
        templates.shape[1] // 2,
        weight=cfg.matching.adapt_spikes,
        in_uv=in_uv,
        prior_spikes=prior_spikes,
    )
    return bank
