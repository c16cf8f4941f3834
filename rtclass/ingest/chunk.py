"""The unit of data that flows from a source into the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Chunk:
    """A block of consecutive samples of every channel.

    data: float32 ``[n_samples, n_channels]`` in microvolts, C-contiguous.
    first_sample: index of ``data[0]`` on the stream's sample timeline (the one timeline every
        downstream result refers to).
    t_last: source clock time (s) of the last sample, carried to published spikes.
    gap_before: samples known to be missing just before this chunk (0 when contiguous).
    """

    data: np.ndarray
    first_sample: int
    t_last: float
    gap_before: int = 0

    @property
    def n_samples(self) -> int:
        return self.data.shape[0]

    @property
    def end_sample(self) -> int:
        """Index one past the last sample."""
        return self.first_sample + self.data.shape[0]


def join_chunks(parts: list[Chunk]) -> Chunk:
    """Consecutive chunks (none but the first with a gap before it) as one: the first's start and
    gap, the last's time."""
    first = parts[0]
    if len(parts) == 1:
        return first
    return Chunk(np.concatenate([p.data for p in parts]), first.first_sample, parts[-1].t_last, first.gap_before)
