"""One probe's live pipeline: source -> guard -> band-pass -> CMR -> detection -> publishers.

The only module that wires sources, stages and publishers together. ``Pipeline.step()``
processes one chunk; ``run()`` loops until the source ends, the duration is reached or
``stop`` is set, and ``metrics()`` reports what happened (counts, drops, per-stage timing).
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from rtclass.chunk import Chunk
from rtclass.config import Config
from rtclass.dsp.detection import ThresholdDetector
from rtclass.dsp.filtering import BandpassFilter, CommonMedianReference
from rtclass.dsp.guard import NonFiniteGuard
from rtclass.errors import ConfigError, InputError
from rtclass.ingest.base import Source, StreamInfo
from rtclass.ingest.replay import FileSource
from rtclass.metrics import StageTimes, Stopwatch
from rtclass.probe import Probe, from_spikeglx_meta, load_probe
from rtclass.publish.counts import SpikeCounter, counts_messages
from rtclass.publish.files import RawRecorder, SpikeLog, UnitOutputs
from rtclass.classify.labeler import LiveLabeler
from rtclass.classify.model import DEFAULT_MODEL, CellTypeModel
from rtclass.publish.wire import CELL_TYPE_NAMES, NO_UNIT, SPIKE_DTYPE
from rtclass.units.bank import UnitBank, warm_up_features
from rtclass.units.discovery import OnlineDiscovery
from rtclass.units.matching import ASSIGNED_DTYPE, TemplateMatcher, warm_up_matching
from rtclass.units.table import UnitTable
from rtclass.units.templates import TemplateBank, bandpassed_templates, bank_from_dense, read_phy_templates

log = logging.getLogger("rtclass.pipeline")

STAGES = ("guard", "filter", "reference", "detect", "match", "publish")  # as timed in metrics.json
#: how long one read waits for data before the loop checks stop/duration again
READ_TIMEOUT_S = 0.05
#: spike batches the live view's "active channels" looks back over
RECENT_BATCHES = 200
#: samples in the warm-up chunk that compiles/loads every kernel before the first live chunk
WARMUP_SAMPLES = 64
#: how long another thread may hold the GIL before the hot path gets it back
GIL_SWITCH_S = 0.0005
#: largest block the signal stages process at once (keeps each stage's data in cache)
BLOCK_SAMPLES = 300


class DetectionChain:
    """The signal stages of one probe, run in order on each block of samples:
    guard -> band-pass -> common median reference -> threshold detector -> template matcher
    (with online discovery when no templates were given) -> per-unit features (UnitBank).

    Large chunks are processed in blocks of at most ``BLOCK_SAMPLES`` so that every stage works
    on cache-resident data (results do not depend on the blocking: every stage is chunk
    invariant). ``times_s`` holds the time each stage spent on the last ``process`` call.
    """

    STAGES = ("guard", "filter", "reference", "detect", "match")

    def __init__(self, cfg: Config, probe: Probe, sample_rate_hz: float, bank: TemplateBank | None = None,
                 live: bool = False):
        """``live``: a live stream, where discovery clusters in a background thread (else in
        place, so that results depend on the data alone)."""
        n = probe.n_channels
        self.guard = NonFiniteGuard()
        self.filter = BandpassFilter(cfg.preprocess, n, sample_rate_hz)
        self.reference = CommonMedianReference(n) if cfg.preprocess.common_reference == "median" else None
        self.bank = bank
        self.matcher: TemplateMatcher | None = None
        self.discovery: OnlineDiscovery | None = None
        if bank is None and cfg.units.discovery:
            self.bank = bank = new_bank(cfg, probe, sample_rate_hz)
            self.discovery = OnlineDiscovery(cfg.units, bank, sample_rate_hz, threaded=live)
        sweep = int(round(cfg.detect.exclude_sweep_ms * 1e-3 * sample_rate_hz))
        self.features: UnitBank | None = None
        if bank is not None:
            self.matcher = TemplateMatcher(cfg.units, bank, sweep, sample_rate_hz, discovering=self.discovery is not None)
            if self.discovery is not None:
                self.matcher.wanted = self.discovery.wanted
        self.detector = ThresholdDetector(
            cfg.detect, probe.neighbours(cfg.detect.radius_um), probe.neighbours(cfg.detect.echo_radius_um),
            sample_rate_hz, history=self.matcher.history if self.matcher is not None else 0,
        )
        #: samples after a spike before its unit is decided (detection look-ahead + match window; the
        #: second spike of an overlapping pair can lie before its peak by the pair offset and a shift)
        self.decision_lag = self.detector.sweep + (self.matcher.post + self.matcher.max_shift + self.matcher.pair_lead
                                                   if self.matcher else 0)
        if self.matcher is not None:
            self.features = UnitBank(n, sample_rate_hz, cfg.units.acg_window_ms, bank.k, decision_lag=self.decision_lag)
        self.times_s = [0.0] * len(self.STAGES)
        self._feature_work: list[tuple[np.ndarray, np.ndarray, int]] = []  # (spikes, raw block, its first sample)

    def process(self, data: np.ndarray, first_sample: int) -> np.ndarray:
        """float32 [n, C] uV (repaired in place if non-finite) -> spikes (ASSIGNED_DTYPE) whose
        unit is decided, in sample order (but for the second spike of an overlapping pair, which
        can precede the spikes before it by up to ``matcher.pair_lead`` samples); the units'
        features are updated too."""
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
        for a in range(0, data.shape[0], BLOCK_SAMPLES):
            block = data[a : a + BLOCK_SAMPLES]
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
                spikes = self.matcher.process(det.work, det.work_first, peaks, det.noise_sd, det.noise_from)
                if self.discovery is not None:
                    if self.matcher.unassigned:
                        self.discovery.add(self.matcher.unassigned)
                        self.matcher.unassigned.clear()
                    if self.matcher.assigned:
                        self.discovery.add_assigned(self.matcher.assigned)
                        self.matcher.assigned.clear()
                    if spikes.size:
                        self.discovery.add_spikes(spikes["sample"], spikes["unit"])
                    self.discovery.maybe_run(first_sample + a + block.shape[0], det.noise_sd)
                self._feature_work.append((spikes, block, first_sample + a))
            t5 = clock()
            t_guard += t1 - t0
            t_filter += t2 - t1
            t_reference += t3 - t2
            t_detect += t4 - t3
            t_match += t5 - t4
            found.append(spikes)
        self.times_s = [t_guard, t_filter, t_reference, t_detect, t_match]
        return found[0] if len(found) == 1 else np.concatenate(found)

    def update_features(self) -> None:
        """Feed the spikes decided since the last call (and their raw blocks) to the UnitBank."""
        t0 = time.perf_counter()
        for spikes, block, first in self._feature_work:
            self.features.update(spikes["sample"], spikes["unit"], self.bank.channels_for, block, first)
        self._feature_work.clear()
        self.times_s[4] += time.perf_counter() - t0


def new_bank(cfg: Config, probe: Probe, sample_rate_hz: float) -> TemplateBank:
    u = cfg.units
    pre = int(round(u.match_pre_ms * 1e-3 * sample_rate_hz))
    width = pre + int(round(u.match_post_ms * 1e-3 * sample_rate_hz))
    long_post = int(round(u.subtract_post_ms * 1e-3 * sample_rate_hz))
    return TemplateBank(probe, width, pre, u.match_radius_um, u.candidate_radius_um, long_post)


def bank_from_templates(cfg: Config, probe: Probe, sample_rate_hz: float, templates: np.ndarray,
                        unit_ids: np.ndarray, in_uv: bool) -> TemplateBank:
    """A bank of known templates ``[U, T, C]`` (raw or zero-phase filtered), passed through
    this pipeline's causal band-pass so their shapes match the filtered stream. ``in_uv``: the
    templates are in uV (a simulator's), else their scale is arbitrary (Kilosort's) and each
    unit's amplitude is learnt from its first matches."""
    bank = new_bank(cfg, probe, sample_rate_hz)
    sos = BandpassFilter(cfg.preprocess, 1, sample_rate_hz).sos
    bank_from_dense(bank, bandpassed_templates(templates, sos), unit_ids, templates.shape[1] // 2,
                    weight=cfg.units.adapt_spikes, in_uv=in_uv)
    return bank


