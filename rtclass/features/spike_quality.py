"""C4's spike filtering before features: only the recording sections where a unit has few
refractory violations (false positives) and few missed spikes (false negatives) feed its 3D-ACG.

Defined as npyx 4.3.1 does it (``npyx.spk_t.train_quality`` / ``trn_filtered``, called by C4's
``predict_cell_types`` with ``period_m=None`` and ``consecutive_n_seconds=180``):

* The period is split into 10 s chunks; window ``i`` spans chunks ``i .. i+2`` (30 s, sliding by
  10 s; the last windows reach past the period's end). A window is judged only if it holds more
  than 15 spikes.
* **False negatives**: the amplitudes of the window's spikes are binned (Freedman-Diaconis), the
  histogram extended with empty bins down to 0, and a Gaussian cut below a threshold is fitted
  (start: the histogram's peak, the mode's left bin edge, the amplitudes' sd and 1st percentile).
  The fraction of that Gaussian below the cut is the missed fraction; the window passes if it is at
  most ``fn_max`` (5 %). A failed fit fails the window.
* **False positives**: refractory violations (inter-spike intervals under 0.8 ms, exact duplicates
  removed) over ``2 * n * 0.8 ms``, divided by the unit's mean rate (1 / mean ISI over the whole
  train, ISIs above their 99.5th percentile left out); the window passes at most ``fp_max`` (5 %).
* A unit with at most 300 spikes, or fewer than 2 passing windows of either kind, has no good
  spikes. Otherwise each 10 s chunk is good for a kind if any window overlapping it passed, and a
  spike is good if its chunk is good for both (spikes exactly on a chunk edge are not).
* The good spikes count only if their runs (consecutive good spikes) span more than
  ``min_good_s`` (C4: 180 s) in total.

The live pipeline applies the same function to each unit's spikes so far
(``SpikeQualityFilter``), with the period ending at the last complete 10 s chunk; windows that
ended before it are judged once and remembered.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np

from rtclass.stage import Stage

#: C4's chunk, and the chunks one window spans
CHUNK_S = 10.0
WINDOW_CHUNKS = 3
#: inter-spike intervals under this are refractory violations
VIOLATION_S = 0.0008
#: a window is judged only with more spikes than this
MIN_WINDOW_SPIKES = 15
#: a unit needs more spikes than this to have any good spike
MIN_UNIT_SPIKES = 300
#: windows of each kind that must pass (more than one)
MIN_PASSING_WINDOWS = 2
#: ISIs above this quantile are left out of the mean rate the violations are compared with
RATE_ISI_QUANTILE = 0.995
#: C4's defaults: largest false-positive and false-negative fractions, and good seconds a unit needs
C4_FP_MAX = 0.05
C4_FN_MAX = 0.05
C4_MIN_GOOD_S = 180.0
#: C4 ends the period at the last whole minute of the unit's train
C4_PERIOD_ROUND_S = 60.0
#: the histogram needs more bins than this for the Gaussian fit
MIN_FIT_BINS = 4
MAX_FIT_EVALUATIONS = 10000
#: a late-decided spike is sorted in among the unit's last this many spikes
SORT_BACK_SPIKES = 64


@dataclass(frozen=True)
class SpikeQuality:
    """Which of a unit's spikes C4 would use, and why (``reason`` is empty when it passes)."""

    good: np.ndarray  # bool per spike
    good_s: float  # the good spikes' runs, total duration
    fp_windows_passed: int
    fn_windows_passed: int
    windows: int
    reason: str

    @property
    def passes(self) -> bool:
        return not self.reason

    @property
    def all_good(self) -> bool:
        return self.passes and bool(self.good.all())


def _gaussian_cut(x, a, mu, sigma, x_cut):
    g = a * np.exp(-((x - mu) ** 2) / (2 * sigma**2))
    g[x < x_cut] = 0
    return g


