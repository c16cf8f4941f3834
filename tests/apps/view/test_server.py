"""The view server over real HTTP and ZMQ on 127.0.0.1: the page, its files, the state as JSON,
the Server-Sent Events stream, a unit's features, and bad requests."""

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import zmq

from rtclass.apps.view.server import ViewServer, subscribe_address
from rtclass.errors import InputError
from rtclass.publish.wire import (
    FEATURES_DTYPE,
    FEATURES_TOPIC,
    SPIKE_DTYPE,
    STATUS_TOPIC,
    UNITS_TOPIC,
    encode_spikes,
    spike_topic,
)

UNIT = {
    "id": 7,
    "peak_channel": 0,
    "x_um": 16.0,
    "y_um": 0.0,
    "cell_type": "MLI",
    "cell_type_code": 3,
    "confidence": 4.0,
    "firing_rate_hz": 12.0,
    "spike_count": 300,
    "merged_into": None,
}
PROBE = {"name": "np1", "contact_width_um": 12.0, "positions_um": [[16.0, 0.0], [48.0, 0.0]]}


@pytest.fixture
def pipeline_like():
    """A ZMQ PUB on 127.0.0.1 sending what a pipeline sends, every 50 ms, until the test ends."""
    sock = zmq.Context.instance().socket(zmq.PUB)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def send():
        sample = 0
        while not stop.wait(0.05):
            sample += 1500
            sock.send_multipart([UNITS_TOPIC, json.dumps({"units": [UNIT], "sample": sample, "probe": PROBE}).encode()])
            sock.send_multipart([STATUS_TOPIC, json.dumps({"data_s": sample / 30000, "samples_dropped": 0}).encode()])
            rec = np.zeros(3, SPIKE_DTYPE)
            rec["sample"], rec["unit"], rec["cell_type"] = sample + np.arange(3), 7, 3
            sock.send_multipart([spike_topic(3), encode_spikes(rec)])
            feat = np.zeros(1, FEATURES_DTYPE)
            feat["unit"], feat["waveform"][0, 30] = 7, -1.0
            sock.send_multipart([FEATURES_TOPIC, feat.tobytes()])

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{port}"
    stop.set()
    thread.join()
    sock.close(linger=0)


def _get(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def _wait_for_state(url, key, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc = json.loads(_get(url + "api/state")[2])
        if doc.get(key):
            return doc
        time.sleep(0.05)
    raise AssertionError(f"the view's state never had {key!r}")


def test_the_page_its_files_and_the_state_are_served(pipeline_like):
    with ViewServer(pipeline_like, port=0) as server:
        status, kind, body = _get(server.url)
        assert status == 200 and kind == "text/html" and b"rtclass" in body and b"uPlot.iife.min.js" in body
        for name, content_type in (
            ("view.js", "text/javascript"),
            ("uPlot.iife.min.js", "text/javascript"),
            ("view.css", "text/css"),
            ("uPlot.LICENSE.txt", "text/plain"),
        ):
            status, kind, body = _get(server.url + "static/" + name)
            assert status == 200 and kind == content_type and body
        doc = _wait_for_state(server.url, "units")
        assert doc["units"][0]["id"] == 7 and doc["probe"]["name"] == "np1"
        assert doc["status"]["samples_dropped"] == 0 and doc["spikes"]
        constants = json.loads(_get(server.url + "api/constants")[2])
        assert constants["cell_types"][3] == "MLI"


def test_events_push_the_state_then_what_changed(pipeline_like):
    with ViewServer(pipeline_like, port=0) as server:
        _wait_for_state(server.url, "units")
        with urllib.request.urlopen(server.url + "events", timeout=5) as r:
            assert r.headers.get("Content-Type") == "text/event-stream"
            updates = []
            while len(updates) < 3:
                line = r.readline()
                if line.startswith(b"data: "):
                    updates.append(json.loads(line[len(b"data: ") :]))
        assert "units" in updates[0] and "probe" in updates[0]
        assert "probe" not in updates[1]  # sent once per browser
        times = [u["status"]["data_s"] for u in updates]
        assert times[2] > times[0]  # the counters move
        new = [s[0] for s in updates[1]["spikes"] + updates[2]["spikes"]]
        assert new and min(new) > min(s[0] for s in updates[0]["spikes"])  # only the new spikes


def test_a_units_features_and_bad_requests(pipeline_like):
    with ViewServer(pipeline_like, port=0) as server:
        deadline = time.monotonic() + 10
        while server.state.unit_detail(7) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        detail = json.loads(_get(server.url + "api/unit/7")[2])
        assert detail["waveform"][30] == -1.0 and detail["unit"]["cell_type"] == "MLI"
        for path, code in (
            ("api/unit/99", 404),
            ("api/unit/seven", 400),
            ("static/../server.py", 404),
            ("static/%2e%2e/state.py", 404),
            ("nothing", 404),
        ):
            with pytest.raises(urllib.error.HTTPError) as err:
                _get(server.url + path)
            assert err.value.code == code, path


def test_a_busy_port_falls_back_to_a_free_one():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with ViewServer("tcp://127.0.0.1:1", port=port) as server:
            assert not server.url.endswith(f":{port}/")
            assert _get(server.url)[0] == 200
    finally:
        taken.close()


def test_the_view_reaches_a_wildcard_bind_on_loopback_and_refuses_a_port_picked_at_bind():
    assert subscribe_address("tcp://0.0.0.0:5560") == "tcp://127.0.0.1:5560"
    assert subscribe_address("tcp://127.0.0.1:5560") == "tcp://127.0.0.1:5560"
    with pytest.raises(InputError, match="fixed port"):
        subscribe_address("tcp://127.0.0.1:*")
