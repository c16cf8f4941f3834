"""Live per-unit features: plain ACG, C4's 3D-ACG and the mean waveform, updated spike by spike.

``UnitFeatures`` keeps, for every unit, arrays whose size does not grow with the recording:

* a ring of the unit's recent spike times (1 ms bins), ``RING_SPIKES`` deep;
* a plain ACG: counts per 1 ms lag up to ``acg_window_ms``, updated on each spike with the
  spikes inside the window only;
* for the 3D-ACG (definition in ``c4_features``): a reference spike is *finalised* once a spike
  1001 ms later exists - exactly when C4 would start using it. Its smoothed rate is computed then
  (it no longer changes), it is counted in a histogram over ``FINE_RATE_BINS`` log-spaced rate
  bins, and the presence of spikes at each lag the log resampling reads (129 of the 1000 lags) is
  added to that fine bin's lag counts. At read time the 10 rate-bin edges are the quantiles of
  all spikes' rates (the fine histogram, plus the exact rates of the spikes of the last second),
  fine bins are folded into the 10 rate bins by their centre, and each row is its lag counts over
  its reference spikes. The only approximation is the fine binning of rates: spikes in the fine
  bin that straddles an edge go to one side. Measured error: see the README and the tests;
* a running mean of raw snippets (C4 takes waveforms from the raw, unfiltered data: 60 samples
  either side of the spike, median removed per channel - here once, from the mean) on the
  channels around the unit's peak channel; C4's waveform is the preprocessed trace of the
  channel with the largest swing.

Memory per unit: ``UnitFeatures.memory_bytes_per_unit()`` (about 290 KB: the exact records of the first
reference spikes and the fine lag counts dominate), so 1000 units take about 290 MB.
"""

from __future__ import annotations

import threading
from collections import namedtuple

import numba
import numpy as np

from rtclass.features.c4 import (
    ACG_SCALE,
    HALF_WINDOW_BINS,
    LOG_LAGS_MS,
    LOG_RESAMPLING,
    N_LOG_LAGS,
    N_RATE_BINS,
    SMOOTH_BINS,
    preprocess_waveform,
)
from rtclass.matching.templates import MAX_UNIT_ID
from rtclass.stage import Stage

#: a unit's spike-train state, one row per unit index: the ring of recent spike bins and its
#: sequence bookkeeping (n_seq, seq0, next_ref), the exact pair store of its first spikes
#: (n_exact, ex_rate, ex_bits, ex_used), the rate grid and ACG of the binned store (grid, acg,
#: rate_hist, ref_hist, lag_counts) and the spikes that fell out of the window (lost)
SpikeTrainState = namedtuple(
    "SpikeTrainState",
    [
        "ring",
        "n_seq",
        "seq0",
        "next_ref",
        "n_exact",
        "ex_rate",
        "ex_bits",
        "ex_used",
        "grid",
        "acg",
        "rate_hist",
        "ref_hist",
        "lag_counts",
        "lost",
    ],
)

#: spike times kept per unit (covers > 1.3 s at up to ~1.5 kHz)
RING_SPIKES = 2048
#: reference spikes kept exactly (rate and lag presence) before a unit switches to fine bins
EXACT_SPIKES = 4096
#: per-unit fine rate bins, edged at quantiles of the exact spikes' rates, plus one bin below
#: and one above
FINE_RATE_BINS = 256
#: the range is widened by this factor on each side (log scale) to leave room for drift
CALIBRATION_MARGIN = 1.25
#: the integer lags (ms) np.interp reads when resampling 1..1000 ms at logspace(0, 3, 100)
LAGS = np.unique(np.concatenate([np.floor(LOG_LAGS_MS), np.ceil(LOG_LAGS_MS)]).astype(np.int64))
LAG_INDEX = np.full(HALF_WINDOW_BINS + 1, -1, np.int64)
LAG_INDEX[LAGS] = np.arange(LAGS.size)
#: raw snippet kept per spike for the waveform: samples before / after the spike
WAVE_PRE = 60
WAVE_POST = 60
#: raw samples added to the snippet ring per step (longer blocks go in pieces)
RAW_PIECE = 64
#: decision delay (samples from a spike to its arrival here) the ring is sized for by default
DEFAULT_DECISION_LAG = 64
#: pending spikes the waveform FIFO holds before it grows (spikes decided but still waiting
#: for WAVE_POST samples: a few per unit)
PENDING_SPIKES = 1024
#: the waveform running mean becomes an exponential average over this many spikes
WAVE_MEMORY = 1000
INITIAL_UNITS = 64

