"""What every source shares: stream description, counters, and the Source protocol."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rtclass.ingest.chunk import Chunk

log = logging.getLogger("rtclass.ingest")


@dataclass(frozen=True)
class StreamInfo:
    """What a source learned about its stream when it opened."""

    name: str
    n_channels: int
    sample_rate_hz: float
    meta_path: Path | None = None  # a SpikeGLX .meta that describes the probe, when known
    raw_path: Path | None = None  # the raw file behind a file source (written to params.py)
    raw_n_channels: int = 0
    raw_dtype: str = "int16"


@dataclass
class SourceStats:
    """Counters a source keeps; reported in metrics.json and the live view."""

    samples_in: int = 0
    samples_dropped: int = 0
    gaps: int = 0
    chunks: int = 0
    malformed: int = 0
    #: times the stream started again (its sample index went back); each new segment continues the
    #: run's timeline, from the samples listed in ``segment_starts``
    restarts: int = 0
    #: times a sender stalled and then caught up (late samples, none lost)
    stalls: int = 0
    segment_starts: list[int] = field(default_factory=list)
    #: malformed messages by what was wrong with them (their sum is ``malformed``)
    malformed_by_kind: dict[str, int] = field(default_factory=dict)
    _logged: set = field(default_factory=set, repr=False)

    def new_segment(self, start_sample: int, what: str) -> None:
        """Count a restart of the stream (``what`` happened) whose samples continue the run's
        timeline from ``start_sample`` (logged the first time)."""
        self.restarts += 1
        self.segment_starts.append(start_sample)
        self.incident("restart", f"{what}; its samples continue this run's timeline from sample {start_sample}")

    def bad_message(self, kind: str, message: str) -> None:
        """Count one malformed message of ``kind`` (logged the first time)."""
        self.malformed += 1
        self.malformed_by_kind[kind] = self.malformed_by_kind.get(kind, 0) + 1
        self.incident(kind, message)

    def incident(self, kind: str, message: str) -> None:
        """Log the first occurrence of each kind of problem; later ones are only counted."""
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("%s (further %s problems are counted, not logged)", message, kind)

    def as_dict(self) -> dict[str, int | list[int] | dict[str, int]]:
        return {
            k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
            for k, v in vars(self).items()
            if not k.startswith("_")
        }


class Source(Protocol):
    """A live or replayed stream of Chunks.

    ``open()`` connects (or fails with a clear InputError) and describes the stream;
    ``read(timeout_s)`` returns the next Chunk, or None if none arrived within the timeout;
    ``finished`` is True once a finite source has delivered everything; ``close()`` releases it.
    """

    stats: SourceStats

    def open(self) -> StreamInfo: ...

    def read(self, timeout_s: float) -> Chunk | None: ...

    @property
    def finished(self) -> bool: ...

    def close(self) -> None: ...
