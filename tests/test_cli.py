"""End to end through the command line: replay -> run -> a plain subscriber, over ZMQ and LSL."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq

from rtclass.publish.wire import SPIKE_DTYPE
from tests.netutil import free_port, unique_name

RUN_TIMEOUT_S = 120


def _rtclass(*args):
    return [sys.executable, "-m", "rtclass.cli", *args]


def _config(tmp_path, publish_port, loopback=True):
    p = tmp_path / "cfg.toml"
    p.write_text(
        f'[publish]\nzmq_address = "tcp://127.0.0.1:{publish_port}"\nlsl = false\n'
        f"[source]\nlsl_loopback = {str(loopback).lower()}\nresolve_timeout_s = 60\n[run]\nidle_timeout_s = 10\n"
    )
    return p


def _collect_spikes(sub, procs, timeout_s):
    got = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sub.poll(200):
            topic, payload = sub.recv_multipart()
            assert topic == b"spikes/unlabeled"
            got.append(np.frombuffer(payload, SPIKE_DTYPE))
        elif all(p.poll() is not None for p in procs):
            break
    return np.concatenate(got) if got else np.zeros(0, SPIKE_DTYPE)


@pytest.mark.parametrize("transport", ["zmq", "lsl"])
def test_replay_then_run_delivers_spikes_to_a_plain_subscriber(recording, tmp_path, transport):
    pub_port = free_port()
    cfg = _config(tmp_path, pub_port)
    target = f"zmq://127.0.0.1:{free_port()}" if transport == "zmq" else f"lsl:{unique_name('cli')}"
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen(
        _rtclass("run", "--source", target, "--config", str(cfg), "--duration", "3", "--out", str(out)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.connect(f"tcp://127.0.0.1:{pub_port}")
    sub.setsockopt(zmq.SUBSCRIBE, b"spikes/")
    replay = subprocess.Popen(
        _rtclass("replay", str(recording), "--to", target, "--speed", "4", "--config", str(cfg)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    spikes = _collect_spikes(sub, [run, replay], RUN_TIMEOUT_S)
    run_out, _ = run.communicate(timeout=RUN_TIMEOUT_S)
    replay_out, _ = replay.communicate(timeout=RUN_TIMEOUT_S)
    sub.close()
    assert run.returncode == 0, run_out
    assert replay.returncode == 0, replay_out
    saved = np.load(out / "spike_times.npy")
    assert saved.size > 100
    # once subscribed (ZeroMQ drops what is sent before a subscriber joins), it sees every spike
    assert spikes.size > 0
    after = saved[saved >= spikes["sample"].min()]
    assert np.array_equal(np.sort(spikes["sample"]), after)
    assert (spikes["unit"] >= -1).all() and (spikes["cell_type"] == 0).all()


def test_errors_are_one_line_with_advice(tmp_path):
    res = subprocess.run(
        _rtclass("run", "--source", "file:/nonexistent.ap.bin", "--out", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert res.returncode == 2
    assert "rtclass: error:" in res.stderr and "does not exist" in res.stderr
    res = subprocess.run(
        _rtclass("run", "--source", "tcp://x", "--out", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert res.returncode == 2 and "unknown source" in res.stderr


def test_version_comes_from_the_package_metadata():
    from importlib import metadata

    res = subprocess.run(_rtclass("--version"), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert res.returncode == 0 and res.stdout == f"rtclass {metadata.version('rtclass')}\n"


def test_config_takes_the_name_of_a_shipped_config(tmp_path):
    res = subprocess.run(_rtclass("run", "--help"), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert "name of a shipped config" in res.stdout and "np1-lsl" in res.stdout
    res = subprocess.run(
        _rtclass("run", "--source", "file:/nonexistent.ap.bin", "--config", "np3", "--out", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "np3 is neither a config file nor the name of a shipped config (demo, np1-lsl" in res.stderr
    res = subprocess.run(
        _rtclass("run", "--source", "file:/nonexistent.ap.bin", "--config", "np2", "--out", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert res.returncode == 2 and "does not exist" in res.stderr  # the config was found: the source was not