N_FINE = FINE_RATE_BINS + 2  # [below, fine bins..., above]
LAG_WORDS = (LAGS.size + 63) // 64  # lag presence of one reference spike, as bits


@numba.jit(nopython=True, nogil=True, cache=True)
def _smoothed_rate_at(ring, seq0, n_seq, k, half):
    """C4's smoothed rate at spike sequence index k (ring holds indices seq0..n_seq-1), using
    the segments between ISI midpoints; valid once spikes exist > 125 ms after it."""
    r = ring.shape[0]
    s = ring[k % r]
    lo = max(0, s - half)
    hi = s + half
    total = 0.0
    # segments of spikes j (1 <= j <= n_seq - 2) overlapping [lo, hi): start from the last spike
    # at or before lo (its segment may reach into the window)
    j = k
    while j > seq0 and ring[j % r] > lo:
        j -= 1
    while j <= n_seq - 2:
        if j >= 1 and j - 1 >= seq0:
            t_prev = ring[(j - 1) % r]
            t = ring[j % r]
            t_next = ring[(j + 1) % r]
            start = t_prev + (t - t_prev) // 2
            stop = t + (t_next - t) // 2
            if start >= hi:
                break
            if stop > start:
                a = max(start, lo)
                b = min(stop, hi)
                if b > a:
                    total += (b - a) / ((stop - start) * 1e-3)
        j += 1
    return total / (hi - lo)


@numba.jit(nopython=True, nogil=True, cache=True)
def _fine_bin(rate, log_edges):
    """0 below the first edge, len(edges) above the last, else 1 + the bin between edges."""
    if rate <= 0.0:
        return 0
    return np.searchsorted(log_edges, np.log(rate), side="right")