def missed_percent(amplitudes: np.ndarray) -> float:
    """The percentage of a cut Gaussian fitted to these amplitudes that lies below its cut (NaN:
    too few histogram bins, or the fit failed)."""
    from scipy.optimize import OptimizeWarning, curve_fit  # noqa: PLC0415 - scipy.stats is slow to import
    from scipy.stats import iqr, norm  # noqa: PLC0415

    a = np.asarray(amplitudes, np.float64)
    spread = iqr(a, scale=1.0, nan_policy="omit")
    lo, hi = float(a.min()), float(a.max())
    if not spread > 0 or not hi > lo:
        return float("nan")
    n_bins = int((hi - lo) / (2 * spread / a.size ** (1 / 3)) + 1)
    if n_bins < MIN_FIT_BINS:
        return float("nan")
    counts, edges = np.histogram(a, bins=n_bins)
    mode = float(np.mean(edges[:-1][counts == counts.max()]))
    step = edges[1] - edges[0]
    centres = edges[:-1] + step / 2
    below = np.arange(0.0, centres[0] - step, step)  # empty bins down to 0
    x = np.concatenate([below, centres])
    y = np.concatenate([np.zeros(below.size), counts.astype(np.float64)])
    start = np.array([counts.max(), mode, np.nanstd(a), np.percentile(a, 1)], np.float64)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            fit = curve_fit(_gaussian_cut, x, y, start, maxfev=MAX_FIT_EVALUATIONS)[0]
    except RuntimeError:
        return float("nan")
    return round(100 * float(norm.cdf((fit[3] - fit[1]) / fit[2])), 2)


def mean_rate_hz(times_s: np.ndarray) -> float:
    """1 / the mean inter-spike interval, ISIs above their 99.5th percentile left out (npyx's)."""
    if times_s.size < 2:
        return 0.0
    isi = np.diff(times_s)
    isi = isi[isi <= np.quantile(isi, RATE_ISI_QUANTILE)]
    return round(1.0 / float(np.mean(isi)), 2)


