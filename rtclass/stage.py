"""What every signal stage declares, so that the chain can add up what it needs.

A stage is built from its frozen config section and owns its state. It declares

* ``lookback_samples``: how many samples before the newest it must still see (kept by whoever
  buffers its input), and
* ``decision_latency_samples``: how many samples after an event its result for that event is
  final (the chain's decision lag is the sum along the path),

and has one ``process(...)`` that returns a typed result. No stage does I/O: the pipeline feeds
it and publishes what it returns, and tests call it directly.
"""

from __future__ import annotations


class Stage:
    """Base of the signal stages: the two declarations, zero unless a stage says otherwise."""

    #: samples before the newest that the stage must still see
    lookback_samples: int = 0
    #: samples after an event before the stage's result for it is final
    decision_latency_samples: int = 0


def ms_to_samples(duration_ms: float, sample_rate_hz: float) -> int:
    """A duration in ms as a whole number of samples at ``sample_rate_hz`` (rounded)."""
    return int(round(duration_ms * 1e-3 * sample_rate_hz))