@numba.jit(nopython=True, nogil=True, cache=True)
def _to_fine_bins(u, ex_rate, ex_bits, ex_used, grid, rate_hist, ref_hist, lag_counts):
    """Switch unit u from exact records to fine bins and fold the records in. The bins' edges are
    quantiles of the recorded rates (log scale), so each holds about the same number of spikes;
    the outer edges are pushed out by CALIBRATION_MARGIN of the range to leave room for drift."""
    n = ex_rate.shape[1]
    n_edges = grid.shape[1]
    logs = np.empty(n)
    m = 0
    for j in range(n):
        if ex_rate[u, j] > 0.0:
            logs[m] = np.log(ex_rate[u, j])
            m += 1
    if m < 2:
        for k in range(n_edges):
            grid[u, k] = np.log(0.1) + k * (np.log(1e4) / (n_edges - 1))
    else:
        srt = np.sort(logs[:m])
        for k in range(n_edges):
            grid[u, k] = srt[int(round(k / (n_edges - 1) * (m - 1)))]
        width = max(srt[m - 1] - srt[0], np.log(1.01))
        grid[u, 0] -= (CALIBRATION_MARGIN - 1) * width
        grid[u, n_edges - 1] += (CALIBRATION_MARGIN - 1) * width
        for k in range(1, n_edges):  # equal rates give equal edges: keep them strictly increasing
            if grid[u, k] <= grid[u, k - 1]:
                grid[u, k] = grid[u, k - 1] + 1e-12
    for j in range(n):
        f = _fine_bin(ex_rate[u, j], grid[u])
        rate_hist[u, f] += 1
        if ex_used[u, j]:
            ref_hist[u, f] += 1
            for li in range(lag_counts.shape[2]):
                if (ex_bits[u, j, li // 64] >> np.uint64(li % 64)) & np.uint64(1):
                    lag_counts[u, f, li] += 1


@numba.jit(nopython=True, nogil=True, cache=True, inline="always")
def _add_spike(u, b, state, lag_index, half, window):
    """Feed one spike (unit index u, 1 ms bin b; after every earlier spike) into the per-unit
    state (``SpikeTrainState``)."""
    (
        ring,
        n_seq,
        seq0,
        next_ref,
        n_exact,
        ex_rate,
        ex_bits,
        ex_used,
        grid,
        acg,
        rate_hist,
        ref_hist,
        lag_counts,
        lost,
    ) = state
    r = ring.shape[1]
    n_ex = ex_rate.shape[1]
    one = np.uint64(1)
    # plain ACG: lags to earlier spikes within the window
    j = n_seq[u] - 1
    while j >= seq0[u]:
        lag = b - ring[u, j % r]
        if lag > window:
            break
        if lag >= 1:
            acg[u, lag - 1] += 1
        j -= 1
    # append
    ring[u, n_seq[u] % r] = b
    n_seq[u] += 1
    if n_seq[u] - seq0[u] > r:
        seq0[u] = n_seq[u] - r
        if next_ref[u] < seq0[u]:
            lost[u] += seq0[u] - next_ref[u]
            next_ref[u] = seq0[u]
    # finalise reference spikes that now have a spike >= 1001 ms after them
    while next_ref[u] < n_seq[u] - 1:
        k = next_ref[u]
        s = ring[u, k % r]
        if b < s + HALF_WINDOW_BINS + 1:
            break
        rate = _smoothed_rate_at(ring[u], seq0[u], n_seq[u], k, half)
        used = s >= HALF_WINDOW_BINS  # C4 uses spikes at least 1 s after time 0
        exact = n_exact[u] < n_ex
        e = n_exact[u]
        f = 0
        if exact:
            ex_rate[u, e] = rate
            ex_used[u, e] = used
            for w in range(ex_bits.shape[2]):
                ex_bits[u, e, w] = 0
        else:
            f = _fine_bin(rate, grid[u])
            rate_hist[u, f] += 1
            if used:
                ref_hist[u, f] += 1
        if used:
            m = k + 1
            while m < n_seq[u]:
                lag = ring[u, m % r] - s
                if lag > HALF_WINDOW_BINS:
                    break
                if lag >= 1:
                    li = lag_index[lag]
                    if li >= 0:
                        if exact:
                            ex_bits[u, e, li // 64] |= one << np.uint64(li % 64)
                m += 1
            if not exact:
                # presence, not count: mark each lag once
                m = k + 1
                last = -1
                while m < n_seq[u]:
                    lag = ring[u, m % r] - s
                    if lag > HALF_WINDOW_BINS:
                        break
                    if lag >= 1 and lag != last:
                        li = lag_index[lag]
                        if li >= 0:
                            lag_counts[u, f, li] += 1
                        last = lag
                    m += 1
        if exact:
            n_exact[u] += 1
            if n_exact[u] == n_ex:
                _to_fine_bins(u, ex_rate, ex_bits, ex_used, grid, rate_hist, ref_hist, lag_counts)
        next_ref[u] += 1


#: why ``_feed_spikes`` returns before the end of its spikes
FEED_DONE, FEED_UNKNOWN_UNIT, FEED_QUEUE_FULL = 0, 1, 2


@numba.jit(nopython=True, nogil=True, cache=True)
def _feed_spikes(samples, ids, start, lut, samples_per_bin, queue, pending, head_tail, state, lag_index, half, window):
    """Feed spikes ``start..`` (sample, unit id; in time order; id < 0 skipped) into the per-unit
    state, unit ids mapped to indices by ``lut`` (-1: not known yet); with ``queue``, each
    spike's (sample, unit index) also goes into the pending-snippet FIFO. One compiled call per
    chunk handles all its spikes. Returns (the index it returned at, why): at a unit the caller
    must register first, or a full FIFO it must grow."""
    cap = pending.shape[0]
    for i in range(start, samples.shape[0]):
        uid = ids[i]
        if uid < 0:
            continue
        if uid >= lut.shape[0] or lut[uid] < 0:
            return i, FEED_UNKNOWN_UNIT
        if queue and head_tail[1] - head_tail[0] >= cap:
            return i, FEED_QUEUE_FULL
        u = lut[uid]
        s = samples[i]
        _add_spike(u, s // samples_per_bin, state, lag_index, half, window)
        if queue:
            tail = head_tail[1]
            pending[tail % cap, 0] = s
            pending[tail % cap, 1] = u
            head_tail[1] = tail + 1
    return samples.shape[0], FEED_DONE


@numba.jit(nopython=True, nogil=True, cache=True)
def _add_snippet(ring, start, channels, wave, rate):
    """Move ``wave`` [T, K] towards the raw snippet starting at global sample ``start`` (ring
    indexed modulo its length) on ``channels`` (-1 padded).

    C4 removes each snippet's median per channel before averaging; the average is linear, so
    its result is this mean minus a constant per channel. ``waveform`` removes, once, the median
    of the mean instead: a slightly different constant (measured: up to ~3 % of the trough), which
    C4's own baseline step takes out again - only its choice of reference peak, made before that
    step, sees it. Each spike costs only this running-mean update: no per-spike median."""
    n_ring = ring.shape[0]
    t_len, n_k = wave.shape
    n_used = 0
    while n_used < n_k and channels[n_used] >= 0:
        n_used += 1
    for j in range(t_len):  # one ring row per sample: contiguous reads, one modulo per row
        row = ring[(start + j) % n_ring]
        for k in range(n_used):
            wave[j, k] += rate * (row[channels[k]] - wave[j, k])


@numba.jit(nopython=True, nogil=True, cache=True)
def _ring_write(raw, first, valid_from, ring, pending, head_tail, wave_n, wave_channels, wave, memory):
    """Copy raw rows ``[n, C]`` (global samples ``first`` ..) into ``ring`` (indexed modulo its
    length), then add to their units' mean waveforms the snippets of the pending spikes
    (``pending[k] = (sample, unit index)``, a FIFO in sample order between ``head_tail[0]`` and
    ``head_tail[1]``, indexed modulo its length) that are now complete; a snippet that starts
    before ``valid_from`` (the end of the last gap in the stream) or has scrolled out of the ring
    is skipped. One compiled call per chunk does the copy and every snippet update."""
    n_ring = ring.shape[0]
    n = raw.shape[0]
    for t in range(n):
        dst = ring[(first + t) % n_ring]
        src = raw[t]
        for c in range(src.shape[0]):
            dst[c] = src[c]
    end = first + n
    oldest = max(end - n_ring, valid_from)
    cap = pending.shape[0]
    head = head_tail[0]
    while head < head_tail[1]:
        s = pending[head % cap, 0]
        if s + WAVE_POST > end:
            break
        i = pending[head % cap, 1]
        head += 1
        if s - WAVE_PRE < oldest:
            continue
        wave_n[i] += 1
        _add_snippet(ring, s - WAVE_PRE, wave_channels[i], wave[i], 1.0 / min(wave_n[i], memory))
    head_tail[0] = head


#: de Bruijn multiply-and-lookup: the index of a 64-bit word's single set bit
_DEBRUIJN_CONSTANT = 0x03F79D71B4CB0A89
_DEBRUIJN = np.uint64(_DEBRUIJN_CONSTANT)
_DEBRUIJN_INDEX = np.zeros(64, np.int64)
for _i in range(64):
    _DEBRUIJN_INDEX[(((1 << _i) * _DEBRUIJN_CONSTANT) & 0xFFFFFFFFFFFFFFFF) >> 58] = _i


@numba.jit(nopython=True, nogil=True, cache=True)
def _exact_rows(rates, used, bits, tail, qs, n_lags, rows, n_ref):
    """Exact-mode 3D-ACG rows: rate-bin edges = numpy 'linear' quantiles of the recorded and tail
    rates; each used record adds its lag-presence bits to its rate bin."""
    values = np.concatenate((rates, tail))
    srt = np.sort(values)
    n = srt.shape[0]
    edges = np.empty(qs.shape[0])
    for j in range(qs.shape[0]):
        pos = (n - 1) * qs[j]
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        edges[j] = srt[lo] + (srt[hi] - srt[lo]) * (pos - lo)
    n_bins = rows.shape[0]
    for r in range(rates.shape[0]):
        if not used[r]:
            continue
        b = min(np.searchsorted(edges, rates[r]), n_bins - 1)
        n_ref[b] += 1
        for word in range(bits.shape[1]):  # visit set bits only: most lags hold no spike
            w = bits[r, word]
            while w:
                low = w & (~w + np.uint64(1))  # lowest set bit
                li = word * 64 + _DEBRUIJN_INDEX[(low * _DEBRUIJN) >> np.uint64(58)]
                rows[b, li] += 1.0
                w ^= low


class UnitFeatures(Stage):
    """Per-unit feature state (3D-ACG and mean waveform) for units identified by integer ids (any
    order of arrival). As a stage it takes each block's decided spikes with that block's raw data
    (``process``); a spike's waveform is final ``WAVE_POST`` samples after it, and the raw ring keeps
    the look-back its pending snippets need. It is off the decision path: spikes are published
    before their features are updated."""

    def __init__(
        self,
        n_channels: int,
        sample_rate_hz: float,
        acg_window_ms: float,
        wave_channels: int,
        decision_lag: int = DEFAULT_DECISION_LAG,
    ):
        """``decision_lag``: the most samples a spike can be older than the newest raw sample
        when it is fed in (detection look-ahead + match window): the raw ring holds a piece, a
        snippet and that lag, and no more, so the ring is small enough to fit in cache."""
        self.fs = sample_rate_hz
        #: C4 bins spike times in 1 ms bins of 30 samples (it assumes 30 kHz)
        self.samples_per_bin = max(1, int(round(sample_rate_hz / 1000)))
        self.n_channels = n_channels
        self.window = int(acg_window_ms)
        self.k = wave_channels
        self.index: dict[int, int] = {}
        self._lut = np.full(INITIAL_UNITS, -1, np.int64)  # unit id -> index (-1: none), for the kernels
        self.lock = threading.Lock()
        self._alloc(INITIAL_UNITS)
        # ring of the latest raw samples (enough for a snippet of any pending spike)
        need = RAW_PIECE + WAVE_PRE + WAVE_POST + decision_lag
        self.lookback_samples = WAVE_PRE + WAVE_POST + decision_lag
        self.decision_latency_samples = WAVE_POST
        self._raw = np.zeros((1 << (need - 1).bit_length(), n_channels), np.float32)
        # (sample, unit index) of spikes waiting for WAVE_POST samples: a FIFO ring, head/tail counts
        self._pending = np.zeros((PENDING_SPIKES, 2), np.int64)
        self._pending_ht = np.zeros(2, np.int64)
        self._raw_end = 0  # one past the newest sample written to the ring
        self._valid_from = 0  # the first sample after the last gap

    def _alloc(self, cap: int) -> None:
        def grow(name, shape, dtype, fill=0):
            old = getattr(self, name, None)
            new = np.full((cap, *shape), fill, dtype)
            if old is not None:
                new[: old.shape[0]] = old
            setattr(self, name, new)

        grow("ring", (RING_SPIKES,), np.int64)
        for name in ("n_seq", "seq0", "next_ref", "lost", "wave_n"):
            grow(name, (), np.int64)
        grow("n_exact", (), np.int64)
        grow("ex_rate", (EXACT_SPIKES,), np.float64)
        grow("ex_bits", (EXACT_SPIKES, LAG_WORDS), np.uint64)
        grow("ex_used", (EXACT_SPIKES,), np.bool_)
        grow("grid", (FINE_RATE_BINS + 1,), np.float64)  # log-rate edges of the fine bins
        grow("acg", (self.window,), np.int64)
        grow("rate_hist", (N_FINE,), np.int64)
        grow("ref_hist", (N_FINE,), np.int64)
        grow("lag_counts", (N_FINE, LAGS.size), np.int32)
        grow("wave", (WAVE_PRE + WAVE_POST, self.k), np.float32)
        grow("wave_channels", (self.k,), np.int32, -1)
        self.capacity = cap

    def unit_index(self, unit_id: int, channels: np.ndarray) -> int:
        i = self.index.get(unit_id)
        if i is None:
            if not 0 <= unit_id <= MAX_UNIT_ID:
                raise ValueError(f"unit id {unit_id}: ids must be 0 to {MAX_UNIT_ID}")
            i = len(self.index)
            if i == self.capacity:
                self._alloc(2 * self.capacity)
            self.index[unit_id] = i
            if unit_id >= self._lut.size:
                lut = np.full(max(2 * self._lut.size, unit_id + 1), -1, np.int64)
                lut[: self._lut.size] = self._lut
                self._lut = lut
            self._lut[unit_id] = i
            self.wave_channels[i, : min(self.k, channels.size)] = channels[: self.k]
        return i

    @property
    def memory_bytes_per_unit(self) -> int:
        arrays = (*SpikeTrainState._fields, "wave_n", "wave", "wave_channels")
        return sum(getattr(self, a).nbytes for a in arrays) // self.capacity

    # ----------------------------------------------------------------------------- updates
    def process(self, spikes: np.ndarray, channels_of, raw: np.ndarray, raw_first: int) -> None:
        """A block's decided spikes (records with ``sample`` and ``unit`` fields, unit < 0 ignored)
        and the raw block ``[n, C]`` (not filtered) that starts at ``raw_first``; ``channels_of(unit
        id)`` gives a new unit's waveform channels. The state is read with ``acg3d`` / ``waveform``."""
        self.update(spikes["sample"], spikes["unit"], channels_of, raw, raw_first)

    def update(
        self, samples: np.ndarray, units: np.ndarray, channels_of, raw: np.ndarray | None = None, raw_first: int = 0
    ) -> None:
        """Feed assigned spikes (sample index, unit id; in time order; unit < 0 ignored).
        ``channels_of(unit_id)`` gives a new unit's waveform channels. ``raw``: the raw (not
        filtered) block ``[n, C]`` starting at ``raw_first`` that was just processed."""
        if samples.shape != units.shape:
            raise ValueError(f"{samples.shape[0]} spike samples but {units.shape[0]} unit ids")
        # one kernel signature whatever the caller passes (fields of a record array are strided,
        # unit ids int32): a new signature would compile in the middle of a live run
        samples = np.ascontiguousarray(samples, np.int64)
        units = np.ascontiguousarray(units, np.int64)
        with self.lock:  # readers copy under it; snippets may complete even without new spikes
            at = 0
            while at < samples.size:
                at, why = _feed_spikes(
                    samples,
                    units,
                    at,
                    self._lut,
                    self.samples_per_bin,
                    raw is not None,
                    self._pending,
                    self._pending_ht,
                    self._train_state(),
                    LAG_INDEX,
                    SMOOTH_BINS // 2,
                    self.window,
                )
                if why == FEED_UNKNOWN_UNIT:
                    uid = int(units[at])
                    self.unit_index(uid, channels_of(uid))
                elif why == FEED_QUEUE_FULL:
                    self._grow_pending()
            if raw is not None:
                for a in range(
                    0, raw.shape[0], RAW_PIECE
                ):  # a long block: in pieces, so no pending snippet scrolls out
                    self._ring_add(raw[a : a + RAW_PIECE], raw_first + a)

    def _train_state(self) -> SpikeTrainState:
        """The per-unit arrays as the kernels take them (rebuilt per call: they grow with units)."""
        return SpikeTrainState(*(getattr(self, name) for name in SpikeTrainState._fields))

    def _grow_pending(self) -> None:
        """Double the pending-snippet FIFO, keeping its order."""
        pending, ht = self._pending, self._pending_ht
        head, tail = int(ht[0]), int(ht[1])
        grown = np.zeros((2 * pending.shape[0], 2), np.int64)
        grown[: tail - head] = pending[np.arange(head, tail) % pending.shape[0]]
        self._pending = grown
        ht[0], ht[1] = 0, tail - head

    def _ring_add(self, raw: np.ndarray, first: int) -> None:
        if first != self._raw_end:  # a gap: rows before ``first`` do not continue the stream
            if first < self._raw_end:  # the stream went back (a restarted source): nothing pending completes
                self._pending_ht[0] = self._pending_ht[1]
            self._valid_from = first
        self._raw_end = first + raw.shape[0]
        _ring_write(
            raw,
            first,
            self._valid_from,
            self._raw,
            self._pending,
            self._pending_ht,
            self.wave_n,
            self.wave_channels,
            self.wave,
            WAVE_MEMORY,
        )

    # ----------------------------------------------------------------------------- reading
    def spike_count(self, unit_id: int) -> int:
        i = self.index.get(unit_id)
        return 0 if i is None else int(self.n_seq[i])

    def plain_acg(self, unit_id: int) -> np.ndarray:
        """Spike counts at lags 1..window ms (the ACG is symmetric)."""
        return self.acg[self.index[unit_id]].copy()

    def _tail_snapshot(self, i: int) -> tuple[np.ndarray, int, int] | None:
        """Under the lock: the ring spikes (1 ms bins, sequence order) and which are unfinalised."""
        n, s0, k = int(self.n_seq[i]), int(self.seq0[i]), int(self.next_ref[i])
        if k >= n:
            return None
        return self.ring[i, np.arange(s0, n) % RING_SPIKES].copy(), k - s0, s0

    @staticmethod
    def _tail_rates(snapshot: tuple[np.ndarray, int, int] | None) -> np.ndarray:
        """Current (offline-as-of-now) rates of the spikes not finalised yet (the last second),
        from the ring spikes around them only."""
        from rtclass.features.c4 import instantaneous_rate

        if snapshot is None:
            return np.zeros(0)
        bins, k, s0 = snapshot
        half = SMOOTH_BINS // 2
        first_tail = bins[k]
        # start two spikes before the window of the first tail spike: its segments are then whole
        j0 = max(0, int(np.searchsorted(bins, first_tail - half, side="right")) - 2)
        if s0 > 0 or j0 > 0:
            base = int(bins[j0])
            part = bins[j0:] - base
            fr = instantaneous_rate(part, int(part[-1]) + 1)  # before j0's next segment: not needed
        else:  # the whole train is in the ring: the rate array starts at time 0, as offline
            base = 0
            fr = instantaneous_rate(bins, int(bins[-1]) + 1)
        csum = np.concatenate([[0.0], np.cumsum(fr)])
        tail = bins[k:] - base
        lo = np.maximum(tail - half, 0)
        hi = np.minimum(tail + half, fr.size)
        return (csum[hi] - csum[lo]) / (hi - lo)

    def acg3d(self, unit_id: int) -> np.ndarray:
        """C4's network input (10, 101) for this unit from the spikes seen so far."""
        with self.lock:  # copies only: the hot path waits for this lock
            i = self.index[unit_id]
            snapshot = self._tail_snapshot(i)
            n_ex = int(self.n_exact[i])
            exact = n_ex < EXACT_SPIKES
            if exact:
                rates, used, bits = (
                    self.ex_rate[i, :n_ex].copy(),
                    self.ex_used[i, :n_ex].copy(),
                    self.ex_bits[i, :n_ex].copy(),
                )
            else:
                g, hist = self.grid[i].copy(), self.rate_hist[i].copy()
                ref_hist, lag_counts = self.ref_hist[i].copy(), self.lag_counts[i].copy()
        tail = self._tail_rates(snapshot)
        if exact:
            rows = np.zeros((N_RATE_BINS, LAGS.size))
            n_ref = np.zeros(N_RATE_BINS)
            if n_ex + tail.size:
                _exact_rows(rates, used, bits, tail, _QUANTILES, LAGS.size, rows, n_ref)
            return _log_acg(rows / np.maximum(n_ref, 1)[:, None])
        else:
            inner = np.exp(0.5 * (g[:-1] + g[1:]))
            values = np.concatenate([[np.exp(g[0])], inner, [np.exp(g[-1])]])
            weights = hist.astype(np.float64)
            ref = ref_hist.astype(np.float32)
            lags = lag_counts.astype(np.float32)
        edges = _weighted_quantiles(
            np.concatenate([values, tail]),
            np.concatenate([weights, np.ones(tail.size)]),
            np.linspace(0, 1, N_RATE_BINS + 2)[1:-1],
        )
        which = np.minimum(np.searchsorted(edges, values, side="left"), N_RATE_BINS - 1)
        member = np.zeros((N_RATE_BINS, values.size), np.float32)
        member[which, np.arange(values.size)] = 1.0
        n = member @ ref  # reference spikes per rate bin
        return _log_acg((member @ lags) / np.maximum(n, 1)[:, None])

    def waveform(self, unit_id: int) -> np.ndarray | None:
        """C4's waveform input (90,) from the running mean raw snippet (None before any)."""
        with self.lock:
            i = self.index[unit_id]
            if self.wave_n[i] == 0:
                return None
            w = self.wave[i].copy()
        w -= np.median(w, axis=0)  # C4's per-snippet median removal, done once on the mean (see _add_snippet)
        swing = w.max(0) - w.min(0)
        if swing.max() <= 0:
            return None
        return preprocess_waveform(w[:, int(np.argmax(swing))])


_QUANTILES = np.linspace(0, 1, N_RATE_BINS + 2)[1:-1]
#: the log resampling restricted to the lags it reads
_LAG_RESAMPLING = LOG_RESAMPLING[LAGS - 1]


def _log_acg(rows_at_lags: np.ndarray) -> np.ndarray:
    """Probabilities at the LAGS -> C4's (10, 101) network input."""
    out = np.zeros((rows_at_lags.shape[0], N_LOG_LAGS + 1), np.float64)
    out[:, 1:] = rows_at_lags @ _LAG_RESAMPLING
    return (out * ACG_SCALE).astype(np.float32)


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """numpy's 'linear' quantiles of the multiset where each value appears ``weight`` times."""
    keep = weights > 0
    v, w = values[keep], weights[keep]
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    n = w.sum()
    if n == 0:
        return np.zeros(qs.size)
    last = np.cumsum(w) - 1  # position of each value's last copy in the sorted multiset
    pos = (n - 1) * qs
    lo = np.floor(pos)
    a = v[np.searchsorted(last, lo)]
    b = v[np.searchsorted(last, np.minimum(lo + 1, n - 1))]
    return a + (b - a) * (pos - lo)


def warm_up_unit_features() -> None:
    """Compile (or load from cache) every kernel of the feature path on a tiny unit, so the first
    live spikes and the first labelling round do not pay for it."""
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.integers(300, 3000, EXACT_SPIKES + 64)).astype(np.int64)
    raw = rng.normal(0, 1, (int(t[100]) + 200, 2)).astype(np.float32)
    bank = UnitFeatures(2, 30000.0, 10, 2)
    bank.update(t[:100], np.zeros(100, np.int64), lambda u: np.arange(2), raw[: int(t[99]) + 100], 0)
    bank.acg3d(0)  # fewer than EXACT_SPIKES spikes: the exact path
    bank.update(t[100:], np.zeros(t.size - 100, np.int64), lambda u: np.arange(2))
    bank.acg3d(0)  # the binned path
    bank.waveform(0)
