"""The unit of data that flows from a source into the pipeline."""

from __future__ import annotations

from collections.abc import Callable
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


def join_contiguous(
    first: Chunk, next_chunk: Callable[[int], Chunk | None], max_samples: float
) -> tuple[Chunk, Chunk | None]:
    """``first`` joined with what ``next_chunk(samples so far)`` returns (None: nothing more now)
    until ``max_samples`` are in. A chunk with a gap before it ends the join: it is returned as
    the second item, to start the next one (else None)."""
    parts, n = [first], first.n_samples
    while n < max_samples:
        more = next_chunk(n)
        if more is None:
            break
        if more.gap_before:
            return join_chunks(parts), more
        parts.append(more)
        n += more.n_samples
    return join_chunks(parts), None
