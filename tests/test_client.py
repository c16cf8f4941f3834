"""The decoder side: rtclass.client against the publisher, and binned counts."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from rtclass.client import RigSubscriber, Subscriber, UnitTable
from rtclass.publish.wire import SPIKE_DTYPE
from rtclass.publish.zmq_pub import ZmqSpikePublisher
from tests.netutil import free_port


def _spikes(n, seed=0):
    rng = np.random.default_rng(seed)
    s = np.zeros(n, SPIKE_DTYPE)
    s["sample"] = np.sort(rng.integers(0, 300000, n))
    s["unit"] = rng.integers(0, 8, n)
    s["cell_type"] = s["unit"] % 6
    s["channel"] = s["unit"] * 10
    return s


def test_subscriber_gets_exactly_the_spikes_of_its_cell_types():
    addr = f"tcp://127.0.0.1:{free_port()}"
    pub = ZmqSpikePublisher(addr)
    spikes = _spikes(2000)
    with Subscriber(addr, cell_types=["PkC_cs", "GoC"], timeout_s=2.0) as sub:
        # slow joiner: send probes of both types until both subscriptions are live
        probe = np.zeros(2, SPIKE_DTYPE)
        probe["cell_type"], probe["sample"] = [2, 4], -1
        seen = set()
        for _ in range(200):
            pub.publish(probe)
            b = sub.receive(0.05)
            if b is not None:
                seen |= set(b["cell_type"].tolist())
            if seen == {2, 4}:
                break
        while sub.receive(0.2) is not None:  # drain the probes
            pass
        for a in range(0, spikes.size, 100):
            pub.publish(spikes[a : a + 100])
        got = []
        while True:
            b = sub.receive(0.5)
            if b is None:
                break
            got.append(b)
    pub.close()
    got = np.concatenate(got)
    got = got[got["sample"] >= 0]
    want = spikes[np.isin(spikes["cell_type"], [2, 4])]
    assert np.array_equal(np.sort(got["sample"]), np.sort(want["sample"]))
    assert set(np.unique(got["cell_type"])) == {2, 4}


def test_unknown_cell_type_and_dead_address():
    with pytest.raises(ValueError, match="unknown cell type"):
        Subscriber("tcp://127.0.0.1:1", cell_types=["Purkinje"])
    from rtclass.client import SubscriberError

    with Subscriber(f"tcp://127.0.0.1:{free_port()}", timeout_s=0.3) as sub:
        with pytest.raises(SubscriberError, match="nothing from"):
            next(iter(sub))


def test_unit_table_channels_for_a_cell_type():
    table = UnitTable()
    table.update(
        b'{"units": [{"id": 1, "peak_channel": 10, "cell_type": "PkC_ss"}, '
        b'{"id": 2, "peak_channel": 40, "cell_type": "MLI"}, {"id": 3, "peak_channel": 12, "cell_type": "PkC_ss"}, '
        b'{"id": 4, "peak_channel": 14, "cell_type": "PkC_ss", "merged_into": 1}]}'
    )
    assert table.of_type("PkC_ss") == [1, 3]
    assert table.channels_for("PkC_ss").tolist() == [10, 12]
    pos = np.stack([np.zeros(64), np.arange(64) * 20.0], 1)
    assert table.channels_for("MLI", radius_um=20.0, positions_um=pos).tolist() == [39, 40, 41]


@pytest.mark.timeout(300)
def test_a_decoder_on_one_host_follows_probes_on_two_hosts(recording, tmp_path):
    """Two hosts, as two loopback addresses (127.0.0.1 and 127.0.0.2): on each, a sender and an
    `rtclass run` that publishes on that host's address; a decoder on the first subscribes to both
    and gets every probe's spikes, told apart by probe, and each probe's own unit table."""
    hosts = {"imec0": "127.0.0.1", "imec1": "127.0.0.2"}
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    publish = {pid: f"tcp://{host}:{free_port()}" for pid, host in hosts.items()}
    procs = []
    for pid, host in hosts.items():
        raw = f"zmq://{host}:{free_port()}"
        cfg = tmp_path / f"{pid}.toml"
        cfg.write_text("[publish]\nlsl = false\n[run]\nidle_timeout_s = 10\n")
        run_cmd = ["run", "--source", raw, "--zmq", publish[pid], "--config", str(cfg), "--duration", "3"]
        procs.append(_popen([*run_cmd, "--out", str(tmp_path / pid)], env))
        procs.append(_popen(["replay", str(recording), "--to", raw, "--speed", "1", "--wait", "60"], env))
    got: dict[str, list] = {pid: [] for pid in hosts}
    with RigSubscriber(publish, timeout_s=1.0) as decoder:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            batch = decoder.receive(0.1)
            if batch is not None and batch[1].size:
                got[batch[0]].append(batch[1])
        tables = decoder.units
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    for pid in hosts:
        assert got[pid], f"no spikes from {pid} on {hosts[pid]}"
        spikes = np.concatenate(got[pid])
        saved = np.load(tmp_path / pid / "spike_times.npy")
        # from the moment the decoder was subscribed, every spike that probe found, on its own timeline
        assert np.array_equal(np.sort(spikes["sample"]), saved[saved >= spikes["sample"].min()])
        # its own unit table, the last one sent at the end of its run: every unit its spikes name
        assert tables[pid].sample > 0, f"no unit table from {pid}"
        named = set(np.unique(spikes["unit"][spikes["unit"] >= 0]).tolist())
        assert named <= set(tables[pid].units)


def _popen(args, env):
    return subprocess.Popen(
        [sys.executable, "-m", "rtclass.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
