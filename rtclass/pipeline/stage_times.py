"""Per-stage timing of a live run: totals and a window of recent per-chunk times."""

from __future__ import annotations

import time

import numpy as np

#: per-chunk times kept for percentiles (a ring; older chunks only count in the totals)
WINDOW_CHUNKS = 100_000


class StageTimes:
    """Accumulates per-chunk durations (s) per stage; ``summary()`` in microseconds."""

    def __init__(self, stages: tuple[str, ...]):
        self.stages = stages
        self._ring = np.zeros((WINDOW_CHUNKS, len(stages) + 1))
        self._n = 0
        self.total_s = np.zeros(len(stages) + 1)
        self.over_budget = 0

    def record(self, durations_s: list[float], budget_s: float) -> None:
        row = self._ring[self._n % WINDOW_CHUNKS]
        row[:-1] = durations_s
        row[-1] = sum(durations_s)
        self.total_s += row
        if row[-1] > budget_s:
            self.over_budget += 1
        self._n += 1

    @property
    def chunks(self) -> int:
        return self._n

    def recent_total_us(self, last: int) -> np.ndarray:
        n = min(self._n, WINDOW_CHUNKS, last)
        idx = (self._n - 1 - np.arange(n)) % WINDOW_CHUNKS
        return self._ring[idx, -1] * 1e6

    def summary(self) -> dict[str, dict[str, float]]:
        n = min(self._n, WINDOW_CHUNKS)
        out = {}
        for i, name in enumerate((*self.stages, "total")):
            col = self._ring[:n, i] * 1e6
            out[name] = {
                "mean_us": float(self.total_s[i] / max(self._n, 1) * 1e6),
                "p50_us": float(np.percentile(col, 50)) if n else 0.0,
                "p99_us": float(np.percentile(col, 99)) if n else 0.0,
                "max_us": float(col.max()) if n else 0.0,
            }
        return out


class Stopwatch:
    """``lap()`` returns seconds since the previous lap."""

    def __init__(self) -> None:
        self._t = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        dt, self._t = now - self._t, now
        return dt


#: spike -> publish lags kept for the status percentiles (a ring of the most recent spikes)
LAG_WINDOW_SPIKES = 4096


class PublishLag:
    """The lag from each published spike's sample to its publication (ms): the data the decision
    waited for after the spike plus the processing, timed from the chunk's arrival in the pipeline
    (the transport from the sender is not in it)."""

    def __init__(self) -> None:
        self._ring_ms = np.zeros(LAG_WINDOW_SPIKES)
        self._n = 0

    def record(self, lags_ms: np.ndarray) -> None:
        lags_ms = lags_ms[-LAG_WINDOW_SPIKES:]
        idx = (self._n + np.arange(lags_ms.size)) % LAG_WINDOW_SPIKES
        self._ring_ms[idx] = lags_ms
        self._n += lags_ms.size

    def percentiles_ms(self, *q: float) -> list[float]:
        """The given percentiles of the recent lags (zeros before any spike)."""
        n = min(self._n, LAG_WINDOW_SPIKES)
        if n == 0:
            return [0.0] * len(q)
        return [float(v) for v in np.percentile(self._ring_ms[:n], q)]
