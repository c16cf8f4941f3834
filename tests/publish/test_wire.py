import numpy as np
import pytest
import zmq

from rtclass.publish.wire import (
    CELL_TYPE_NAMES,
    SPIKE_DTYPE,
    WireError,
    cell_type_code,
    decode_spikes,
    encode_spikes,
    spike_topic,
)
from rtclass.publish.zmq_pub import ZmqSpikePublisher
from tests.netutil import free_port


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


def test_publisher_splits_batches_by_cell_type_and_subscribers_filter_by_prefix():
    addr = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqSpikePublisher(addr)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.connect(addr)
    sub.setsockopt(zmq.SUBSCRIBE, b"spikes/PkC")  # PkC_ss and PkC_cs
    spikes = np.zeros(6, SPIKE_DTYPE)
    spikes["sample"] = np.arange(6)
    spikes["cell_type"] = [0, 1, 2, 1, 3, 0]
    got = []
    for _ in range(50):  # slow joiner: publish until the subscription is active
        pub.publish(spikes)
        if sub.poll(100):
            break
    while sub.poll(200):
        topic, payload = sub.recv_multipart()
        got.append((topic, decode_spikes(payload)["sample"].tolist()))
    assert (b"spikes/PkC_ss", [1, 3]) in got and (b"spikes/PkC_cs", [2]) in got
    assert all(t.startswith(b"spikes/PkC") for t, _ in got)
    sub.close()
    pub.close()
