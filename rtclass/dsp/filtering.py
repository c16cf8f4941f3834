"""Preprocessing stages: causal band-pass filter and common median reference."""

from __future__ import annotations

import numpy as np
from scipy.signal import butter

from rtclass.config import PreprocessConfig
from rtclass.dsp.filter_kernels import DENSITY, sosfilt_block, subtract_median_reference
from rtclass.stage import Stage

#: counting passes a row before the reference kernel falls back to a full selection (~4 are
#: needed on average; a fallback costs as much as ~80 passes)
MEDIAN_MAX_PASSES = 20


class BandpassFilter(Stage):
    """Causal Butterworth band-pass: a high-pass and a low-pass edge of separate orders, as
    second-order sections designed with scipy; per-channel state carried from chunk to chunk (no
    look-ahead, no margins, zero added latency).

    The high-pass edge defaults to first order, like Neuropixels 1.0's own AP-band filter: a
    causal third-order 300 Hz high-pass halves broad spikes (Golgi cells, Purkinje simple spikes)
    and rings after them with a second trough as deep as the first, which a detector then reports
    as a spike of its own."""

    def __init__(self, cfg: PreprocessConfig, n_channels: int, sample_rate_hz: float):
        fs = sample_rate_hz
        high = butter(cfg.highpass_order, cfg.bandpass_low_hz, btype="highpass", fs=fs, output="sos")
        low = butter(cfg.lowpass_order, cfg.bandpass_high_hz, btype="lowpass", fs=fs, output="sos")
        self.sos = np.concatenate([high, low]).astype(np.float32)
        self.n_channels = n_channels
        self.reset()

    def reset(self) -> None:
        n_sec = self.sos.shape[0]
        self.z0 = np.zeros((n_sec, self.n_channels), np.float32)
        self.z1 = np.zeros((n_sec, self.n_channels), np.float32)
        self._row = np.zeros(self.n_channels, np.float32)

    def process(self, data: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """float32 [n, C] in, filtered float32 [n, C] out (a new array, or written into ``out``)."""
        if out is None:
            out = np.empty_like(data)
        sosfilt_block(data, out, self.sos, self.z0, self.z1, self._row)
        return out


class CommonMedianReference(Stage):
    """Subtracts, at every time point, a median over all channels (in place).

    With an odd channel count the middle value; with an even one a value between the two middle
    values (numpy takes their midpoint; see ``subtract_median_reference``). The kernel's carried
    state (previous median, row mean and a density estimate) only speeds up finding it."""

    def __init__(self, n_channels: int):
        self.n_channels = n_channels
        self.reset()

    def reset(self) -> None:
        self.state = np.zeros(3, np.float64)
        self.state[DENSITY] = 1.0
        self._scratch = np.zeros(self.n_channels, np.float32)

    def process(self, data: np.ndarray) -> np.ndarray:
        subtract_median_reference(data, self.state, self._scratch, MEDIAN_MAX_PASSES)
        return data
