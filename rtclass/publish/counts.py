"""Binned spike counts per cell type, what decoders read (topic ``counts/<cell_type>``, LSL
outlet ``<source>-counts``)."""

from __future__ import annotations

import numpy as np

from rtclass.publish.wire import CELL_TYPE_NAMES, COUNTS_DTYPE, COUNTS_PREFIX


class SpikeCounter:
    """Counts spikes per cell type code in consecutive bins of ``bin_samples`` on the sample
    timeline. A bin closes once data up to ``lag_samples`` past its end has been processed (spikes
    are decided that long after they happen), so its count is final when it is published."""

    def __init__(self, bin_samples: int, lag_samples: int, n_types: int = len(CELL_TYPE_NAMES)):
        self.bin = bin_samples
        self.lag = lag_samples
        self.n_types = n_types
        self.start: int | None = None  # first sample of the oldest open bin
        self.open = np.zeros((0, n_types), np.int64)

    def process(self, samples: np.ndarray, codes: np.ndarray, processed_end: int) -> tuple[np.ndarray, np.ndarray]:
        """Add spikes (sample, cell_type_code); returns the bins that closed: (starts, counts [n, types])."""
        if self.start is None:
            self.start = (int(samples.min()) if samples.size else processed_end - self.lag) // self.bin * self.bin
        needed = max(0, (processed_end - self.start) // self.bin + 1)
        if needed > self.open.shape[0]:
            self.open = np.concatenate([self.open, np.zeros((needed - self.open.shape[0], self.n_types), np.int64)])
        if samples.size:
            k = (samples - self.start) // self.bin
            ok = (k >= 0) & (k < self.open.shape[0])  # spikes of bins already closed are too late to count
            np.add.at(self.open, (k[ok], codes[ok]), 1)
        n_closed = max(0, (processed_end - self.lag - self.start) // self.bin)
        n_closed = min(n_closed, self.open.shape[0])
        starts = self.start + self.bin * np.arange(n_closed)
        closed = self.open[:n_closed].copy()
        self.open = self.open[n_closed:]
        self.start += n_closed * self.bin
        return starts, closed


def counts_messages(starts: np.ndarray, counts: np.ndarray, bin_samples: int) -> list[list[bytes]]:
    """One ZMQ message per cell type: ``[b"counts/<type>", records]``."""
    out = []
    for code, name in enumerate(CELL_TYPE_NAMES):
        rec = np.zeros(starts.size, COUNTS_DTYPE)
        rec["bin_start"], rec["bin_samples"], rec["count"] = starts, bin_samples, counts[:, code]
        out.append([COUNTS_PREFIX + name.encode(), rec.tobytes()])
    return out
