"""The decoder side: rtclass.client against the publisher, and binned counts."""

import numpy as np
import pytest

from rtclass.client import Subscriber, UnitTable
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
