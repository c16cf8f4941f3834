"""ZMQ PUB of labeled spikes, wire format v1 (see ``wire``)."""

from __future__ import annotations

import numpy as np
import zmq

from rtclass.ingest.zmq import CLOSE_LINGER_MS, bind_socket
from rtclass.publish.publisher import Publisher
from rtclass.publish.wire import FEATURES_TOPIC, STATUS_TOPIC, UNITS_TOPIC, encode_spikes, spike_topic


def connect_address_for(bind_address: str) -> str:
    """Where a subscriber on this machine connects to a socket bound at ``bind_address`` (a
    wildcard bind is reached on loopback)."""
    return bind_address.replace("://0.0.0.0:", "://127.0.0.1:").replace("://*:", "://127.0.0.1:")


class ZmqSpikePublisher(Publisher):
    """One message per cell type present in a batch, so subscribers filter by topic prefix.
    ``messages_by_topic`` counts what was handed to ZMQ per topic (the status carries it, so that a
    subscriber can tell what it missed: a PUB socket drops silently for a subscriber whose queue is
    full)."""

    def __init__(self, address: str):
        self.address = address
        self._sock = bind_socket(zmq.Context.instance(), zmq.PUB, address, "the spike publisher")
        self.messages = 0  # spike messages
        self.messages_by_topic: dict[str, int] = {}

    def _send(self, topic: bytes, payload: bytes) -> None:
        self._sock.send_multipart([topic, payload])
        name = topic.decode()
        self.messages_by_topic[name] = self.messages_by_topic.get(name, 0) + 1

    def publish(self, spikes: np.ndarray) -> None:
        if spikes.size == 0:
            return
        codes = spikes["cell_type"]
        first = codes[0]
        if (codes == first).all():
            self._send(spike_topic(int(first)), encode_spikes(spikes))
            self.messages += 1
            return
        for code in np.unique(codes):
            self._send(spike_topic(int(code)), encode_spikes(spikes[codes == code]))
            self.messages += 1

    def publish_counts(self, messages: list[list[bytes]]) -> None:
        for topic, payload in messages:
            self._send(topic, payload)

    def publish_units(self, table_json: bytes) -> None:
        self._send(UNITS_TOPIC, table_json)

    def publish_status(self, status_json: bytes) -> None:
        self._send(STATUS_TOPIC, status_json)

    def publish_features(self, records: np.ndarray) -> None:
        self._send(FEATURES_TOPIC, np.ascontiguousarray(records).tobytes())

    def published_by_topic(self) -> dict[str, int]:
        return dict(self.messages_by_topic)

    @property
    def endpoint(self) -> str:
        """The bound address (the real port when bound to ``:*``)."""
        return self._sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def close(self) -> None:
        self._sock.close(linger=CLOSE_LINGER_MS)
