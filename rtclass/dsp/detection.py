"""Online spike detection stage: adaptive threshold, locally exclusive peaks."""

from __future__ import annotations

import math

import numpy as np

from rtclass.config import DetectConfig
from rtclass.dsp.detect_kernels import (
    WARMUP_END,
    detect_params,
    detect_stream,
)
from rtclass.stage import Stage, ms_to_samples

#: samples of new data the detector's buffer takes before its history moves back to the front
#: (small, so that the buffer stays in cache; a call with more data grows it)
BUFFER_SAMPLES = 240
#: record of one detected peak
#: (``strong``: at least ``threshold_sd`` deep; a weaker peak was found below it, on a channel
#: where a known unit peaks, and counts only if the matcher gives it to a unit)
PEAK_DTYPE = np.dtype([("sample", "<i8"), ("channel", "<i2"), ("amplitude", "<f4"), ("strong", "?")])


#: the (shared, read-only) result of a call that finds nothing
NO_PEAKS = np.zeros(0, PEAK_DTYPE)
NO_PEAKS.flags.writeable = False


class ThresholdDetector(Stage):
    """Finds negative peaks in filtered, referenced data.

    A peak at sample t is reported once sample t + sweep has arrived (sweep = exclude_sweep_ms),
    so detection adds exactly ``sweep`` samples of latency. The noise level of each channel is a
    running MAD estimate (see ``detect_kernels``); detection starts after the warm-up.
    Echoes (the causal filter's second trough, a large spike's late arrival on farther
    contacts) are suppressed, see ``detect_kernels``.
    State: the last ``history`` samples, the noise histograms and thresholds, the last
    accepted peak per channel. After ``process``, ``work`` holds the history plus the new data
    (``work[0]`` at global index ``work_first``).
    """

    def __init__(
        self, cfg: DetectConfig, neighbours: np.ndarray, suppress: np.ndarray, sample_rate_hz: float, history: int = 0
    ):
        """neighbours / suppress: ``Probe.neighbours`` within the exclusion radius and within the
        echo-suppression radius. history: samples of past data to keep in ``work`` beyond the
        detector's own need (2 * sweep), for later stages that look back (the matcher)."""
        self.cfg = cfg
        self.neighbours = np.ascontiguousarray(neighbours, dtype=np.int32)
        self.suppress = np.ascontiguousarray(suppress, dtype=np.int32)
        self.n_channels = self.neighbours.shape[0]
        self.fs = sample_rate_hz
        self.sweep = ms_to_samples(cfg.exclude_sweep_ms, sample_rate_hz)
        self.update = max(1, ms_to_samples(cfg.noise_update_ms, sample_rate_hz))
        self.warmup = int(math.ceil(cfg.noise_warmup_ms * 1e-3 * sample_rate_hz / self.update)) * self.update
        decay = math.exp(-cfg.noise_update_ms * 1e-3 / cfg.noise_time_constant_s)
        self.history = max(history, 2 * self.sweep)
        #: a peak is final once ``sweep`` samples after it have been seen (none deeper nearby)
        self.decision_latency_samples = self.sweep
        self.lookback_samples = 2 * self.sweep
        self.refractory = ms_to_samples(cfg.echo_refractory_ms, sample_rate_hz)
        self._params = detect_params(
            cfg.threshold_sd,
            cfg.noise_bin_uv,
            decay,
            cfg.noise_subsample,
            self.update,
            0,
            self.refractory,
            cfg.echo_ratio,
        )
        #: each channel's threshold in noise SDs: ``threshold_sd``, lower on known units' peak
        #: channels (``use_template_channels``)
        self.channel_threshold_sd = np.full(self.n_channels, cfg.threshold_sd, np.float32)
        self._capacity = 0
        self.reset()

    def use_template_channels(self, channels: np.ndarray) -> None:
        """From now on detect down to ``template_threshold_sd`` on these channels (where known
        units peak; the others go back to ``threshold_sd``): a known template lets the matcher
        tell a small unit's spike from noise."""
        self.channel_threshold_sd[:] = self.cfg.threshold_sd
        self.channel_threshold_sd[channels] = min(self.cfg.template_threshold_sd, self.cfg.threshold_sd)
        finite = np.isfinite(self.noise_sd)
        self.threshold[finite] = self.channel_threshold_sd[finite] * self.noise_sd[finite]

    def reset(self) -> None:
        self._buf = np.zeros((self.history + BUFFER_SAMPLES, self.n_channels), np.float32)
        self._len = self.history  # valid rows in _buf: history + the last call's data
        self._intake: np.ndarray | None = None  # the view the last ``intake`` handed out
        self.work = self._buf[: self.history]
        self.work_first = -self.history
        self.hist = np.zeros((self.n_channels, self.cfg.noise_n_bins), np.float32)
        self.noise_sd = np.full(self.n_channels, np.inf, np.float32)
        self.threshold = np.full(self.n_channels, np.inf, np.float32)
        self.noise_from = 0  # global index from which the current noise_sd applies
        self.last_t = np.full(self.n_channels, np.iinfo(np.int64).min // 2, np.int64)
        self.last_amp = np.zeros(self.n_channels, np.float32)
        self.started_at: int | None = None

    @property
    def ready(self) -> bool:
        """True once thresholds exist (after the warm-up)."""
        return bool(np.isfinite(self.threshold).any())

    def _outputs(self, n_new: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # peaks on one channel are more than `sweep` samples apart: this bound cannot overflow
        need = self.n_channels * (n_new // (self.sweep + 1) + 1)
        if need > self._capacity:
            self._capacity = need
            self._out_s = np.empty(need, np.int64)
            self._out_c = np.empty(need, np.int16)
            self._out_a = np.empty(need, np.float32)
            self._out_strong = np.empty(need, np.bool_)
        return self._out_s, self._out_c, self._out_a, self._out_strong

    def intake(self, n_new: int) -> np.ndarray:
        """A writable view ``[n_new, C]`` of the buffer where the next call's samples go: the
        stage before the detector can write its output there, and ``process`` (given this very
        view) then skips copying it."""
        h = self.history
        # new data goes after the last call's; only when the buffer is full does the history
        # (the last h rows) move to its front - not on every call (a 1 ms chunk would move as
        # many bytes of history as it brings)
        if self._len + n_new > self._buf.shape[0]:
            if h + n_new > self._buf.shape[0]:
                grown = np.zeros((h + max(n_new, BUFFER_SAMPLES), self.n_channels), np.float32)
                grown[:h] = self._buf[self._len - h : self._len]
                self._buf = grown
            else:
                self._buf[:h] = self._buf[self._len - h : self._len]
            self._len = h
        self._intake = self._buf[self._len : self._len + n_new]
        return self._intake

    def process(self, data: np.ndarray, first_sample: int) -> np.ndarray:
        """Feed float32 [n, C] samples starting at global index ``first_sample``; returns the
        peaks (PEAK_DTYPE records) that became decidable, in time order."""
        if self.started_at is None:
            self.started_at = first_sample
            # warm-up ends on an update boundary of the global timeline
            end = first_sample + self.warmup
            self._params[WARMUP_END] = -(-end // self.update) * self.update
        n_new = data.shape[0]
        if data is not self._intake:
            self.intake(n_new)[:] = data
        self._intake = None
        start = self._len - self.history
        self._len += n_new
        work = self._buf[start : self._len]
        out_s, out_c, out_a, out_strong = self._outputs(n_new)
        n = detect_stream(
            work,
            n_new,
            first_sample,
            self.sweep,
            self.neighbours,
            self.suppress,
            self.hist,
            self.noise_sd,
            self.channel_threshold_sd,
            self.threshold,
            self.last_t,
            self.last_amp,
            self._params,
            out_s,
            out_c,
            out_a,
            out_strong,
        )
        self.work = work  # valid until the next call
        boundary = (first_sample + n_new) // self.update * self.update
        if boundary > first_sample and boundary >= self._params[WARMUP_END]:
            self.noise_from = int(boundary)  # noise_sd was refreshed at this sample
        self.work_first = first_sample - self.history
        if n == 0:
            return NO_PEAKS
        peaks = np.empty(n, PEAK_DTYPE)
        peaks["sample"] = out_s[:n]
        peaks["channel"] = out_c[:n]
        peaks["amplitude"] = out_a[:n]
        peaks["strong"] = out_strong[:n]
        return peaks
