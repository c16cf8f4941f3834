"""Unit assignment stage: template matching of detected peaks (see ``match_kernels``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtclass.config import DiscoveryConfig, MatchingConfig
from rtclass.dsp.detection import PEAK_DTYPE
from rtclass.errors import InputError
from rtclass.matching.kernels import (
    LATE_HEAD,
    LATE_HELD,
    LATE_MOVED,
    LATE_OVERFLOW,
    LATE_TAIL,
    N_COUNTERS,
    N_LATE_COUNTERS,
    QUEUE_HEAD,
    QUEUE_TAIL,
    BankArrays,
    ChannelWeights,
    LateSpikes,
    MatchSettings,
    RecentSpikes,
    drop_repeats,
    learn_long,
    match_step,
    resolve_late,
)
from rtclass.matching.templates import TemplateBank
from rtclass.stage import Stage, ms_to_samples

#: noise levels below this (uV) are taken as this (dead or not yet estimated channels)
NOISE_FLOOR_UV = 0.5
#: a detected spike with its unit (-1: unassigned): amplitude = trough depth at detection (uV),
#: fit = fitted template amplitude (uV trough depth on the unit's peak channel), score = energy the
#: template leaves unexplained over what noise alone would leave (~1 for a good match)
ASSIGNED_DTYPE = np.dtype(
    [("sample", "<i8"), ("unit", "<i4"), ("channel", "<i2"), ("amplitude", "<f4"), ("fit", "<f4"), ("score", "<f4")]
)


#: decided spikes remembered for overlap subtraction and long-template learning (more than can
#: reach into one window: 64 cover 8.7 ms, two 4-ms long templates, up to ~7000 peaks/s;
#: beyond that a spike is not learnt from)
RECENT_SPIKES = 64
#: unit ids the repeat check has room for before it grows
INITIAL_UNIT_IDS = 256
#: long-template updates that can wait for their data (beyond it, spikes are not learnt from)
LEARN_QUEUE = 4096
#: peaks the matcher can hold before its buffers grow
PENDING_CAPACITY = 1024
#: spikes that can wait for a late decision at once (beyond it, a spike is decided on the match
#: window alone and counted: ``late_overflow``)
LATE_CAPACITY = 1024
#: the (shared, read-only) result of a call that decides no spike
NOTHING = np.zeros(0, ASSIGNED_DTYPE)
NOTHING.flags.writeable = False
#: ``shape_spikes`` for templates whose shapes follow the data for the whole run
ALWAYS = np.iinfo(np.int64).max


def channel_weights(noise_sd: np.ndarray) -> np.ndarray:
    """Each channel's weight in a fit: 1 / its noise variance (float32; noise below
    ``NOISE_FLOOR_UV`` counts as that)."""
    return (1.0 / np.maximum(noise_sd, NOISE_FLOOR_UV) ** 2).astype(np.float32)


#: an unexplained spike for discovery: (sample, peak channel, snippet ``[W, K]`` on the bank's
#: ``local_channels`` of that channel)
UnexplainedSnippet = tuple[int, int, np.ndarray]
#: an assigned spike for its unit's split check: (unit id, snippet on the ``wide_channels`` of the
#: unit's peak channel)
AssignedSnippet = tuple[int, np.ndarray]


@dataclass(frozen=True)
class MatchResult:
    """What one ``TemplateMatcher.process`` call decided."""

    #: decided spikes (ASSIGNED_DTYPE) in sample order, but for the second spike of an overlapping
    #: pair, which can precede the spikes before it by up to ``pair_lead`` samples, and spikes
    #: decided late, which come after the spikes decided meanwhile (up to ``late_latency_samples``
    #: after their peak)
    spikes: np.ndarray
    #: snippets of the decided spikes no template explains (only when discovering)
    unexplained: list[UnexplainedSnippet] = field(default_factory=list)
    #: snippets of assigned spikes of the units in ``wanted_snippets`` (only when discovering)
    assigned: list[AssignedSnippet] = field(default_factory=list)


class TemplateMatcher(Stage):
    """Assigns each detected peak to a unit once ``post + max_shift`` samples after it have
    arrived (the match window's end, with its shifts: this stage's decision latency).

    State: the peaks still waiting for their window, recently decided spikes (for the overlap
    subtraction) and the queue of long-template updates. The filtered data it reads (``work``)
    is the detector's buffer, which keeps ``lookback_samples`` of history for it.
    """

    def __init__(
        self,
        cfg: MatchingConfig,
        bank: TemplateBank,
        sweep: int,
        sample_rate_hz: float,
        discovery: DiscoveryConfig | None = None,
    ):
        """``discovery``: units are being discovered online (its stricter acceptance bounds apply,
        and the snippets it needs are returned)."""
        self.cfg = cfg
        discovering = discovery is not None
        self.max_residual = discovery.max_residual if discovering else cfg.max_residual
        self.min_explained = discovery.min_explained if discovering else cfg.min_explained
        self.bank = bank
        self.max_shift = cfg.max_shift_samples
        self.post = bank.width - bank.pre
        #: window (samples from its start) on which a failed match is tried again
        self.truncated = (
            min(bank.width, bank.pre + ms_to_samples(cfg.truncated_post_ms, sample_rate_hz))
            if cfg.truncated_post_ms > 0
            else bank.width
        )
        #: a peak no single template explains is fitted as two units' spikes up to this many samples apart
        self.pair_offset = ms_to_samples(cfg.pair_offset_ms, sample_rate_hz)
        #: how far before its peak's sample the other spike of a pair can lie
        self.pair_lead = self.pair_offset + self.max_shift if self.pair_offset else 0
        #: past samples the matcher needs to see (the detector keeps them in its ``work``): a match
        #: window with its shifts, or a long template's learning window plus the decision lag
        self.sweep = sweep
        long_len = bank.long_waves.shape[2]
        self.history = max(
            bank.width + 2 * self.max_shift + sweep + 1,
            long_len + bank.pre + self.post + self.max_shift + sweep + 1 if long_len else 0,
        )
        self.lookback_samples = self.history
        #: a spike won by a unit whose waveform goes on past the match window, while a busier unit
        #: competes for it, is decided again on a window of ``late_len`` samples (from ``pre``
        #: before its trough) once ``late_wait`` samples after its peak have arrived (0: off)
        late_post = ms_to_samples(cfg.late_window_post_ms, sample_rate_hz) if long_len else 0
        if late_post and late_post + 2 * self.max_shift >= long_len - bank.pre:
            raise InputError(
                f"[matching] late_window_post_ms = {cfg.late_window_post_ms} must be shorter than "
                f"subtract_post_ms = {cfg.subtract_post_ms} by more than two alignment shifts "
                f"({2 * self.max_shift} samples): the late decision needs the long templates beyond it"
            )
        self.late_len = bank.pre + late_post if late_post > self.post else 0
        self.late_wait = late_post + self.max_shift if self.late_len else 0
        #: samples after a peak before its unit is decided: its match window with its shifts and the
        #: lead of a pair's second spike; a late decision once its late window is here and every
        #: peak before that window's end is decided
        self.normal_latency_samples = self.post + self.max_shift + self.pair_lead
        self.late_latency_samples = self.late_wait + max(sweep, self.post + self.max_shift) if self.late_len else 0
        self.decision_latency_samples = max(self.normal_latency_samples, self.late_latency_samples)
        #: how much later than other spikes a late decision is published (at most)
        self.late_delay_ms = max(0, self.late_latency_samples - self.normal_latency_samples) * 1e3 / sample_rate_hz
        self._late = new_late_spikes(LATE_CAPACITY)
        # overlap subtraction state: recently decided spikes and the queue of long-template updates
        self._recent = new_recent_spikes(RECENT_SPIKES, LEARN_QUEUE)
        self._pending = np.zeros(PENDING_CAPACITY, PEAK_DTYPE)  # peaks waiting for their window: [:n_pending]
        self.n_pending = 0
        self._oldest = -1  # sample of the oldest pending peak (when n_pending > 0)
        self._n_unassigned = 0  # of the spikes the last call decided
        self._no_peaks = np.zeros(0, PEAK_DTYPE)  # writable (a read-only array would compile another variant)
        ones = np.ones(bank.probe.n_channels, np.float32)
        self._inv_var, self._prev_inv_var, self._epoch = ones, ones, -1
        self.collect_unassigned = discovering
        #: a unit's spike closer than this to its previous one is the same spike twice: dropped
        self.dead_samples = ms_to_samples(cfg.unit_dead_time_ms, sample_rate_hz)
        self._last_by_unit = np.full(INITIAL_UNIT_IDS, -1, np.int64)
        #: repeats dropped so far
        self.repeats = 0
        #: a template's shape follows its unit's first this many matched spikes (then only its
        #: typical amplitude is learnt): discovered units' for ``discovery_shape_spikes``, given
        #: templates' never, or always with ``adapt_given_templates``
        self.shape_spikes = discovery.shape_spikes if discovering else (ALWAYS if cfg.adapt_given_templates else 0)
        #: what the kernels are given (frozen: built from the config section and the bank)
        self.settings = MatchSettings(
            pre=int(bank.pre),
            max_shift=int(self.max_shift),
            max_residual=float(self.max_residual),
            min_explained=float(self.min_explained),
            min_fit_explained=float(cfg.min_fit_explained),
            truncated=int(self.truncated),
            pair_offset=int(self.pair_offset),
            tolerance=float(cfg.amplitude_tolerance),
            adapt_spikes=int(cfg.adapt_spikes),
            shape_spikes=int(self.shape_spikes),
            late_len=int(self.late_len),
            late_wait=int(self.late_wait),
            late_evidence=float(cfg.late_tail_evidence),
            late_margin=float(cfg.late_margin),
        )
        self.collect_assigned = discovering and discovery.split_units

    def _weights(self, noise_sd: np.ndarray, noise_from: int) -> None:
        """Channel weights (inverse noise variance) per noise epoch: a peak is weighted with the
        noise levels in force at its own sample, whatever the chunking."""
        if noise_from != self._epoch:
            self._prev_inv_var, self._epoch = self._inv_var, noise_from
            self._inv_var = channel_weights(noise_sd)

    def process(
        self,
        work: np.ndarray,
        work_first: int,
        peaks: np.ndarray,
        noise_sd: np.ndarray,
        noise_from: int,
        wanted_snippets: dict[int, int] | None = None,
    ) -> MatchResult:
        """work: filtered samples ``[L, C]`` with ``work[0]`` at global index ``work_first``,
        covering at least ``lookback_samples`` before the newest; peaks: newly detected;
        noise_sd: the noise level per channel (uV) in force from sample ``noise_from`` on;
        wanted_snippets: unit id -> how many more assigned snippets its split check wants (the
        counts are taken down as snippets are returned; copying every spike's snippet would cost
        about a tenth of the chain)."""
        self._weights(noise_sd, noise_from)
        wanted = wanted_snippets or {}
        spikes = self._match(work, work_first, peaks)
        up_to = work_first + work.shape[0] - self.sweep  # peaks not yet detected come after this
        if self.n_pending:
            up_to = min(up_to, self._oldest)  # (every peak before it is decided)
        late = self._late.counters
        if late[LATE_HEAD] < late[LATE_TAIL]:
            oldest_held = int(self._late.peak[late[LATE_HEAD] % LATE_CAPACITY])
            if oldest_held + self.late_wait <= up_to:  # (else none is due: no call)
                spikes = self._resolve_late(work, work_first, up_to, spikes)
        counters = self._recent.counters
        head, tail = counters[QUEUE_HEAD], counters[QUEUE_TAIL]
        if head < tail:
            # long-template updates that no spike still to be decided can precede (each decision
            # sees the same updates whatever the chunking), applied while their data is here
            b = self.bank
            if self._recent.q_s[head % LEARN_QUEUE] + b.long_waves.shape[2] <= up_to:  # else none is ready: no call
                s = self.settings
                learn_long(work, work_first, up_to, bank_arrays(b), s.pre, s.adapt_spikes, self._recent)
        if spikes.size == 0:
            return MatchResult(NOTHING)
        if self.dead_samples > 0:
            spikes = self._drop_repeats(spikes)
        return self._snippets(spikes, work, work_first, wanted)

    @property
    def late_held(self) -> int:
        """Spikes held for a late decision so far."""
        return int(self._late.counters[LATE_HELD])

    @property
    def late_moved(self) -> int:
        """Held spikes the late decision gave to another unit than the match window's."""
        return int(self._late.counters[LATE_MOVED])

    @property
    def late_overflow(self) -> int:
        """Spikes that would have been held but found the queue full (decided on the match window)."""
        return int(self._late.counters[LATE_OVERFLOW])

    def _resolve_late(self, work: np.ndarray, work_first: int, up_to: int, spikes: np.ndarray) -> np.ndarray:
        """The held spikes due by ``up_to``, decided, after ``spikes``."""
        out = np.empty(int(self._late.counters[LATE_TAIL] - self._late.counters[LATE_HEAD]), ASSIGNED_DTYPE)
        n = resolve_late(
            work,
            work_first,
            up_to,
            self.bank.ids,
            bank_arrays(self.bank),
            ChannelWeights(self._prev_inv_var, self._inv_var, self._epoch),
            self.settings,
            self._recent,
            self._late,
            out,
        )
        if n == 0:
            return spikes
        return out[:n] if spikes.size == 0 else np.concatenate([spikes, out[:n]])

    def _match(self, work: np.ndarray, work_first: int, peaks: np.ndarray) -> np.ndarray:
        """The pending and new peaks whose window has arrived, decided (held ones once due)."""
        b = self.bank
        self._n_unassigned = 0
        if peaks.size == 0 and self.n_pending == 0:
            return NOTHING
        need = self.n_pending + peaks.size
        if need > self._pending.size:
            grown = np.zeros(2 * need, PEAK_DTYPE)
            grown[: self.n_pending] = self._pending[: self.n_pending]
            self._pending = grown
        latest_ready = work_first + work.shape[0] - self.post - self.max_shift
        oldest = self._oldest if self.n_pending else int(peaks["sample"][0])
        if oldest > latest_ready:  # nothing has its window yet: only queue the new peaks
            self._pending[self.n_pending : need] = peaks
            self.n_pending, self._oldest = need, oldest
            return NOTHING
        earliest = work_first + b.pre + self.max_shift  # a window starting before the data kept (stream start)
        lc = self._late.counters
        # room for the other spike of each overlapping pair, and for the held spikes decided
        out = np.empty(2 * need + int(lc[LATE_TAIL] - lc[LATE_HEAD]), ASSIGNED_DTYPE)
        n, self.n_pending, self._oldest, self._n_unassigned = match_step(
            self._pending,
            self.n_pending,
            peaks if peaks.size else self._no_peaks,
            work,
            work_first,
            latest_ready,
            earliest,
            b.n,
            b.ids,
            bank_arrays(b),
            ChannelWeights(self._prev_inv_var, self._inv_var, self._epoch),
            self.settings,
            out,
            self._recent,
            self._late,
        )
        return out[:n] if n else NOTHING

    def _snippets(self, out: np.ndarray, work: np.ndarray, work_first: int, wanted: dict[int, int]) -> MatchResult:
        """The decided spikes with the snippets discovery wants: of those no template explains,
        and of assigned spikes of the units in ``wanted``."""
        b = self.bank
        unexplained: list[UnexplainedSnippet] = []
        assigned: list[AssignedSnippet] = []
        unit = out["unit"]
        if self.collect_unassigned and self._n_unassigned:
            sample, channel = out["sample"], out["channel"]
            for i in np.flatnonzero(unit < 0).tolist():
                s, c = int(sample[i]), int(channel[i])
                t0 = s - work_first - b.pre
                unexplained.append((s, c, work[t0 : t0 + b.width, b.local_channels(c)]))
        if self.collect_assigned and wanted and (unit >= 0).any():
            for uid, s in zip(unit.tolist(), out["sample"].tolist()):
                t0 = s - work_first - b.pre
                if uid >= 0 and wanted.get(uid, 0) > 0 and t0 + b.width <= work.shape[0]:
                    # (the second spike of a pair can lie a few samples beyond the data here: skipped)
                    wanted[uid] -= 1
                    home = int(b.peak_channel[b.index[uid]])
                    assigned.append((uid, work[t0 : t0 + b.width, b.wide_channels(home)]))
        return MatchResult(out, unexplained, assigned)

    def _drop_repeats(self, out: np.ndarray) -> np.ndarray:
        top = int(out["unit"].max()) + 1
        if top > self._last_by_unit.size:
            grown = np.full(max(top, 2 * self._last_by_unit.size), -1, np.int64)
            grown[: self._last_by_unit.size] = self._last_by_unit
            self._last_by_unit = grown
        keep = np.empty(out.size, np.bool_)
        repeats = drop_repeats(out, self._last_by_unit, self.dead_samples, keep)
        if not repeats:
            return out
        self.repeats += repeats
        return out[keep]