class Publisher(Protocol):
    def publish(self, spikes: np.ndarray) -> None: ...

    def close(self) -> None: ...


@dataclass
class Status:
    """What the live view shows, refreshed every status interval."""

    data_s: float = 0.0
    wall_s: float = 0.0
    spikes: int = 0
    spikes_per_s: float = 0.0
    active_channels: int = 0
    chunk_p50_us: float = 0.0
    chunk_p99_us: float = 0.0
    realtime_factor: float = 0.0
    samples_dropped: int = 0
    gaps: int = 0
    malformed: int = 0
    detecting: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Pipeline:
    def __init__(self, cfg: Config, source: Source, publishers: list[Publisher] | None = None, probe: Probe | None = None,
                 bank: TemplateBank | None = None):
        """``bank``: known templates (else ``[units] templates`` names a phy folder to load, or
        units are discovered online)."""
        self.cfg = cfg
        self.source = source
        self.publishers = list(publishers or [])
        self._probe = probe
        self._bank = bank
        self.live = True  # set False for reproducible runs (discovery in place)
        self.table: UnitTable | None = None
        self.raw: RawRecorder | None = None  # set by run_live with --save-raw
        self._table_sent = (-1, -1)
        self._table_due = 0.0
        self.log = SpikeLog()
        self.info: StreamInfo | None = None
        self.times = StageTimes(STAGES)
        self._samples = 0
        self._first_sample: int | None = None
        self._t_start = 0.0

    # -------------------------------------------------------------------------------- set-up
    def open(self) -> StreamInfo:
        """Connect the source, check the stream against the config, build and warm the stages."""
        info = self.source.open()
        cfg = self.cfg
        if info.n_channels != cfg.probe.n_channels:
            raise InputError(
                f"the source has {info.n_channels} channels but [probe] n_channels = {cfg.probe.n_channels}; "
                "make them agree"
            )
        if info.sample_rate_hz != cfg.probe.sample_rate_hz:
            log.info("source runs at %g Hz (config said %g Hz); using the source's rate", info.sample_rate_hz, cfg.probe.sample_rate_hz)
        self.info = info
        if self._probe is None:
            if info.meta_path is not None and cfg.probe.geometry in ("np1", "np2"):
                self._probe = from_spikeglx_meta(info.meta_path)
            else:
                self._probe = load_probe(cfg.probe.geometry, info.n_channels)
        if self._probe.n_channels != info.n_channels:
            raise InputError(
                f"probe geometry has {self._probe.n_channels} channels, the stream {info.n_channels}"
            )
        bank = self._bank
        if bank is None and cfg.units.templates:
            dense, ids = read_phy_templates(cfg.units.templates, info.n_channels)
            bank = bank_from_templates(cfg, self._probe, info.sample_rate_hz, dense, ids, in_uv=False)
            log.info("loaded %d templates of %d units from %s", bank.n, np.unique(ids).size, cfg.units.templates)
        live = not isinstance(self.source, FileSource) or cfg.source.speed > 0
        self.chain = DetectionChain(cfg, self._probe, info.sample_rate_hz, bank, live=live and self.live)
        self.labeler = self._make_labeler()
        bin_samples = int(round(cfg.publish.counts_bin_ms * 1e-3 * info.sample_rate_hz))
        self.counter = SpikeCounter(bin_samples, self.chain.decision_lag) if bin_samples > 0 else None
        if self.chain.bank is not None:
            self.table = UnitTable(self.chain.bank, info.sample_rate_hz, self.labeler)
        self._warm_up(info)
        return info

    def _make_labeler(self) -> LiveLabeler | None:
        """The live labeler, if the config names a model (or the shipped default exists)."""
        c = self.cfg.classify
        if c.model == "none" or self.chain.features is None:
            return None
        if not c.model and not DEFAULT_MODEL.exists():
            log.warning("no classifier model at %s: units stay unlabeled ([classify] model)", DEFAULT_MODEL)
            return None
        model = CellTypeModel(c.model or DEFAULT_MODEL)
        labeler = LiveLabeler(c, model, self.chain.features)
        labeler.now_s = lambda: self._samples / self.info.sample_rate_hz
        return labeler

    def _warm_up(self, info: StreamInfo) -> None:
        """Run a throw-away chain once so every kernel is compiled (or loaded from numba's
        cache) before the first live chunk arrives."""
        DetectionChain(self.cfg, self.probe, info.sample_rate_hz).process(
            np.zeros((WARMUP_SAMPLES, info.n_channels), np.float32), 0
        )
        warm_up_matching()
        if self.chain.features is not None:
            warm_up_features()
        if self.labeler is not None:
            self.labeler.warm_up()

    @property
    def detector(self) -> ThresholdDetector:
        return self.chain.detector

    @property
    def samples_processed(self) -> int:
        return self._samples

    @property
    def probe(self) -> Probe:
        assert self._probe is not None
        return self._probe

    # -------------------------------------------------------------------------------- running
    def process(self, chunk: Chunk) -> np.ndarray:
        """Run one chunk through every stage and the publishers; returns the published spikes."""
        if self._first_sample is None:
            self._first_sample = chunk.first_sample
            self._t_start = time.perf_counter()
        found = self.chain.decide(chunk.data, chunk.first_sample)
        watch = Stopwatch()
        spikes = np.zeros(found.size, SPIKE_DTYPE)
        try:
            if found.size:
                fs = self.info.sample_rate_hz
                spikes["sample"] = found["sample"]
                spikes["unit"] = found["unit"]
                spikes["channel"] = found["channel"]
                spikes["t_source"] = chunk.t_last - (chunk.end_sample - 1 - found["sample"]) / fs
                if self.labeler is not None:
                    spikes["cell_type"], spikes["confidence"] = self.labeler.label_of(found["unit"])
                for pub in self.publishers:
                    pub.publish(spikes)
        finally:  # the decided spikes feed the features even if a publisher failed
            t_pub = watch.lap()
            self.chain.update_features()
        # off the latency path: files, unit table, counts
        if self.raw is not None:
            self.raw.write(chunk.data, chunk.first_sample, chunk.gap_before)
        watch.lap()
        if found.size:
            self.log.append(spikes, found["amplitude"])
            if self.table is not None:
                self.table.update(found)
        if self.table is not None:
            self._publish_table(chunk.end_sample)
        if self.counter is not None:
            self._publish_counts(spikes, chunk)
        t_pub += watch.lap()
        self.times.record([*self.chain.times_s, t_pub], chunk.n_samples / self.info.sample_rate_hz)
        self._samples += chunk.n_samples
        return spikes

    def _publish_counts(self, spikes: np.ndarray, chunk: Chunk) -> None:
        starts, counts = self.counter.process(spikes["sample"], spikes["cell_type"].astype(np.int64), chunk.end_sample)
        if starts.size == 0:
            return
        fs = self.info.sample_rate_hz
        t_ends = chunk.t_last - (chunk.end_sample - 1 - (starts + self.counter.bin)) / fs
        for pub in self.publishers:
            if hasattr(pub, "publish_counts"):
                pub.publish_counts(counts_messages(starts, counts, self.counter.bin))
            if hasattr(pub, "publish_counts_array"):
                pub.publish_counts_array(counts, t_ends)

    def _publish_table(self, now_sample: int) -> None:
        """Send the unit table when units appeared, were merged or relabelled, at most every
        ``table_interval_s``."""
        bank = self.chain.bank
        state = (bank.n, len(bank.merged_into), self.table.version, self.labeler.version if self.labeler else 0)
        now = time.monotonic()
        if state == self._table_sent or now < self._table_due:
            return
        payload = self.table.to_json(now_sample)
        for pub in self.publishers:
            send = getattr(pub, "publish_units", None)
            if send is not None:
                send(payload)
        self._table_sent, self._table_due = state, now + self.cfg.units.table_interval_s

    def run(
        self,
        stop: threading.Event | None = None,
        duration_s: float | None = None,
        on_status: Callable[[Status], None] | None = None,
    ) -> None:
        """Process chunks until the source is finished, ``duration_s`` of data has been
        processed (default: ``[run] duration_s``, 0 = no limit), the source stays quiet for
        ``[run] idle_timeout_s`` or ``stop`` is set. The labeler runs in its own thread meanwhile."""
        stop = stop or threading.Event()
        duration_s = self.cfg.run.duration_s if duration_s is None else duration_s
        fs = self.info.sample_rate_hz
        limit = int(duration_s * fs) if duration_s > 0 else None  # samples of stream time
        idle = self.cfg.run.idle_timeout_s
        interval = self.cfg.run.status_interval_s
        next_status = time.monotonic() + interval
        last_spikes, last_t = 0, time.monotonic()
        last_data = time.monotonic()
        # with the labeler and discovery threads running, hand the GIL back to the hot path
        # within 0.5 ms instead of Python's default 5 ms
        switch = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_S)
        try:
            # what exists now (modules, compiled kernels, the stages) lives as long as the run:
            # keep it out of the cyclic collector's full passes, which took ~80 ms each (80 chunks
            # of stall) every few tens of seconds; frozen, the passes see only the run's own
            # objects. (Process-wide: runs in parallel threads of one process unfreeze each other.)
            gc.collect()
            gc.freeze()
            if self.labeler is not None:
                self.labeler.start()
            while not stop.is_set() and not self.source.finished:
                chunk = self.source.read(READ_TIMEOUT_S)
                now = time.monotonic()
                if chunk is not None:
                    last_data = now
                    start = chunk.first_sample if self._first_sample is None else self._first_sample
                    if limit is not None and chunk.end_sample - start >= limit:
                        keep = limit - (chunk.first_sample - start)
                        if keep > 0:
                            t_last = chunk.t_last - (chunk.n_samples - keep) / fs
                            self.process(Chunk(chunk.data[:keep], chunk.first_sample, t_last, chunk.gap_before))
                        break
                    self.process(chunk)
                elif idle > 0 and now - last_data > idle:
                    log.warning("no data for %.1f s: stopping ([run] idle_timeout_s)", idle)
                    break
                if on_status is not None and now >= next_status:
                    n = len(self.log)
                    on_status(self.status(spikes_per_s=(n - last_spikes) / (now - last_t)))
                    last_spikes, last_t, next_status = n, now, now + interval
        finally:
            sys.setswitchinterval(switch)
            gc.unfreeze()
            if self.labeler is not None:
                self.labeler.stop()

    # -------------------------------------------------------------------------------- reporting
    def status(self, spikes_per_s: float = 0.0) -> Status:
        stats = self.source.stats
        recent = self.times.recent_total_us(1000)
        fs = self.info.sample_rate_hz
        busy = self.times.total_s[-1]
        chans = self.log.recent_channels(RECENT_BATCHES).size
        return Status(
            data_s=self._samples / fs,
            wall_s=time.perf_counter() - self._t_start if self._first_sample is not None else 0.0,
            spikes=len(self.log),
            spikes_per_s=spikes_per_s,
            active_channels=chans,
            chunk_p50_us=float(np.percentile(recent, 50)) if recent.size else 0.0,
            chunk_p99_us=float(np.percentile(recent, 99)) if recent.size else 0.0,
            realtime_factor=(self._samples / fs) / busy if busy > 0 else 0.0,
            samples_dropped=stats.samples_dropped,
            gaps=stats.gaps,
            malformed=stats.malformed,
            detecting=self.detector.ready,
        )

    def metrics(self) -> dict[str, Any]:
        fs = self.info.sample_rate_hz
        busy = float(self.times.total_s[-1])
        data_s = self._samples / fs
        return {
            **self.source.stats.as_dict(),
            "samples_processed": self._samples,
            "nonfinite_values": self.chain.guard.repaired,
            "spikes": len(self.log),
            "data_s": data_s,
            "processing_s": busy,
            "realtime_factor": data_s / busy if busy > 0 else None,
            "chunks_over_budget": self.times.over_budget,
            "stage_time_per_chunk": self.times.summary(),
            "units": self.chain.bank.n if self.chain.bank is not None else 0,
            "labels": self._label_summary(),
            "discovery": self._discovery_summary(),
            "n_channels": self.info.n_channels,
            "sample_rate_hz": fs,
        }

    def unit_outputs(self) -> UnitOutputs | None:
        """Templates (uV) and labels of the units, for the output files."""
        bank = self.chain.bank
        if bank is None or bank.n == 0:
            return None
        templates = bank.waves[: bank.n].transpose(0, 2, 1) * bank.amp[: bank.n, None, None]  # [U, W, C]
        labels = {}
        lab = self.labeler
        if lab is not None:
            for u in np.unique(bank.ids[: bank.n]).tolist():
                code, _ = lab.label_of(np.array([u]))
                probs = lab.probabilities.get(u)
                if probs:
                    p = np.sort(probs)
                    labels[u] = (CELL_TYPE_NAMES[int(code[0])], float(p[-1]), float(p[-1] / max(p[-2], 1e-12)))
        return UnitOutputs(bank.ids[: bank.n].copy(), templates.astype(np.float32), self.probe.positions_um, labels)

    def _discovery_summary(self) -> dict[str, Any] | None:
        d = self.chain.discovery
        if d is None:
            return None
        return {"rounds": d.rounds, "units_found": d.promoted, "units_split_off": d.splits, "units_merged": d.merges,
                "failed_rounds": d.failed_rounds,
                "last_error": d.last_error}

    def _label_summary(self) -> dict[str, Any]:
        if self.labeler is None:
            return {"model": None}
        codes = self.labeler.codes
        return {
            "model": str(self.labeler.model.path),
            "ticks": self.labeler.ticks,
            "last_tick_ms": self.labeler.last_tick_s * 1e3,
            "units_by_type": {CELL_TYPE_NAMES[c]: int((codes == c).sum()) for c in range(1, len(CELL_TYPE_NAMES))},
        }

    def close(self) -> None:
        if getattr(self, "chain", None) is not None and self.chain.discovery is not None:
            self.chain.discovery.close()
        for pub in self.publishers:
            pub.close()
        self.source.close()


