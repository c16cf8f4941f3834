"""The one protocol every live output follows: the pipeline hands each of them every kind of
message, and a publisher that has no use for a kind ignores it (the base class's no-ops)."""

from __future__ import annotations

import numpy as np


class Publisher:
    """Base of the live outputs (ZMQ PUB, LSL outlets). Each method may be called from the
    pipeline's hot path: none may block on a slow consumer."""

    def publish(self, spikes: np.ndarray) -> None:
        """Decided spikes (SPIKE_DTYPE records), in sample order."""

    def publish_counts(self, messages: list[list[bytes]]) -> None:
        """Closed count bins as wire-format messages (``[topic, payload]`` per cell type)."""

    def publish_counts_array(self, counts: np.ndarray, t_ends: np.ndarray) -> None:
        """Closed count bins as an array ``[bins, cell type codes]`` with each bin's end time
        (source clock, s)."""

    def publish_units(self, table_json: bytes) -> None:
        """The unit table (UTF-8 JSON, wire format v1)."""

    def publish_status(self, status_json: bytes) -> None:
        """The health counters (UTF-8 JSON), a few times a second."""

    def publish_features(self, records: np.ndarray) -> None:
        """The labelled units' classifier input (FEATURES_DTYPE records), after a labelling round."""

    def published_by_topic(self) -> dict[str, int]:
        """Messages handed to the transport so far, per topic (none for outputs without topics)."""
        return {}

    def close(self) -> None:
        """Release the output (sockets, outlets)."""