def _false_positive_rates(times_s: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Per window (start, stop) exclusive: refractory violations over their expectation at the
    unit's mean rate."""
    unique = np.unique(times_s)
    violation = np.concatenate([[0], np.cumsum(np.diff(unique) < VIOLATION_S)])
    first = np.searchsorted(unique, starts, "right")
    last = np.searchsorted(unique, stops, "left")  # one past
    n = last - first
    rate = mean_rate_hz(times_s)
    out = np.zeros(starts.size)
    ok = n >= 2
    count = violation[np.maximum(last - 1, 0)] - violation[np.minimum(first, unique.size - 1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[ok] = count[ok] / (2 * n[ok] * VIOLATION_S) / rate
    return out


def _covered(passed: np.ndarray, n_chunks: int) -> np.ndarray:
    """Per chunk: does any window overlapping it pass."""
    out = np.zeros(n_chunks, bool)
    for k in range(WINDOW_CHUNKS):
        out[k : k + passed.size] |= passed
    return out


def _good_seconds(good: np.ndarray, times_s: np.ndarray) -> float:
    """Total span of the runs of consecutive good spikes (runs of one spike span nothing)."""
    edges = np.diff(np.concatenate([[0], good.astype(np.int8), [0]]))
    left = np.flatnonzero(edges == 1)
    right = np.flatnonzero(edges == -1) - 1
    keep = right > left
    return float(np.sum(times_s[right[keep]] - times_s[left[keep]]))


def spike_quality(
    times_s: np.ndarray,
    amplitudes: np.ndarray,
    period_end_s: float,
    fp_max: float = C4_FP_MAX,
    fn_max: float = C4_FN_MAX,
    min_good_s: float = C4_MIN_GOOD_S,
    fn_memo: dict[int, bool] | None = None,
    final_before_s: float = -np.inf,
) -> SpikeQuality:
    """C4's verdict on one unit's spikes (sorted times in s, one amplitude each) over the period
    ``[0, period_end_s]``. ``fn_memo``: false-negative verdicts of windows ending at or before
    ``final_before_s`` (their spikes can no longer change), read and filled, so a live caller fits
    each window once."""
    times_s = np.asarray(times_s, np.float64)
    if times_s.shape != np.shape(amplitudes):
        raise ValueError(f"{times_s.size} spike times but {np.size(amplitudes)} amplitudes")
    n_windows = max(0, int(period_end_s / CHUNK_S))
    nothing = np.zeros(times_s.size, bool)

    def verdict(good, fp_n, fn_n, reason):
        return SpikeQuality(good, _good_seconds(good, times_s), fp_n, fn_n, n_windows, reason)

    if times_s.size <= MIN_UNIT_SPIKES:
        return verdict(nothing, 0, 0, f"{times_s.size} spikes, C4 needs more than {MIN_UNIT_SPIKES}")
    starts = np.arange(n_windows) * CHUNK_S
    stops = starts + WINDOW_CHUNKS * CHUNK_S
    first = np.searchsorted(times_s, starts, "left")
    last = np.searchsorted(times_s, stops, "left")
    judged = (last - first) > MIN_WINDOW_SPIKES
    fp_pass = judged & (_false_positive_rates(times_s, starts, stops) <= fp_max)
    fn_pass = np.zeros(n_windows, bool)
    for i in np.flatnonzero(judged):
        known = fn_memo.get(i) if fn_memo is not None else None
        if known is None:
            missed = missed_percent(amplitudes[first[i] : last[i]])
            known = bool(missed <= fn_max * 100)  # NaN fails
            if fn_memo is not None and stops[i] <= final_before_s:
                fn_memo[i] = known
        fn_pass[i] = known
    n_fp, n_fn = int(fp_pass.sum()), int(fn_pass.sum())
    if n_fp < MIN_PASSING_WINDOWS or n_fn < MIN_PASSING_WINDOWS:
        return verdict(
            nothing,
            n_fp,
            n_fn,
            f"of {int(judged.sum())} windows judged, {n_fp} pass the refractory-violation test and {n_fn} the "
            f"missed-spike test; C4 needs {MIN_PASSING_WINDOWS} of each",
        )
    n_chunks = n_windows + WINDOW_CHUNKS - 1
    good_chunk = _covered(fp_pass, n_chunks) & _covered(fn_pass, n_chunks)
    chunk = np.floor(times_s / CHUNK_S).astype(np.int64)
    inside = (chunk < n_chunks) & (times_s != chunk * CHUNK_S)  # edges belong to no chunk
    good = np.zeros(times_s.size, bool)
    good[inside] = good_chunk[chunk[inside]]
    out = verdict(good, n_fp, n_fn, "")
    if not out.good_s > min_good_s:
        return verdict(nothing, n_fp, n_fn, f"{out.good_s:.0f} s of good sections, fewer than {min_good_s:g} s")
    return out


def c4_period_end_s(times_s: np.ndarray) -> float:
    """C4's period for a whole recording: up to the last whole minute of the unit's train."""
    return float(np.floor(times_s[-1] / C4_PERIOD_ROUND_S) * C4_PERIOD_ROUND_S) if times_s.size else 0.0


def labelled_acg_spikes(
    times_samples: np.ndarray,
    amplitudes: np.ndarray,
    sample_rate_hz: float,
    min_good_s: float,
    period_end_s: float | None = None,
) -> np.ndarray | None:
    """The spikes a live run builds a whole recording's 3D-ACG from (training sets, the offline
    labels a benchmark compares with): all of them while the unit cannot be judged
    (``MIN_UNIT_SPIKES`` or fewer), C4's good spikes once it can, ``None`` when the filter keeps
    too few (the live labeller proposes no label then, so such a unit is no training example).
    ``times_samples`` sorted; one amplitude per spike; the filter judges ``[0, period_end_s]``
    (default: C4's period, ``c4_period_end_s``)."""
    times_samples = np.asarray(times_samples)
    if times_samples.size <= MIN_UNIT_SPIKES:
        return times_samples
    times_s = times_samples / sample_rate_hz
    end_s = c4_period_end_s(times_s) if period_end_s is None else period_end_s
    quality = spike_quality(times_s, np.asarray(amplitudes, np.float64), end_s, min_good_s=min_good_s)
    return times_samples[quality.good] if quality.passes else None


class SpikeQualityFilter(Stage):
    """C4's spike filter on a live run: keeps each unit's spike samples and fitted amplitudes and
    judges them with ``spike_quality`` over the recording so far, cut at the last complete 10 s
    chunk, once per chunk and unit. The pipeline feeds it each block's decided spikes
    (``process``, cheap: the records wait in a list); the labeller thread reads the verdicts. Off
    the decision path, like the features."""

    def __init__(
        self, sample_rate_hz: float, fp_max: float, fn_max: float, min_good_s: float, decision_lag_samples: int = 0
    ):
        """``decision_lag_samples``: how much older than the end of its block a decided spike can
        be: a chunk is complete once the data has gone that far past its end."""
        self.fs = float(sample_rate_hz)
        self.fp_max, self.fn_max, self.min_good_s = fp_max, fn_max, min_good_s
        self.decision_latency_samples = int(decision_lag_samples)
        self.end_sample = 0  # one past the newest sample fed
        self._waiting: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._samples: dict[int, np.ndarray] = {}  # unit -> spike samples (grown by doubling; _n used)
        self._amplitudes: dict[int, np.ndarray] = {}
        self._n: dict[int, int] = {}
        self._memo: dict[int, dict[int, bool]] = {}  # unit -> final false-negative verdicts by window
        #: unit -> (chunks judged, spikes judged, verdict)
        self._verdicts: dict[int, tuple[int, int, SpikeQuality | None]] = {}
        self.lock = threading.Lock()

    def process(self, spikes: np.ndarray, end_sample: int) -> None:
        """A block's decided spikes (records with ``sample``, ``unit`` (< 0: none) and ``fit``, the
        fitted amplitude) and one past the block's last sample."""
        assigned = spikes[spikes["unit"] >= 0]
        with self.lock:
            if assigned.size:
                self._waiting.append((assigned["unit"].copy(), assigned["sample"].copy(), assigned["fit"].copy()))
            self.end_sample = max(self.end_sample, int(end_sample))

    def _take_waiting(self) -> None:
        with self.lock:
            waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        units = np.concatenate([w[0] for w in waiting])
        samples = np.concatenate([w[1] for w in waiting])
        amps = np.concatenate([w[2] for w in waiting])
        order = np.argsort(units, kind="stable")
        units, samples, amps = units[order], samples[order], amps[order]
        cuts = np.flatnonzero(np.diff(units)) + 1
        for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [units.size]])):
            self._append(int(units[a]), samples[a:b], amps[a:b])

    def _append(self, unit: int, samples: np.ndarray, amps: np.ndarray) -> None:
        n = self._n.get(unit, 0)
        have = self._samples.get(unit)
        if have is None or n + samples.size > have.size:
            size = max(1024, 2 * (n + samples.size))
            grown_s, grown_a = np.zeros(size, np.int64), np.zeros(size, np.float32)
            if have is not None:
                grown_s[:n], grown_a[:n] = have[:n], self._amplitudes[unit][:n]
            self._samples[unit], self._amplitudes[unit] = grown_s, grown_a
        self._samples[unit][n : n + samples.size] = samples
        self._amplitudes[unit][n : n + samples.size] = amps
        self._n[unit] = n + samples.size
        # the second spike of an overlapping pair can be decided after later spikes: keep time order
        tail = self._samples[unit][max(0, n - 1) : n + samples.size]
        if np.any(np.diff(tail) < 0):
            start = max(0, n - SORT_BACK_SPIKES)
            order = start + np.argsort(self._samples[unit][start : n + samples.size], kind="stable")
            self._samples[unit][start : n + samples.size] = self._samples[unit][order]
            self._amplitudes[unit][start : n + samples.size] = self._amplitudes[unit][order]

    def spikes_of(self, unit: int) -> np.ndarray:
        """The unit's spike samples fed so far (labeller thread)."""
        self._take_waiting()
        return self._samples.get(unit, np.zeros(0, np.int64))[: self._n.get(unit, 0)]

    def amplitudes_of(self, unit: int) -> np.ndarray:
        """The fitted amplitudes of ``spikes_of(unit)``."""
        self._take_waiting()
        return self._amplitudes.get(unit, np.zeros(0, np.float32))[: self._n.get(unit, 0)]

    def judge(self, unit: int) -> tuple[SpikeQuality | None, np.ndarray]:
        """(C4's verdict on the unit's spikes before the last complete chunk, those spikes); the
        verdict is None while it cannot be judged yet: C4 needs more than 300 spikes and a
        complete window. Called from one thread (the labeller's)."""
        samples = self.spikes_of(unit)
        chunks = int(max(0, self.end_sample - self.decision_latency_samples) / self.fs / CHUNK_S)
        period_end_s = chunks * CHUNK_S
        cached = self._verdicts.get(unit)
        if cached is not None and cached[0] == chunks:
            return cached[2], samples[: cached[1]]
        cut = int(np.searchsorted(samples, int(np.ceil(period_end_s * self.fs)), "left"))
        judged = samples[:cut]
        verdict = None
        if cut > MIN_UNIT_SPIKES and chunks >= WINDOW_CHUNKS:
            verdict = spike_quality(
                judged / self.fs,
                self.amplitudes_of(unit)[:cut],
                period_end_s,
                self.fp_max,
                self.fn_max,
                self.min_good_s,
                fn_memo=self._memo.setdefault(unit, {}),
                final_before_s=period_end_s,
            )
        self._verdicts[unit] = (chunks, cut, verdict)
        return verdict, judged
