"""LSL outlet of labeled spikes: irregular rate, double, 5 channels
``[sample, unit, channel, cell_type_code, confidence]``, timestamp = source time of the spike."""

from __future__ import annotations

import numpy as np

from rtclass.errors import PublishError
from rtclass.publish.publisher import Publisher

CHANNELS = ("sample", "unit", "channel", "cell_type_code", "confidence")
STREAM_TYPE = "Spikes"


def _labelled_outlet(info, labels):
    """An LSL outlet for ``info`` whose channels carry ``labels``; a clear error if LSL refuses."""
    import pylsl

    chans = info.desc().append_child("channels")
    for label in labels:
        chans.append_child("channel").append_child_value("label", label)
    try:
        return pylsl.StreamOutlet(info)
    except Exception as exc:
        raise PublishError(f"cannot create LSL outlet {info.name()!r}: {exc}") from exc


class LslSpikeOutlet(Publisher):
    def __init__(self, source_name: str):
        import pylsl

        self.name = f"{source_name}-spikes"
        info = pylsl.StreamInfo(
            self.name, STREAM_TYPE, len(CHANNELS), pylsl.IRREGULAR_RATE, pylsl.cf_double64, f"rtclass-{self.name}"
        )
        self._outlet = _labelled_outlet(info, CHANNELS)

    def publish(self, spikes: np.ndarray) -> None:
        n = spikes.size
        if n == 0:
            return
        values = np.empty((n, len(CHANNELS)))
        values[:, 0] = spikes["sample"]
        values[:, 1] = spikes["unit"]
        values[:, 2] = spikes["channel"]
        values[:, 3] = spikes["cell_type"]
        values[:, 4] = spikes["confidence"]
        self._outlet.push_chunk(values, spikes["t_source"].tolist())

    def close(self) -> None:
        del self._outlet


class LslCountsOutlet(Publisher):
    """Regular-rate LSL outlet ``<source>-counts``: one sample per bin, one float32 channel per cell
    type code (0 unlabeled .. 5 MFB), timestamped with the source time of the bin's end."""

    def __init__(self, source_name: str, bin_s: float):
        import pylsl

        from rtclass.publish.wire import CELL_TYPE_NAMES

        self.name = f"{source_name}-counts"
        info = pylsl.StreamInfo(
            self.name, "SpikeCounts", len(CELL_TYPE_NAMES), 1.0 / bin_s, pylsl.cf_float32, f"rtclass-{self.name}"
        )
        self._outlet = _labelled_outlet(info, CELL_TYPE_NAMES)

    def publish_counts_array(self, counts: np.ndarray, t_ends: np.ndarray) -> None:
        if counts.shape[0]:
            self._outlet.push_chunk(counts.astype(np.float32), t_ends.tolist())

    def close(self) -> None:
        del self._outlet
