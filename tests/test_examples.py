"""The trigger example runs against a publisher and reports its latency."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pylsl

from rtclass.publish.wire import SPIKE_DTYPE
from rtclass.publish.zmq_pub import ZmqSpikePublisher
from tests.netutil import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_trigger_example_measures_latency():
    port = free_port()
    pub = ZmqSpikePublisher(f"tcp://127.0.0.1:{port}")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "examples" / "trigger.py"),
            "--address",
            f"tcp://127.0.0.1:{port}",
            "--cell-type",
            "PkC_cs",
            "--count",
            "20",
            "--trigger-address",
            f"tcp://127.0.0.1:{free_port()}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:
        s = np.zeros(1, SPIKE_DTYPE)
        s["cell_type"], s["unit"], s["t_source"] = 2, 7, pylsl.local_clock() - 0.001  # spike 1 ms ago
        pub.publish(s)
        time.sleep(0.01)
    out, _ = proc.communicate(timeout=30)
    pub.close()
    assert proc.returncode == 0, out
    assert "20 triggers on PkC_cs" in out and "p50" in out
    p50 = float(out.split("p50 ")[1].split(" ms")[0])
    assert 1.0 <= p50 < 50.0  # at least the 1 ms the spike is old
