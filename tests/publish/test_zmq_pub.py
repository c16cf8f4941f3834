"""The ZMQ PUB of labeled spikes (``rtclass.publish.zmq_pub``), wire format v1 on 127.0.0.1: one
message per cell type of a batch (subscribers filter by topic prefix), the unit table and the
counts on their topics, and a clear error when the port is taken."""

import json

import numpy as np
import pytest
import zmq

from rtclass.errors import PublishError
from rtclass.publish.counts import counts_messages
from rtclass.publish.publisher import Publisher
from rtclass.publish.wire import COUNTS_DTYPE, SPIKE_DTYPE, decode_spikes
from rtclass.publish.zmq_pub import ZmqSpikePublisher
from tests.netutil import free_port


def _subscriber(addr, *prefixes):
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(addr)
    for p in prefixes:
        sub.setsockopt(zmq.SUBSCRIBE, p)
    return sub


def _join(pub, sub, probe):
    """Slow joiner: publish ``probe`` until the subscription is live; drain what arrived."""
    for _ in range(100):
        probe()
        if sub.poll(50):
            break
    else:
        raise AssertionError("the subscription never became active")
    while sub.poll(100):
        sub.recv_multipart()


def _receive(sub, timeout_ms=300):
    got = []
    while sub.poll(timeout_ms):
        got.append(sub.recv_multipart())
    return got


def test_publisher_splits_batches_by_cell_type_and_subscribers_filter_by_prefix():
    addr = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqSpikePublisher(addr)
    assert isinstance(pub, Publisher)
    sub = _subscriber(addr, b"spikes/PkC")  # PkC_ss and PkC_cs
    spikes = np.zeros(6, SPIKE_DTYPE)
    spikes["sample"] = np.arange(6)
    spikes["cell_type"] = [0, 1, 2, 1, 3, 0]
    _join(pub, sub, lambda: pub.publish(spikes[1:2]))
    before = pub.messages
    pub.publish(spikes)
    got = [(topic, decode_spikes(payload)["sample"].tolist()) for topic, payload in _receive(sub)]
    assert sorted(got) == [(b"spikes/PkC_cs", [2]), (b"spikes/PkC_ss", [1, 3])]
    assert pub.messages - before == 4  # one per type present: unlabeled, PkC_ss, PkC_cs, MLI
    pub.publish(np.zeros(0, SPIKE_DTYPE))  # nothing to send: no message
    one_type = spikes[[1, 3]]
    pub.publish(one_type)
    assert pub.messages - before == 5
    ((topic, payload),) = _receive(sub)
    assert topic == b"spikes/PkC_ss" and decode_spikes(payload).tobytes() == one_type.tobytes()
    sub.close()
    pub.close()


def test_the_unit_table_and_counts_go_on_their_topics():
    pub = ZmqSpikePublisher("tcp://127.0.0.1:*")
    addr = pub.endpoint
    assert addr.startswith("tcp://127.0.0.1:") and not addr.endswith("*")  # the real port
    sub = _subscriber(addr, b"units", b"counts/MLI")
    table = json.dumps({"units": [{"id": 3, "cell_type": "MLI"}], "sample": 900}).encode()
    _join(pub, sub, lambda: pub.publish_units(table))
    pub.publish_units(table)
    counts = np.zeros((2, 6), np.int64)
    counts[:, 3] = [4, 7]
    pub.publish_counts(counts_messages(np.array([0, 600]), counts, 600))
    got = dict(_receive(sub))
    assert set(got) == {b"units", b"counts/MLI"}  # other types' counts filtered out by the subscriber
    assert json.loads(got[b"units"])["units"][0]["id"] == 3
    assert np.frombuffer(got[b"counts/MLI"], COUNTS_DTYPE)["count"].tolist() == [4, 7]
    sub.close()
    pub.close()


def test_a_port_in_use_is_a_publish_error_with_advice():
    addr = f"tcp://127.0.0.1:{free_port()}"
    first = ZmqSpikePublisher(addr)
    with pytest.raises(PublishError, match="in use"):
        ZmqSpikePublisher(addr)
    first.close()
    with pytest.raises(PublishError, match="check the address"):
        ZmqSpikePublisher("tcp://not an address")


def test_status_and_features_go_out_on_their_own_topics_and_decode():
    from rtclass.publish.wire import FEATURES_DTYPE, FEATURES_TOPIC, STATUS_TOPIC, decode_features

    addr = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqSpikePublisher(addr)
    sub = _subscriber(addr, STATUS_TOPIC, FEATURES_TOPIC)
    _join(pub, sub, lambda: pub.publish_status(b"{}"))
    records = np.zeros(2, FEATURES_DTYPE)
    records["unit"], records["waveform"][:, 30] = [5, 6], -1.0
    pub.publish_status(json.dumps({"samples_dropped": 3}).encode())
    pub.publish_features(records)
    got = dict((topic, payload) for topic, payload in _receive(sub))
    assert json.loads(got[STATUS_TOPIC]) == {"samples_dropped": 3}
    back = decode_features(got[FEATURES_TOPIC])
    assert back.tobytes() == records.tobytes() and back["unit"].tolist() == [5, 6]
    assert pub.messages_by_topic["status"] >= 2 and pub.messages_by_topic["features"] == 1
    spikes_only = _subscriber(addr, b"spikes/")  # what rtclass.client subscribes to: never these topics
    _join(pub, spikes_only, lambda: pub.publish(np.zeros(1, SPIKE_DTYPE)))
    pub.publish_status(b"{}")
    pub.publish_features(records)
    assert _receive(spikes_only) == []
    sub.close()
    spikes_only.close()
    pub.close()
