"""Wire format v1 of labeled spikes (ZMQ) — the contract with decoders.

A message is two frames ``[topic, payload]``:

* topic ``b"spikes/<cell_type>"`` (cell_type one of CELL_TYPE_NAMES), payload = packed
  little-endian records of SPIKE_DTYPE (28 bytes each), in sample order;
* topic ``b"units"``, payload = the unit table as UTF-8 JSON;
* topic ``b"counts/<cell_type>"``, payload = records of COUNTS_DTYPE (bin start sample, bin
  length in samples, spike count), one per bin that closed;
* topic ``b"status"``, payload = the pipeline's health counters as UTF-8 JSON (samples dropped,
  gaps, restarts, malformed, per-chunk time, spike -> publish lag, labeller and discovery state),
  a few times a second;
* topic ``b"features"``, payload = records of FEATURES_DTYPE: each labelled-so-far unit's
  classifier input (3D-ACG and normalised peak-channel waveform), after labelling rounds.

The last two were added within v1: a subscriber that selects its topics by prefix (as
``rtclass.client`` does) never sees them.

This module imports numpy (and rtclass.cell_types, which imports nothing) only, so a decoder
process that uses it stays light.
"""

from __future__ import annotations

import numpy as np

from rtclass.cell_types import CELL_TYPE_NAMES, LOG_LAG_DECADES, N_LOG_LAGS, N_RATE_BINS, WAVEFORM_SAMPLES

WIRE_VERSION = 1
SPIKE_DTYPE = np.dtype(
    [
        ("sample", "<i8"),
        ("unit", "<i4"),
        ("channel", "<i2"),
        ("cell_type", "<i2"),
        ("confidence", "<f4"),
        ("t_source", "<f8"),
    ]
)
assert SPIKE_DTYPE.itemsize == 28
SPIKES_PREFIX = b"spikes/"
UNITS_TOPIC = b"units"
#: binned counts: topic b"counts/<cell_type>", payload records of COUNTS_DTYPE, one per closed bin
COUNTS_PREFIX = b"counts/"
COUNTS_DTYPE = np.dtype([("bin_start", "<i8"), ("bin_samples", "<i4"), ("count", "<i4")])
STATUS_TOPIC = b"status"
FEATURES_TOPIC = b"features"
#: a unit's classifier input: the 3D-ACG (rate bins x lags, C4's layout) and the waveform (C4's
#: normalisation: peak at -1)
FEATURES_DTYPE = np.dtype(
    [
        ("unit", "<i4"),
        ("waveform", "<f4", (WAVEFORM_SAMPLES,)),
        ("acg3d", "<f4", (N_RATE_BINS, N_LOG_LAGS + 1)),
    ]
)
#: the lag (ms) of each 3D-ACG column in ``features``: C4's zero column, then the log-spaced lags
ACG_LAGS_MS = np.concatenate([[0.0], np.logspace(*LOG_LAG_DECADES, N_LOG_LAGS)])
#: unit id of spikes that belong to no unit
NO_UNIT = -1


class WireError(ValueError):
    """A message that is not wire format v1."""


def cell_type_code(name: str) -> int:
    try:
        return CELL_TYPE_NAMES.index(name)
    except ValueError:
        raise WireError(f"unknown cell type {name!r}; known: {', '.join(CELL_TYPE_NAMES)}") from None


def spike_topic(code: int) -> bytes:
    return SPIKES_PREFIX + CELL_TYPE_NAMES[code].encode()


def encode_spikes(records: np.ndarray) -> bytes:
    return np.ascontiguousarray(records, dtype=SPIKE_DTYPE).tobytes()


def decode_spikes(payload: bytes) -> np.ndarray:
    if len(payload) % SPIKE_DTYPE.itemsize:
        raise WireError(
            f"spike payload of {len(payload)} bytes is not a whole number of {SPIKE_DTYPE.itemsize}-byte records"
        )
    return np.frombuffer(payload, dtype=SPIKE_DTYPE)


def decode_features(payload: bytes) -> np.ndarray:
    if len(payload) % FEATURES_DTYPE.itemsize:
        raise WireError(
            f"features payload of {len(payload)} bytes is not a whole number of {FEATURES_DTYPE.itemsize}-byte records"
        )
    return np.frombuffer(payload, dtype=FEATURES_DTYPE)
