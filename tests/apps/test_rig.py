"""``rtclass rig``: the rig file's checks, and a rig of real `rtclass run` processes on 127.0.0.1:
two probes replaying files, one that cannot start; one probe killed mid-run is restarted into a
new folder; the combined unit table carries every unit with its probe id."""

import json
import os
import signal
import threading
import time

import pytest
import zmq

from rtclass.apps.rig import Rig, load_rig, rig_from_dict
from rtclass.client import RigSubscriber
from rtclass.errors import ConfigError
from rtclass.publish.wire import STATUS_TOPIC, UNITS_TOPIC
from tests.netutil import free_port


def _probe(i, **kw):
    return {"id": f"imec{i}", "source": f"lsl:NP{i}", "zmq_address": f"tcp://127.0.0.1:{5600 + i}", **kw}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"probe": [_probe(0)]}, "out is missing"),
        ({"rig": {"out": "x"}}, "no \\[\\[probe\\]\\]"),
        ({"rig": {"out": "x", "colour": 1}, "probe": [_probe(0)]}, "unknown key\\(s\\) colour"),
        ({"rig": {"out": "x"}, "probe": [_probe(0, gain=2)]}, "probe 1: unknown key\\(s\\) gain"),
        ({"rig": {"out": "x"}, "probe": [{"id": "a", "zmq_address": "tcp://127.0.0.1:1"}]}, "probe 1 has no source"),
        ({"rig": {"out": "x"}, "probe": [_probe(0), {**_probe(1), "id": "imec0"}]}, "share the id imec0"),
        (
            {"rig": {"out": "x"}, "probe": [_probe(0), {**_probe(1), "zmq_address": _probe(0)["zmq_address"]}]},
            "share the zmq_address",
        ),
        ({"rig": {"out": "x"}, "probe": [_probe(0, zmq_address="tcp://127.0.0.1:*")]}, "fixed port"),
        ({"rig": {"out": "x", "address": _probe(0)["zmq_address"]}, "probe": [_probe(0)]}, "also a probe's"),
        ({"rig": {"out": "x"}, "probe": [_probe(0, config="no-such-config")]}, "no-such-config"),
        ({"rig": {"out": "x"}, "section": {}, "probe": [_probe(0)]}, "unknown section"),
    ],
)
def test_a_bad_rig_file_says_what_is_wrong(doc, message):
    with pytest.raises(ConfigError, match=message):
        rig_from_dict(doc)


def test_a_rig_file_is_read_relative_to_its_folder(tmp_path):
    (tmp_path / "mine.toml").write_text("[run]\nduration_s = 5.0\n")
    path = tmp_path / "rig.toml"
    path.write_text(
        '[rig]\nout = "runs"\n[[probe]]\nid = "a"\nsource = "lsl:A"\nzmq_address = "tcp://127.0.0.1:5601"\n'
        'config = "mine.toml"\n'
    )
    spec = load_rig(path)
    assert spec.out == tmp_path / "runs" and spec.probes[0].config == str(tmp_path / "mine.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        path.write_text("[rig\n")
        load_rig(path)


def _copy_recording(recording, folder, name):
    """The same recording under another name (a probe each)."""
    folder.mkdir()
    for suffix in (".ap.bin", ".ap.meta"):
        (folder / f"{name}{suffix}").symlink_to(recording.with_name(recording.name.replace(".ap.bin", suffix)))
    return folder / f"{name}.ap.bin"


@pytest.mark.timeout(600)
def test_a_rig_runs_supervises_and_restarts_its_probes_and_combines_their_units(recording, tmp_path):
    files = [_copy_recording(recording, tmp_path / f"rec{i}", f"probe{i}") for i in range(2)]
    ports = [free_port() for _ in range(4)]
    probes = [
        {"id": f"imec{i}", "source": f"file:{f}", "zmq_address": f"tcp://127.0.0.1:{ports[i]}", "speed": 1.0}
        for i, f in enumerate(files)
    ]
    probes.append(
        {"id": "broken", "source": f"file:{tmp_path / 'missing.ap.bin'}", "zmq_address": f"tcp://127.0.0.1:{ports[2]}"}
    )
    rig_address = f"tcp://127.0.0.1:{ports[3]}"
    spec = rig_from_dict(
        {"rig": {"out": str(tmp_path / "runs"), "address": rig_address, "max_restarts": 1}, "probe": probes}
    )
    rig = Rig(spec)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, UNITS_TOPIC)
    sub.setsockopt(zmq.SUBSCRIBE, STATUS_TOPIC)
    sub.connect(rig_address)
    decoder = RigSubscriber({p["id"]: p["zmq_address"] for p in probes[:2]}, timeout_s=1.0)
    stop, result = threading.Event(), {}
    thread = threading.Thread(target=lambda: result.update(rig.run(stop)), daemon=True)
    thread.start()
    combined, spikes_from, killed = [], set(), False
    try:
        deadline = time.monotonic() + 400
        while thread.is_alive() and time.monotonic() < deadline:
            got = decoder.receive(0.05)
            if got is not None and got[1].size:
                spikes_from.add(got[0])
            while sub.poll(0):
                topic, payload = sub.recv_multipart()
                if topic == UNITS_TOPIC:
                    combined.append(json.loads(payload))
            imec0 = rig.probes["imec0"]
            if not killed and imec0.status.get("data_s", 0) > 0.5:
                os.kill(imec0.proc.pid, signal.SIGKILL)  # a crash mid-run
                killed = True
    finally:
        stop.set()
        thread.join(timeout=120)
        rig.close()
        decoder.close()
        sub.close()
    probes_health = result["probes"]
    assert (
        killed
        and probes_health["imec0"]["restarts"] == 1
        and probes_health["imec0"]["exit_codes"][0] == -signal.SIGKILL
    )
    assert probes_health["imec0"]["state"] == "finished"  # the restart ran to the end of its file
    assert (tmp_path / "runs" / "imec0-restart1" / "metrics.json").exists()
    assert probes_health["imec1"]["state"] == "finished" and probes_health["imec1"]["restarts"] == 0
    assert json.loads((tmp_path / "runs" / "imec1" / "metrics.json").read_text())["samples_in"] == 3 * 30000
    assert probes_health["broken"]["state"] == "failed" and probes_health["broken"]["exit_codes"] == [2, 2]
    seen = {row["probe"] for doc in combined for row in doc["units"]}
    assert seen == {"imec0", "imec1"}  # every probe's units, each with its probe id
    assert spikes_from == {"imec0", "imec1"}  # a decoder tells the probes apart
    assert decoder.units["imec1"].units  # and has each probe's own table