def bank_arrays(bank: TemplateBank) -> BankArrays:
    """The bank's arrays as the kernels take them (rebuilt per call: the bank grows its arrays as
    units are added)."""
    return BankArrays(
        bank.candidates,
        bank.local,
        bank.waves,
        bank.channels,
        bank.norm2,
        bank.amp,
        bank.amp_n,
        bank.matched,
        bank.long_waves,
        bank.long_n,
        bank.overlap,
        bank.late,
    )


def new_recent_spikes(n_recent: int, queue_length: int) -> RecentSpikes:
    """Empty overlap state: rings of ``n_recent`` decided spikes and ``queue_length`` updates."""
    return RecentSpikes(
        rec_s=np.zeros(n_recent, np.int64),
        rec_u=np.zeros(n_recent, np.int64),
        rec_a=np.zeros(n_recent, np.float32),
        q_s=np.zeros(queue_length, np.int64),
        q_u=np.zeros(queue_length, np.int64),
        q_a=np.zeros(queue_length, np.float32),
        counters=np.zeros(N_COUNTERS, np.int64),
    )


def new_late_spikes(capacity: int) -> LateSpikes:
    """An empty FIFO of ``capacity`` spikes held for a late decision."""
    i64, f32 = np.int64, np.float32
    return LateSpikes(
        peak=np.zeros(capacity, i64),
        channel=np.zeros(capacity, i64),
        depth=np.zeros(capacity, f32),
        shift=np.zeros(capacity, i64),
        index=np.zeros(capacity, i64),
        fit=np.zeros(capacity, f32),
        score=np.zeros(capacity, f32),
        rec=np.zeros(capacity, i64),
        final=np.zeros(capacity, i64),
        final_fit=np.zeros(capacity, f32),
        before=np.zeros(capacity, i64),
        counters=np.zeros(N_LATE_COUNTERS, i64),
    )


