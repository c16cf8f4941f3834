"""One probe's live pipeline: source -> guard -> band-pass -> CMR -> detection -> publishers.

The only module that wires sources, stages and publishers together. ``Pipeline.step()``
processes one chunk; ``run()`` loops until the source ends, the duration is reached or
``stop`` is set, and ``metrics()`` reports what happened (counts, drops, per-stage timing).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from rtclass.classify.labeler import LiveLabeler
from rtclass.classify.layers import layer_at, parse_layer_ranges
from rtclass.classify.model import default_model, describe_classifier, load_classifier
from rtclass.config import Config
from rtclass.dsp.detection import ThresholdDetector
from rtclass.errors import ConfigError, InputError
from rtclass.features.unit_features import warm_up_unit_features
from rtclass.ingest.base import Source, StreamInfo
from rtclass.ingest.chunk import Chunk
from rtclass.ingest.replay import FileSource
from rtclass.matching.matcher import warm_up_matching
from rtclass.matching.templates import TemplateBank, read_phy_spike_counts, read_phy_templates
from rtclass.pipeline.chain import DetectionChain, bank_from_templates
from rtclass.pipeline.scheduling import Scheduling, apply_scheduling, restore_scheduling
from rtclass.pipeline.stage_times import PublishLag, StageTimes, Stopwatch
from rtclass.probe import Probe, from_spikeglx_meta, load_probe, neuropixels
from rtclass.publish.counts import SpikeCounter, counts_messages
from rtclass.publish.files import RECENT_BATCHES_KEPT, RawRecorder, SpikeLog, UnitOutputs
from rtclass.publish.publisher import Publisher
from rtclass.publish.unit_table import UnitTable
from rtclass.publish.wire import CELL_TYPE_NAMES, FEATURES_DTYPE, SPIKE_DTYPE
from rtclass.stage import ms_to_samples

log = logging.getLogger("rtclass.pipeline.live")

STAGES = ("guard", "filter", "reference", "detect", "match", "publish")  # as timed in metrics.json
#: how long one read waits for data before the loop checks stop/duration again
READ_TIMEOUT_S = 0.05
#: samples in the warm-up chunk that compiles/loads every kernel before the first live chunk
WARMUP_SAMPLES = 64
#: a kernel warm-up slower than this is compiling, not loading from the cache: the user is told
COMPILE_NOTICE_AFTER_S = 1.0
#: how long a live source may send nothing before the status says it is waiting for it
WAITING_AFTER_S = 1.0
#: how long another thread may hold the GIL before the hot path gets it back
GIL_SWITCH_S = 0.0005


def compile_kernels(
    cfg: Config, probe: Probe, sample_rate_hz: float, announce: Callable[[str], None] | None = None
) -> float:
    """Compile (or load from Numba's cache) every kernel of the live path, by running a throw-away
    chain on a few samples; returns the seconds it took. Loading from the cache takes about a
    second; compiling, on a first start (or after an upgrade), a minute or more: when it is not
    done after ``COMPILE_NOTICE_AFTER_S``, ``announce`` is told that it is compiling, and then how
    long it took."""
    announce = announce or _announce_on_stderr
    t0 = time.monotonic()
    done = threading.Event()

    def notice() -> None:
        if not done.wait(COMPILE_NOTICE_AFTER_S):
            announce("compiling the signal kernels (first start only: later starts load them from the cache) ...")

    watcher = threading.Thread(target=notice, name="rtclass-compile-notice", daemon=True)
    watcher.start()
    try:
        DetectionChain(cfg, probe, sample_rate_hz).process(np.zeros((WARMUP_SAMPLES, probe.n_channels), np.float32), 0)
        warm_up_matching()
        warm_up_unit_features()
    finally:
        done.set()
        watcher.join()
    took_s = time.monotonic() - t0
    if took_s > COMPILE_NOTICE_AFTER_S:
        announce(f"kernels ready in {took_s:.1f} s")
    return took_s


def _announce_on_stderr(message: str) -> None:
    print(f"rtclass: {message}", file=sys.stderr, flush=True)


#: the unit table state before anything was published
NOTHING_SENT = (-1, -1)


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
    #: malformed messages by kind (``SourceStats.malformed_by_kind``: magic, header, size, late, ...)
    malformed_by_kind: dict[str, int] = field(default_factory=dict)
    restarts: int = 0
    stalls: int = 0
    detecting: bool = False
    #: units in the bank, discovery rounds run and skipped (due while the last was still clustering)
    units: int = 0
    discovery_rounds: int = 0
    discovery_skipped: int = 0
    discovery_failed: int = 0
    #: the source's name, and how long it has sent nothing (0 while data flows)
    source_name: str = ""
    waiting_s: float = 0.0
    #: spike -> publish lag (the decision's wait for data plus the processing, from the chunk's arrival)
    publish_lag_p50_ms: float = 0.0
    publish_lag_p99_ms: float = 0.0
    #: the labeller: which classifier ("" without one), rounds run, the last round's time, units labelled
    classifier: str = ""
    labeller_rounds: int = 0
    labeller_round_ms: float = 0.0
    labelled_units: int = 0
    #: labelling rounds late (more than 2 intervals after the last: the cores were busy) or failed
    labeller_late: int = 0
    labeller_failed: int = 0
    #: C4's spike filter: units it leaves unlabeled (too few good spikes), units whose 3D-ACG
    #: leaves out spikes it judged bad, and how many spikes those leave out
    spike_filter_withheld_units: int = 0
    spike_filter_filtered_units: int = 0
    spike_filter_spikes_left_out: int = 0
    #: messages published per ZMQ topic: a subscriber that counts what it received of a topic
    #: knows how many it missed (ZMQ drops silently for a subscriber whose queue is full)
    published_by_topic: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class _StatusClock:
    """When a status is due (every ``interval_s``; 0: never) and the spike rate since the last one."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.last_t = time.monotonic()
        self.last_spikes = 0

    def due(self, now: float, spikes: int) -> float | None:
        """The spikes per second since the last status if one is due now, else None."""
        if self.interval_s <= 0 or now < self.last_t + self.interval_s:
            return None
        rate = (spikes - self.last_spikes) / (now - self.last_t)
        self.last_t, self.last_spikes = now, spikes
        return rate


class Pipeline:
    def __init__(
        self,
        cfg: Config,
        source: Source,
        publishers: list[Publisher] | None = None,
        probe: Probe | None = None,
        bank: TemplateBank | None = None,
    ):
        """``bank``: known templates (else ``[matching] templates`` names a phy folder to load, or
        units are discovered online)."""
        self.cfg = cfg
        self.source = source
        self.publishers = list(publishers or [])
        self._probe = probe
        self._bank = bank
        self.live = True  # set False for reproducible runs (discovery in place)
        self.table: UnitTable | None = None
        self.raw: RawRecorder | None = None  # set by run_live with --save-raw
        self._table_sent = NOTHING_SENT
        self._table_due = 0.0
        self._table_repeat_due = 0.0
        self.log = SpikeLog()
        self.info: StreamInfo | None = None
        self.times = StageTimes(STAGES)
        self.publish_lag = PublishLag()
        self._features_sent = -1  # the labeller round whose features were published last
        self._samples = 0
        self._first_sample: int | None = None
        self._end_sample = 0  # one past the last sample processed
        self.scheduling = Scheduling(cpu_cores=[], realtime_priority=0)
        self._t_start = 0.0
        self._last_data = time.monotonic()
        #: where progress messages (kernel compilation) go; the default prints them on stderr
        self.announce: Callable[[str], None] = _announce_on_stderr

    # -------------------------------------------------------------------------------- set-up
    def open(self) -> StreamInfo:
        """Compile the kernels, connect the source, check the stream against the config, build and
        warm the stages. The kernels compile before the source connects: a first start (a minute
        or more of compiling) must not leave a live sender's data piling up unread."""
        self._compile_before_connecting()
        info = self.source.open()
        cfg = self.cfg
        if info.n_channels != cfg.probe.n_channels:
            raise InputError(
                f"the source has {info.n_channels} channels but [probe] n_channels = {cfg.probe.n_channels}; "
                "make them agree"
            )
        if info.sample_rate_hz != cfg.probe.sample_rate_hz:
            log.info(
                "source runs at %g Hz (config said %g Hz); using the source's rate",
                info.sample_rate_hz,
                cfg.probe.sample_rate_hz,
            )
        self.info = info
        if self._probe is None:
            if info.meta_path is not None and cfg.probe.geometry in ("np1", "np2"):
                self._probe = from_spikeglx_meta(info.meta_path)
            else:
                self._probe = load_probe(cfg.probe.geometry, info.n_channels)
        if self._probe.n_channels != info.n_channels:
            raise InputError(f"probe geometry has {self._probe.n_channels} channels, the stream {info.n_channels}")
        bank = self._bank
        if bank is None and cfg.matching.templates:
            dense, ids = read_phy_templates(cfg.matching.templates, info.n_channels)
            counts = read_phy_spike_counts(cfg.matching.templates) if cfg.matching.prior_from_sort else None
            bank = bank_from_templates(
                cfg, self._probe, info.sample_rate_hz, dense, ids, in_uv=False, prior_spikes=counts
            )
            log.info(
                "loaded %d templates of %d units from %s%s",
                bank.n,
                np.unique(ids).size,
                cfg.matching.templates,
                "; the sort's spike counts are the units' rate prior" if counts is not None else "",
            )
        live = not isinstance(self.source, FileSource) or cfg.source.speed > 0
        self.chain = DetectionChain(cfg, self._probe, info.sample_rate_hz, bank, live=live and self.live)
        self.labeler = self._make_labeler()
        bin_samples = ms_to_samples(cfg.publish.counts_bin_ms, info.sample_rate_hz)
        self.counter = SpikeCounter(bin_samples, self.chain.decision_lag) if bin_samples > 0 else None
        if self.chain.bank is not None:
            matcher = self.chain.matcher
            late_ms = matcher.late_delay_ms if matcher is not None else 0.0
            self.table = UnitTable(self.chain.bank, info.sample_rate_hz, self.labeler, late_delay_ms=late_ms)
        self._warm_up()
        return info

    def _make_labeler(self) -> LiveLabeler | None:
        """The live labeler, if the config names a model (or the shipped default exists)."""
        c = self.cfg.classify
        if c.model == "none" or self.chain.features is None:
            return None
        ranges = parse_layer_ranges(c.layers)
        shipped = default_model(layers_known=bool(ranges))
        if not c.model and not shipped.exists():
            log.warning("no classifier model at %s: units stay unlabeled ([classify] model)", shipped)
            return None
        model = load_classifier(c.model or shipped, c.classifier)
        log.info("labelling with %s", describe_classifier(model))
        if ranges and not model.use_layer:
            log.warning("classify.layers is set, but the model does not take the layer: it is not used")
        if model.use_layer and not ranges:
            log.warning("the model takes the layer; classify.layers is not set, so every unit's layer is 'unknown'")
        return LiveLabeler(
            c,
            model,
            self.chain.features,
            layers_of=self._layer_of(ranges),
            data_time_s=self.data_time_s,
            quality=self.chain.spike_quality,
        )

    def _layer_of(self, ranges):
        """unit id -> its layer: the range holding its peak contact's depth (``classify.layers``)."""
        bank, positions_um = self.chain.bank, self._probe.positions_um
        if bank is None:
            return None
        return lambda unit: layer_at(ranges, float(positions_um[bank.peak_channel[bank.index[unit]], 1]))

    def _compile_before_connecting(self) -> None:
        """Kernel types do not depend on the channel count or the geometry: the configured probe
        (or a standard one, if the configured geometry can only be read from the stream) will do."""
        cfg = self.cfg
        try:
            probe = self._probe or load_probe(cfg.probe.geometry, cfg.probe.n_channels)
        except InputError:
            probe = neuropixels("np1")
        compile_kernels(cfg, probe, cfg.probe.sample_rate_hz, self.announce)

    def _warm_up(self) -> None:
        """The classifier's first inference before the first live chunk (the kernels were compiled
        before the source connected: their types do not depend on the probe or the stream)."""
        if self.labeler is not None:
            self.labeler.warm_up()

    @property
    def detector(self) -> ThresholdDetector:
        return self.chain.detector

    def data_time_s(self) -> float:
        """Seconds of stream processed so far (the labeller stamps first labels with it)."""
        return self._samples / self.info.sample_rate_hz

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
        t_arrival = time.perf_counter()
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
                waited_ms = (chunk.end_sample - 1 - found["sample"]) * (1e3 / fs)
                self.publish_lag.record(waited_ms + (time.perf_counter() - t_arrival) * 1e3)
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
        self._end_sample = chunk.end_sample
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
        messages = counts_messages(starts, counts, self.counter.bin)
        for pub in self.publishers:
            pub.publish_counts(messages)
            pub.publish_counts_array(counts, t_ends)

    def _publish_table(self, now_sample: int, final: bool = False) -> None:
        """Send the unit table when units appeared, were merged or relabelled, at most every
        ``unit_table_interval_s``, and unchanged every ``unit_table_repeat_s`` (late subscribers).
        ``final`` (the run ends): now, if it changed since it was last sent."""
        bank = self.chain.bank
        state = (bank.n, len(bank.merged_into), self.table.version, self.labeler.version if self.labeler else 0)
        now = time.monotonic()
        repeat_s = self.cfg.publish.unit_table_repeat_s
        repeat_due = repeat_s > 0 and now >= self._table_repeat_due
        if final:
            if state == self._table_sent:
                return
        elif now < self._table_due or (state == self._table_sent and not repeat_due):
            return
        payload = self.table.to_json(now_sample)
        for pub in self.publishers:
            pub.publish_units(payload)
        self._table_sent, self._table_due = state, now + self.cfg.publish.unit_table_interval_s
        self._table_repeat_due = now + repeat_s

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
        shown = _StatusClock(interval if on_status is not None else 0.0)
        published = _StatusClock(self.cfg.publish.status_interval_s if self.publishers else 0.0)
        self._last_data = last_data = time.monotonic()
        # with the labeler and discovery threads running, hand the GIL back to the hot path
        # within 0.5 ms instead of Python's default 5 ms
        switch = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_S)
        cores_before = os.sched_getaffinity(0)
        try:
            # what exists now (modules, compiled kernels, the stages) lives as long as the run:
            # keep it out of the cyclic collector's full passes, which took ~80 ms each (80 chunks
            # of stall) every few tens of seconds; frozen, the passes see only the run's own
            # objects. (Process-wide: runs in parallel threads of one process unfreeze each other.)
            gc.collect()
            gc.freeze()
            if self.labeler is not None:
                self.labeler.start()
            # after the labeller started: its thread keeps normal scheduling
            self.scheduling = apply_scheduling(self.cfg.run)
            while not stop.is_set() and not self.source.finished:
                chunk = self.source.read(READ_TIMEOUT_S)
                now = time.monotonic()
                if chunk is not None:
                    self._last_data = last_data = now
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
                if (rate := shown.due(now, len(self.log))) is not None:
                    on_status(self.status(spikes_per_s=rate))
                if (rate := published.due(now, len(self.log))) is not None:
                    self._publish_status(self.status(spikes_per_s=rate))
        finally:
            restore_scheduling(self.scheduling, cores_before)
            sys.setswitchinterval(switch)
            gc.unfreeze()
            if self.labeler is not None:
                self.labeler.stop()
            if self.table is not None and self._first_sample is not None:
                self._publish_table(self._end_sample, final=True)  # the run's last units and labels

    # -------------------------------------------------------------------------------- reporting
    def status(self, spikes_per_s: float = 0.0) -> Status:
        stats = self.source.stats
        recent = self.times.recent_total_us(1000)
        fs = self.info.sample_rate_hz
        busy = self.times.total_s[-1]
        chans = self.log.recent_channels(RECENT_BATCHES_KEPT).size
        quiet_s = time.monotonic() - self._last_data
        d = self.chain.discovery
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
            malformed_by_kind=dict(stats.malformed_by_kind),
            restarts=stats.restarts,
            stalls=stats.stalls,
            detecting=self.detector.ready,
            units=int(self.chain.bank.n) if self.chain.bank is not None else 0,
            discovery_rounds=d.rounds if d is not None else 0,
            discovery_skipped=d.skipped_rounds if d is not None else 0,
            discovery_failed=d.failed_rounds if d is not None else 0,
            source_name=self.info.name,
            waiting_s=quiet_s if quiet_s >= WAITING_AFTER_S else 0.0,
            **self._publishing_and_labeller(),
        )

    def _publishing_and_labeller(self) -> dict[str, Any]:
        p50, p99 = self.publish_lag.percentiles_ms(50, 99)
        out: dict[str, Any] = {"publish_lag_p50_ms": p50, "publish_lag_p99_ms": p99}
        lab = self.labeler
        if lab is not None:
            out.update(
                classifier=describe_classifier(lab.model),
                labeller_rounds=lab.ticks,
                labeller_round_ms=lab.last_tick_s * 1e3,
                labelled_units=int((lab.codes > 0).sum()),
                labeller_late=lab.late_rounds,
                labeller_failed=lab.failed_rounds,
                spike_filter_withheld_units=len(lab.withheld),
                spike_filter_filtered_units=len(lab.filtered),
                spike_filter_spikes_left_out=sum(lab.filtered.values()),
            )
        out["published_by_topic"] = self._published_by_topic()
        return out

    def _published_by_topic(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for pub in self.publishers:
            for topic, n in pub.published_by_topic().items():
                counts[topic] = counts.get(topic, 0) + n
        return counts

    def _publish_status(self, status: Status) -> None:
        """The health counters on the ``status`` topic, and the units' classifier input on
        ``features`` after a labelling round (both off the latency path: after the chunk's spikes)."""
        payload = json.dumps(asdict(status)).encode()
        for pub in self.publishers:
            pub.publish_status(payload)
        lab = self.labeler
        if lab is None or not self.cfg.publish.features or lab.inputs is None or lab.ticks == self._features_sent:
            return
        units, acg, wave = lab.inputs
        records = np.zeros(units.size, FEATURES_DTYPE)
        records["unit"], records["acg3d"], records["waveform"] = units, acg, wave
        for pub in self.publishers:
            pub.publish_features(records)
        self._features_sent = lab.ticks

    def metrics(self) -> dict[str, Any]:
        fs = self.info.sample_rate_hz
        busy = float(self.times.total_s[-1])
        data_s = self._samples / fs
        bank = self.chain.bank
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
            "publish_lag_ms": dict(zip(("p50", "p99"), self.publish_lag.percentiles_ms(50, 99))),
            "published_by_topic": self._published_by_topic(),
            # spikes given to a unit twice within [matching] unit_dead_time_ms, dropped
            "repeats_dropped": self.chain.matcher.repeats if self.chain.matcher is not None else 0,
            "late_decisions": self._late_summary(),
            "units": bank.n if bank is not None else 0,
            # units that still get spikes (the others were merged into one of them)
            "active_units": int(bank.active[: bank.n].sum()) if bank is not None else 0,
            "labels": self._label_summary(),
            "discovery": self._discovery_summary(),
            "scheduling": self.scheduling.as_dict(),
            # a live source's chunks joined into blocks of this length ([source] batch_ms; 0 = none)
            "batch_ms": self.cfg.source.batch_ms,
            "n_channels": self.info.n_channels,
            "sample_rate_hz": fs,
        }

    def _late_summary(self) -> dict:
        """Spikes decided again on their late window ([matching] late_window_post_ms): held, given
        to another unit than the match window's, not held for want of room; and which units."""
        m = self.chain.matcher
        if m is None or not m.late_len:
            return {"enabled": False}
        bank = self.chain.bank
        return {
            "enabled": True,
            "later_by_ms": m.late_delay_ms,
            "held": m.late_held,
            "moved": m.late_moved,
            "overflow": m.late_overflow,
            "units": [int(u) for u in np.unique(bank.ids[: bank.n][bank.late[: bank.n]])],
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
        disc = self.chain.discovery
        return UnitOutputs(
            bank.ids[: bank.n].copy(),
            templates.astype(np.float32),
            self.probe.positions_um,
            labels,
            earlier=list(disc.earlier) if disc is not None else [],
        )

    def _discovery_summary(self) -> dict[str, Any] | None:
        d = self.chain.discovery
        if d is None:
            return None
        return {
            "rounds": d.rounds,
            "units_found": d.promoted,
            "units_split_off": d.splits,
            "units_merged": d.merges,
            "failed_rounds": d.failed_rounds,
            "skipped_rounds": d.skipped_rounds,
            "clustering_cpu_s": d.clustering_cpu_s,
            "last_error": d.last_error,
        }

    def _label_summary(self) -> dict[str, Any]:
        if self.labeler is None:
            return {"model": None}
        codes = self.labeler.codes
        return {
            "model": str(self.labeler.model.path),
            "classifier": describe_classifier(self.labeler.model),
            "ticks": self.labeler.ticks,
            "late_rounds": self.labeler.late_rounds,
            "failed_rounds": self.labeler.failed_rounds,
            "last_tick_ms": self.labeler.last_tick_s * 1e3,
            "units_by_type": {CELL_TYPE_NAMES[c]: int((codes == c).sum()) for c in range(1, len(CELL_TYPE_NAMES))},
            "spike_filter": self.cfg.classify.spike_filter,
            # units C4's spike filter leaves unlabeled (why), and spikes it leaves out of units' 3D-ACGs
            "spike_filter_withheld": {str(u): why for u, why in sorted(self.labeler.withheld.items())},
            "spike_filter_spikes_left_out": {str(u): n for u, n in sorted(self.labeler.filtered.items())},
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
    from rtclass.publish.files import SpikeJournal, prepare_output_dir, write_run_output

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
    if out_dir is not None:
        pipe.log.journal = SpikeJournal(out_dir)
    if cfg.run.save_raw:
        pipe.raw = RawRecorder(out_dir)
    failure: BaseException | None = None
    try:
        pipe.publishers = make_publishers(cfg, info.name)
        pipe.run(stop, on_status=on_status)
    except Exception as exc:  # what was processed is still written, then the error goes on up
        failure = exc
        raise
    finally:
        pipe.close()
        if pipe.raw is not None:
            pipe.raw.close()
        metrics = pipe.metrics()
        if failure is not None:
            metrics["stopped_by_error"] = f"{type(failure).__name__}: {failure}"
        if out_dir is not None:
            write_run_output(out_dir, pipe.log, info, metrics, pipe.unit_outputs(), pipe.raw)
            pipe.log.journal.close(remove=True)  # the files now hold every spike it did
    return metrics
