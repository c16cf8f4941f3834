"""Recordings replayed as streams (``rtclass.ingest.replay``): the file source paced like a live
stream, the pacing of ``rtclass replay``, and a replay over ZeroMQ received sample for sample."""

import threading
import time

import numpy as np
import pytest

from rtclass.errors import InputError
from rtclass.formats.spikeglx import open_recording, write_recording
from rtclass.ingest.replay import FileSource, open_sender, paced_send, recording_blocks, replay_file
from rtclass.ingest.zmq import ZmqSource
from rtclass.probe import neuropixels
from tests.netutil import free_port, in_thread

FS = 30000.0
NP1_UV = np.float32(2.34375)  # 0.6 V / 512 / gain 500


def _write(tmp_path, n=1000, name="t.ap.bin"):
    ap = np.random.default_rng(0).integers(-500, 500, (n, 384)).astype(np.int16)
    return write_recording(tmp_path / name, ap, "np1", FS, neuropixels("np1").positions_um), ap


def test_file_source_chunks_cover_the_file_once(tmp_path):
    path, ap = _write(tmp_path)
    src = FileSource(path, chunk_ms=1.0, speed=0)
    with pytest.raises(RuntimeError, match="open"):
        src.recording  # noqa: B018 - reading it before open() is the error
    info = src.open()
    assert info.n_channels == 384 and info.raw_n_channels == 385 and info.sample_rate_hz == FS
    assert info.name == "t" and info.raw_path == path and info.meta_path == path.with_suffix(".meta")
    chunks = []
    while not src.finished:
        chunks.append(src.read(0.1))
    assert src.read(0.1) is None  # and nothing after the end
    assert [c.first_sample for c in chunks] == list(range(0, 1000, 30))
    assert chunks[-1].n_samples == 1000 - 990 and chunks[-1].end_sample == 1000
    assert [c.t_last for c in chunks[:2]] == [29 / FS, 59 / FS]  # file time of each chunk's last sample
    data = np.concatenate([c.data for c in chunks])
    np.testing.assert_allclose(data, ap * NP1_UV, rtol=1e-6)
    assert src.stats.samples_in == 1000 and src.stats.chunks == len(chunks)
    src.close()


def test_file_source_releases_chunks_in_real_time(tmp_path):
    path, _ = _write(tmp_path, n=6000)  # 200 ms
    src = FileSource(path, chunk_ms=100.0, speed=1.0)
    t0 = time.perf_counter()
    src.open()
    assert src.read(0.001) is None  # the first 100 ms have not been "recorded" yet
    got = 0
    while not src.finished:
        c = src.read(1.0)
        got += 0 if c is None else c.n_samples
    assert got == 6000 and time.perf_counter() - t0 >= 0.19


def _recorder():
    sent = []
    return sent, lambda block, first, t_last: sent.append((block.shape[0], first, t_last))


def test_paced_send_numbers_samples_and_stamps_the_last_one():
    blocks = [np.zeros((n, 2), np.float32) for n in (30, 30, 10)]
    sent, send = _recorder()
    assert paced_send(blocks, send, FS, speed=0, clock=lambda: 100.0) == 70
    assert sent == [(30, 0, 100.0 + 29 / FS), (30, 30, 100.0 + 59 / FS), (10, 60, 100.0 + 69 / FS)]


def test_paced_send_keeps_the_pace_and_stops_when_asked():
    blocks = [np.zeros((300, 1), np.float32)] * 10  # 100 ms of data
    t0 = time.perf_counter()
    sent, send = _recorder()
    paced_send(blocks, send, FS, speed=2.0)
    assert time.perf_counter() - t0 >= 0.045 and len(sent) == 10  # twice real time: >= 50 ms
    stop = threading.Event()
    sent, send = _recorder()

    def send_then_stop(block, first, t_last):
        send(block, first, t_last)
        if first >= 600:
            stop.set()

    assert paced_send(blocks, send_then_stop, FS, speed=0, stop=stop) == 900
    assert [first for _, first, _ in sent] == [0, 300, 600]


def test_recording_blocks_as_raw_or_microvolts(tmp_path):
    path, ap = _write(tmp_path)
    rec = open_recording(path)
    raw = list(recording_blocks(rec, 300, as_int16=True))
    assert [b.shape for b in raw] == [(300, 384)] * 3 + [(100, 384)]  # sync channel dropped
    assert raw[0].dtype == np.int16 and np.array_equal(np.concatenate(raw), ap)
    uv = np.concatenate(list(recording_blocks(rec, 300, as_int16=False)))
    assert uv.dtype == np.float32 and np.allclose(uv, ap * NP1_UV)


def test_unknown_replay_targets_are_refused():
    with pytest.raises(InputError, match="unknown replay target"):
        open_sender("udp://127.0.0.1:1", 4, FS, 30)
    with pytest.raises(InputError, match="needs a stream name"):
        open_sender("lsl:", 4, FS, 30)


def test_replay_waits_for_a_subscriber_and_says_so(tmp_path):
    path, _ = _write(tmp_path, n=60)
    with pytest.raises(InputError, match="nobody subscribed"):
        replay_file(path, f"zmq://127.0.0.1:{free_port()}", speed=0, chunk_ms=1.0, wait_for_subscriber_s=0.2)


def test_a_zmq_replay_arrives_whole_with_the_files_scale(tmp_path):
    path, ap = _write(tmp_path, n=900)
    port = free_port()
    result = {}
    t = in_thread(lambda: result.update(sent=replay_file(path, f"zmq://127.0.0.1:{port}", 0, 1.0, 10.0)))
    src = ZmqSource(f"tcp://127.0.0.1:{port}", 384, FS, 10.0, 1.0)
    src.open()
    chunks, n, deadline = [], 0, time.time() + 10
    while n < 900 and time.time() < deadline:
        c = src.read(0.5)
        if c is not None:
            chunks.append(c)
            n += c.n_samples
    t.join(10)
    src.close()
    assert result["sent"] == 900
    assert chunks[0].first_sample == 0 and src.stats.samples_dropped == 0
    np.testing.assert_allclose(np.concatenate([c.data for c in chunks]), ap * NP1_UV, rtol=1e-6)
