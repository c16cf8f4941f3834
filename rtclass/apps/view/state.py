"""What the browser view knows about a running pipeline, built from the messages a decoder gets.

``ViewState.ingest`` takes one ZMQ message (the frames of wire format v1: spikes, the unit table,
status, features) and keeps the latest unit table, probe, health counters and unit features, and
the spikes of the last ``RASTER_WINDOW_S`` for the raster. ``update_since`` gives a browser what
changed since its last update. No sockets here: the server feeds it, tests call it directly.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rtclass.publish.wire import (
    ACG_LAGS_MS,
    CELL_TYPE_NAMES,
    FEATURES_TOPIC,
    SPIKES_PREFIX,
    STATUS_TOPIC,
    UNITS_TOPIC,
    WireError,
    decode_features,
    decode_spikes,
)

#: seconds of spikes the raster shows (and a browser that connects gets at once)
RASTER_WINDOW_S = 10.0
#: at most this many spikes go to a browser in one update; more are thinned evenly (and counted)
MAX_SPIKES_PER_UPDATE = 6000
#: a pipeline whose status is older than this is shown as silent
SILENT_AFTER_S = 3.0
#: the sample rate assumed for the raster until the unit table says (Neuropixels AP band)
DEFAULT_SAMPLE_RATE_HZ = 30000.0
#: the colour of each cell type in the view (wire code order: unlabeled first); colour-blind-safe
#: hues (Okabe-Ito) with grey for unlabeled
CELL_TYPE_COLOURS = ("#9a9a9a", "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00")
assert len(CELL_TYPE_COLOURS) == len(CELL_TYPE_NAMES)


@dataclass
class _Counters:
    messages: int = 0
    malformed: int = 0
    last_error: str = ""
    by_topic: dict[str, int] = field(default_factory=dict)


class ViewState:
    """Thread-safe: the receiver thread ingests, the HTTP threads read."""

    def __init__(self, address: str = ""):
        self.address = address
        self._lock = threading.Lock()
        self.units: list[dict] = []
        self.units_version = 0
        self.probe: dict | None = None
        self.sample_rate_hz = DEFAULT_SAMPLE_RATE_HZ
        self.status: dict[str, Any] = {}
        self.status_received_at = 0.0  # monotonic; 0 before any
        self.features: dict[int, np.ndarray] = {}  # unit -> its FEATURES_DTYPE record
        self.counters = _Counters()
        # the raster: spike (sample, unit, cell type code) rows, appended in arrival order; a
        # browser's cursor is the count of rows appended when it last read
        self._spikes = np.zeros((0, 3), np.int64)
        self._appended = 0
        self._latest_sample = 0

    # ------------------------------------------------------------------------------ receiving
    def ingest(self, frames: list[bytes]) -> None:
        """One message; a malformed one is counted (and the last error kept), never raised."""
        with self._lock:
            self.counters.messages += 1
            try:
                self._ingest(frames)
            except (WireError, ValueError, KeyError, TypeError) as exc:
                self.counters.malformed += 1
                self.counters.last_error = f"{type(exc).__name__}: {exc}"

    def _ingest(self, frames: list[bytes]) -> None:
        if len(frames) != 2:
            raise WireError(f"a message of {len(frames)} frames (wire format v1 has 2)")
        topic, payload = frames
        kind = topic.split(b"/")[0].decode(errors="replace")
        self.counters.by_topic[kind] = self.counters.by_topic.get(kind, 0) + 1
        if topic.startswith(SPIKES_PREFIX):
            self._add_spikes(decode_spikes(payload))
        elif topic == UNITS_TOPIC:
            doc = json.loads(payload)
            self.units = list(doc["units"])
            self.units_version += 1
            if "probe" in doc:
                self.probe = doc["probe"]
            self.sample_rate_hz = float(doc.get("sample_rate_hz", self.sample_rate_hz))
        elif topic == STATUS_TOPIC:
            status = json.loads(payload)
            if not isinstance(status, dict):
                raise WireError("a status payload that is not a JSON object")
            self.status = status
            self.status_received_at = time.monotonic()
        elif topic == FEATURES_TOPIC:
            for record in decode_features(payload):
                self.features[int(record["unit"])] = record.copy()

    def _add_spikes(self, spikes: np.ndarray) -> None:
        if spikes.size == 0:
            return
        rows = np.column_stack([spikes["sample"], spikes["unit"], spikes["cell_type"]]).astype(np.int64)
        self._latest_sample = max(self._latest_sample, int(rows[:, 0].max()))
        keep_from = self._latest_sample - int(RASTER_WINDOW_S * self.sample_rate_hz)
        old = self._spikes
        kept = old[old[:, 0] >= keep_from] if old.size and old[0, 0] < keep_from else old
        self._spikes = np.concatenate([kept, rows])
        self._appended += rows.shape[0]

    # ------------------------------------------------------------------------------ reading
    def update_since(self, spike_cursor: int, units_version: int, with_probe: bool) -> tuple[dict, int]:
        """What a browser needs after it had spikes up to ``spike_cursor`` and the table of
        ``units_version``: status, the new spikes (thinned to MAX_SPIKES_PER_UPDATE), the unit
        table if it changed, the probe if asked. Returns the update and the new cursor."""
        with self._lock:
            new = self._appended - spike_cursor
            # the newest ``new`` rows, or all that are kept if some were trimmed meanwhile
            spikes = self._spikes[max(self._spikes.shape[0] - new, 0) :] if new > 0 else None
            thinned = 0
            if spikes is not None and spikes.shape[0] > MAX_SPIKES_PER_UPDATE:
                thinned = spikes.shape[0] - MAX_SPIKES_PER_UPDATE
                spikes = spikes[np.linspace(0, spikes.shape[0] - 1, MAX_SPIKES_PER_UPDATE).astype(np.int64)]
            age = time.monotonic() - self.status_received_at if self.status_received_at else None
            update: dict[str, Any] = {
                "status": self.status,
                "status_age_s": age,
                "silent": age is None or age > SILENT_AFTER_S,
                "sample_rate_hz": self.sample_rate_hz,
                "latest_sample": self._latest_sample,
                "spikes": spikes.tolist() if spikes is not None else [],
                "spikes_thinned": thinned,
                "view": {
                    "address": self.address,
                    "messages": self.counters.messages,
                    "malformed": self.counters.malformed,
                    "last_error": self.counters.last_error,
                    "units_with_features": len(self.features),
                },
            }
            if units_version != self.units_version:
                update["units"] = self.units
                update["units_version"] = self.units_version
            if with_probe and self.probe is not None:
                update["probe"] = self.probe
            return update, self._appended

    def unit_detail(self, unit_id: int) -> dict | None:
        """A unit's classifier input for the page (None if no labelling round has included it yet)."""
        with self._lock:
            record = self.features.get(unit_id)
            row = next((u for u in self.units if u.get("id") == unit_id), None)
        if record is None:
            return None
        acg = record["acg3d"]
        return {
            "id": unit_id,
            "unit": row,
            "waveform": np.round(record["waveform"].astype(float), 4).tolist(),
            "acg3d": np.round(acg.astype(float), 4).tolist(),
            "acg_mean": np.round(acg.mean(0).astype(float), 4).tolist(),
            "lags_ms": np.round(ACG_LAGS_MS, 3).tolist(),
        }


def page_constants() -> dict[str, Any]:
    """What the page needs to know about rtclass: the cell types (wire code order) and their colours."""
    return {
        "cell_types": list(CELL_TYPE_NAMES),
        "colours": list(CELL_TYPE_COLOURS),
        "raster_window_s": RASTER_WINDOW_S,
        "silent_after_s": SILENT_AFTER_S,
    }