def make_publishers(cfg: Config, stream_name: str, zmq_address: str | None = None) -> list[Publisher]:
    """The live outputs the config asks for (ZMQ PUB, LSL outlet). Ports are bound now, so a
    busy port fails before the run starts."""
    pubs: list[Publisher] = []
    if cfg.publish.zmq:
        from rtclass.publish.zmq_pub import ZmqSpikePublisher

        pubs.append(ZmqSpikePublisher(zmq_address or cfg.publish.zmq_address))
    if cfg.publish.lsl:
        from rtclass.publish.lsl_pub import LslCountsOutlet, LslSpikeOutlet

        pubs.append(LslSpikeOutlet(stream_name))
        if cfg.publish.counts_bin_ms > 0:
            pubs.append(LslCountsOutlet(stream_name, cfg.publish.counts_bin_ms / 1000))
    return pubs


def run_live(
    cfg: Config,
    source_spec: str,
    out_dir: str | None,
    stop: threading.Event | None = None,
    on_status: Callable[[Status], None] | None = None,
) -> dict[str, Any]:
    """``rtclass run``: source -> pipeline -> publishers until the end; then the output files."""
    from rtclass.ingest import make_source
    from rtclass.publish.files import prepare_output_dir, write_run_output

    if out_dir is not None:
        prepare_output_dir(out_dir)
    elif cfg.run.save_raw:
        raise ConfigError("[run] save_raw needs an output folder (--out)")
    if source_spec.startswith("lsl:") and cfg.source.lsl_loopback:
        from rtclass.ingest.lsl import use_loopback_only

        use_loopback_only()
    source = make_source(source_spec, cfg)
    pipe = Pipeline(cfg, source)
    info = pipe.open()
    if cfg.run.save_raw:
        pipe.raw = RawRecorder(out_dir)
    try:
        pipe.publishers = make_publishers(cfg, info.name)
        pipe.run(stop, on_status=on_status)
    finally:
        pipe.close()
        if pipe.raw is not None:
            pipe.raw.close()
    metrics = pipe.metrics()
    if out_dir is not None:
        write_run_output(out_dir, pipe.log, info, metrics, pipe.unit_outputs(), pipe.raw)
    return metrics
