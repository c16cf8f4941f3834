import numpy as np
import pytest

from rtclass.publish.wire import (
    CELL_TYPE_NAMES,
    COUNTS_DTYPE,
    COUNTS_PREFIX,
    NO_UNIT,
    SPIKE_DTYPE,
    SPIKES_PREFIX,
    UNITS_TOPIC,
    WIRE_VERSION,
    WireError,
    cell_type_code,
    decode_spikes,
    encode_spikes,
    spike_topic,
)


def test_record_layout_is_28_little_endian_bytes():
    rec = np.zeros(1, SPIKE_DTYPE)
    rec["sample"], rec["unit"], rec["channel"], rec["cell_type"] = 2**40 + 3, -1, 383, 2
    rec["confidence"], rec["t_source"] = 0.5, 12.25
    b = encode_spikes(rec)
    assert len(b) == 28
    assert int.from_bytes(b[:8], "little") == 2**40 + 3
    assert decode_spikes(b)[0] == rec[0]


def test_codes_and_topics():
    assert CELL_TYPE_NAMES[0] == "unlabeled" and cell_type_code("MFB") == 5
    assert spike_topic(1) == b"spikes/PkC_ss"
    with pytest.raises(WireError, match="unknown cell type"):
        cell_type_code("Purkinje")
    with pytest.raises(WireError, match="whole number"):
        decode_spikes(b"\0" * 27)


def test_the_dtypes_are_the_documented_contract():
    """What the README tells decoder authors to write without rtclass installed."""
    documented = np.dtype(
        [("sample", "<i8"), ("unit", "<i4"), ("channel", "<i2"), ("cell_type", "<i2"), ("confidence", "<f4")]
        + [("t_source", "<f8")]
    )
    assert SPIKE_DTYPE == documented
    assert COUNTS_DTYPE == np.dtype([("bin_start", "<i8"), ("bin_samples", "<i4"), ("count", "<i4")])
    assert COUNTS_DTYPE.itemsize == 16 and WIRE_VERSION == 1 and NO_UNIT == -1
    assert (SPIKES_PREFIX, UNITS_TOPIC, COUNTS_PREFIX) == (b"spikes/", b"units", b"counts/")


def test_decoding_is_a_view_of_the_payload_and_empty_is_empty():
    rec = np.zeros(3, SPIKE_DTYPE)
    rec["sample"] = [5, 6, 7]
    payload = encode_spikes(rec)
    got = decode_spikes(payload)
    assert got["sample"].tolist() == [5, 6, 7] and not got.flags.writeable
    assert decode_spikes(b"").size == 0 and encode_spikes(np.zeros(0, SPIKE_DTYPE)) == b""


def test_a_features_payload_that_is_not_whole_records_is_refused():
    from rtclass.publish.wire import ACG_LAGS_MS, FEATURES_DTYPE, decode_features

    assert FEATURES_DTYPE["acg3d"].shape == (10, 101) and FEATURES_DTYPE["waveform"].shape == (90,)
    assert ACG_LAGS_MS.size == 101 and ACG_LAGS_MS[0] == 0 and ACG_LAGS_MS[-1] == pytest.approx(1000.0)
    assert decode_features(b"").size == 0
    with pytest.raises(WireError, match="whole number"):
        decode_features(b"\x00" * (FEATURES_DTYPE.itemsize + 1))