def warm_up_matching() -> None:
    """Compile (or load from cache) the matching step on a tiny problem, with the argument types
    of the live calls."""
    work = np.zeros((8, 1), np.float32)
    work[3, 0] = -1.0
    waves = np.zeros((1, 1, 4), np.float32)  # [U, C, W]
    waves[0, 0, 1] = -1.0
    pending = np.zeros(2, PEAK_DTYPE)
    peaks = np.zeros(1, PEAK_DTYPE)
    peaks["sample"] = 3
    i32, f32, i64 = np.int32, np.float32, np.int64
    bank = BankArrays(
        candidates=np.zeros((1, 1), i32),
        local=np.zeros((1, 1), i32),
        waves=waves,
        channels=np.zeros((1, 1), i32),
        norm2=np.ones(1, f32),
        amp=np.ones(1, f32),
        amp_n=np.ones(1, i64),
        matched=np.zeros(1, i64),
        long_waves=np.zeros((1, 1, 6), f32),
        long_n=np.full(1, 100, i64),
        overlap=np.ones((1, 1), np.bool_),
        late=np.zeros(1, np.bool_),
    )
    settings = MatchSettings(
        pre=1,
        max_shift=1,
        max_residual=2.0,
        min_explained=0.5,
        min_fit_explained=0.3,
        truncated=2,
        pair_offset=1,
        tolerance=0.5,
        adapt_spikes=10,
        shape_spikes=ALWAYS,
        late_len=5,
        late_wait=4,
        late_evidence=0.0,
        late_margin=1.0,
    )
    weights = ChannelWeights(np.ones(1, f32), np.ones(1, f32), 0)
    recent = new_recent_spikes(4, 4)
    late = new_late_spikes(4)
    match_step(
        pending,
        0,
        peaks,
        work,
        0,
        4,
        1,
        1,
        np.zeros(1, i32),
        bank,
        weights,
        settings,
        np.zeros(4, ASSIGNED_DTYPE),
        recent,
        late,
    )
    learn_long(work, 0, 8, bank, settings.pre, settings.adapt_spikes, recent)
    resolve_late(work, 0, 8, np.zeros(1, i32), bank, weights, settings, recent, late, np.zeros(4, ASSIGNED_DTYPE))
    drop_repeats(np.zeros(1, ASSIGNED_DTYPE), np.full(1, -1, i64), 1, np.empty(1, np.bool_))
