"""Sources of raw data. ``make_source`` turns a ``--source`` string into one."""

from __future__ import annotations

from pathlib import Path

from rtclass.config import Config
from rtclass.errors import InputError
from rtclass.ingest.base import Source, SourceStats, StreamInfo

SOURCE_FORMS = "lsl:NAME, zmq://HOST:PORT, openephys://HOST:PORT, file:PATH.ap.bin"


def make_source(spec: str, cfg: Config) -> Source:
    """``lsl:NAME`` | ``zmq://HOST:PORT`` | ``openephys://HOST:PORT`` | ``file:PATH`` (or a path to a
    ``.bin``). A live source's chunks are joined into ``[source] batch_ms`` blocks when it is set."""
    source = _unbatched_source(spec, cfg)
    from rtclass.ingest.replay import FileSource

    if cfg.source.batch_ms > 0 and not isinstance(source, FileSource):  # a file reads chunk_ms blocks
        from rtclass.ingest.batching import BatchedSource

        return BatchedSource(source, cfg.source.batch_ms)
    return source


def _unbatched_source(spec: str, cfg: Config) -> Source:
    src, probe = cfg.source, cfg.probe
    if spec.startswith("lsl:"):
        from rtclass.ingest.lsl import LslSource

        name = spec[4:]
        if not name:
            raise InputError("--source lsl: needs a stream name, e.g. lsl:NP1")
        return LslSource(
            name,
            probe.n_channels,
            probe.sample_rate_hz,
            src.resolve_timeout_s,
            src.buffer_s,
            src.gap_tolerance_ms,
            src.int16_uv_per_bit,
        )
    if spec.startswith("zmq://"):
        from rtclass.ingest.zmq import ZmqSource

        return ZmqSource(
            "tcp://" + spec[6:], probe.n_channels, probe.sample_rate_hz, src.resolve_timeout_s, src.buffer_s
        )
    if spec.startswith("openephys://"):
        from rtclass.ingest.openephys import OpenEphysSource

        return OpenEphysSource(
            "tcp://" + spec[len("openephys://") :],
            probe.n_channels,
            probe.sample_rate_hz,
            src.resolve_timeout_s,
            src.buffer_s,
        )
    if spec.startswith("file:") or spec.endswith(".bin"):
        from rtclass.ingest.replay import FileSource

        return FileSource(Path(spec[5:] if spec.startswith("file:") else spec), src.chunk_ms, src.speed)
    raise InputError(f"unknown source {spec!r}; use one of {SOURCE_FORMS}")


__all__ = ["Source", "SourceStats", "StreamInfo", "make_source", "SOURCE_FORMS"]
