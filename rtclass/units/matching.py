"""Unit assignment stage: template matching of detected peaks (see ``match_kernels``)."""

from __future__ import annotations

import numba
import numpy as np

from rtclass.config import UnitsConfig
from rtclass.dsp.detection import PEAK_DTYPE
from rtclass.units.match_kernels import match_peaks
from rtclass.units.templates import TemplateBank

#: noise levels below this (uV) are taken as this (dead or not yet estimated channels)
NOISE_FLOOR_UV = 0.5
#: a detected spike with its unit (-1: unassigned): amplitude = trough depth at detection (uV),
#: fit = fitted template amplitude (uV trough depth on the unit's peak channel), score = energy the
#: template leaves unexplained over what noise alone would leave (~1 for a good match)
ASSIGNED_DTYPE = np.dtype(
    [("sample", "<i8"), ("unit", "<i4"), ("channel", "<i2"), ("amplitude", "<f4"), ("fit", "<f4"), ("score", "<f4")]
)


#: the (shared, read-only) result of a call that decides no spike
NOTHING = np.zeros(0, ASSIGNED_DTYPE)
NOTHING.flags.writeable = False


class TemplateMatcher:
    """Assigns each detected peak to a unit once ``post`` samples after it have arrived (the
    match window's end: this is the stage's added latency).

    State: the last few samples of filtered data (enough for any pending peak's window) and the
    peaks still waiting for their window. ``process`` returns the peaks it decided, in sample
    order, and keeps the unassigned ones' snippets for discovery in ``unassigned``.
    """

    def __init__(self, cfg: UnitsConfig, bank: TemplateBank, sweep: int, discovering: bool = False):
        self.cfg = cfg
        self.max_residual = cfg.discovery_max_residual if discovering else cfg.max_residual
        self.min_explained = cfg.discovery_min_explained if discovering else cfg.min_explained
        self.bank = bank
        self.max_shift = cfg.max_shift_samples
        self.post = bank.width - bank.pre
        #: past samples the matcher needs to see (the detector keeps them in its ``work``)
        self.history = bank.width + 2 * self.max_shift + sweep + 1
        self.pending = np.zeros(0, PEAK_DTYPE)
        ones = np.ones(bank.probe.n_channels, np.float32)
        self._inv_var, self._prev_inv_var, self._epoch = ones, ones, -1
        self.unassigned: list[tuple[int, int, np.ndarray]] = []  # (sample, channel, snippet [W, K])
        self.collect_unassigned = discovering

    def _weights(self, noise_sd: np.ndarray, noise_from: int) -> None:
        """Channel weights (inverse noise variance) per noise epoch: a peak is weighted with the
        noise levels in force at its own sample, whatever the chunking."""
        if noise_from != self._epoch:
            self._prev_inv_var, self._epoch = self._inv_var, noise_from
            self._inv_var = (1.0 / np.maximum(noise_sd, NOISE_FLOOR_UV) ** 2).astype(np.float32)

    def process(self, work: np.ndarray, work_first: int, peaks: np.ndarray, noise_sd: np.ndarray,
                noise_from: int) -> np.ndarray:
        """work: filtered samples ``[L, C]`` with ``work[0]`` at global index ``work_first``,
        covering at least ``history`` samples before the newest; peaks: newly detected;
        noise_sd: the noise level per channel (uV) in force from sample ``noise_from`` on."""
        self._weights(noise_sd, noise_from)
        if peaks.size == 0 and self.pending.size == 0:
            return NOTHING
        todo = np.concatenate([self.pending, peaks]) if self.pending.size else peaks
        samples = todo["sample"]  # in time order (the detector's order; pending ones are older)
        latest_ready = work_first + work.shape[0] - self.post - self.max_shift
        if samples[0] > latest_ready:  # the oldest is not ready: none is
            self.pending = todo
            return NOTHING
        n_ready = int(np.searchsorted(samples, latest_ready, side="right"))
        self.pending = todo[n_ready:]
        go = todo[:n_ready]
        earliest = work_first + self.bank.pre + self.max_shift
        if samples[0] < earliest:  # a window starting before the data we kept (stream start): not matchable
            go = go[go["sample"] >= earliest]
        n = go.size
        idx = np.full(n, -1, np.int32)
        fit = np.zeros(n, np.float32)
        score = np.zeros(n, np.float32)
        if n and self.bank.n:
            b = self.bank
            shift = np.empty(n, np.int32)
            match_peaks(
                work, work_first, go["sample"], go["channel"].astype(np.int64), b.candidates, b.local, b.waves, b.channels,
                b.norm2, b.amp, b.amp_n, b.matched, self._prev_inv_var, self._inv_var, self._epoch, b.pre,
                self.max_shift, self.max_residual, self.min_explained,
                self.cfg.amplitude_tolerance, self.cfg.adapt_spikes, idx, fit, score, shift,
            )
        out = np.empty(n, ASSIGNED_DTYPE)
        _assigned_records(go, idx, fit, score, self.bank.ids, out)
        if self.collect_unassigned:
            for s, c in zip(out["sample"][out["unit"] < 0], out["channel"][out["unit"] < 0]):
                t0 = s - work_first - self.bank.pre
                chans = self.bank.local_channels(int(c))
                self.unassigned.append((int(s), int(c), work[t0 : t0 + self.bank.width][:, chans].copy()))
        return out


@numba.jit(nopython=True, nogil=True, cache=True)
def _assigned_records(peaks, idx, fit, score, ids, out):
    """Fill ``out`` (ASSIGNED_DTYPE) from decided peaks and their match results (one compiled
    loop instead of a dozen structured-array field operations per call)."""
    for i in range(peaks.shape[0]):
        out[i].sample = peaks[i].sample
        out[i].channel = peaks[i].channel
        out[i].amplitude = -peaks[i].amplitude
        out[i].unit = ids[idx[i]] if idx[i] >= 0 else -1
        out[i].fit = fit[i]
        out[i].score = score[i]


def warm_up_matching() -> None:
    """Compile (or load from cache) the matching kernel on a tiny problem."""
    work = np.zeros((8, 1), np.float32)
    work[3, 0] = -1.0
    waves = np.zeros((1, 4, 1), np.float32)
    waves[0, 1, 0] = -1.0
    out = [np.zeros(1, np.int32), np.zeros(1, np.float32), np.zeros(1, np.float32), np.zeros(1, np.int32)]
    match_peaks(work, 0, np.array([3], np.int64), np.array([0], np.int64), np.zeros((1, 1), np.int32),
                np.zeros((1, 1), np.int32), waves,
                np.zeros((1, 1), np.int32), np.ones(1, np.float32), np.ones(1, np.float32), np.ones(1, np.int64),
                np.zeros(1, np.int64), np.ones(1, np.float32), np.ones(1, np.float32), 0, 1, 1, 2.0, 0.5, 0.5, 10, *out)
    _assigned_records(np.zeros(1, PEAK_DTYPE), np.zeros(1, np.int32), np.zeros(1, np.float32),
                      np.zeros(1, np.float32), np.zeros(1, np.int32), np.zeros(1, ASSIGNED_DTYPE))
