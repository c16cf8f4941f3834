import threading
import time

import numpy as np
import pytest

from rtclass.errors import InputError, StreamNotFoundError
from rtclass.ingest.openephys import OpenEphysSource
from tests.netutil import free_port
from tests.openephys_emulator import OpenEphysEmulator

N_CH = 8


def _pair():
    port = free_port()
    while True:  # the plugin needs two consecutive ports
        try:
            emu = OpenEphysEmulator(port)
            break
        except Exception:  # noqa: BLE001 - port + 1 taken: try another
            port = free_port()
    src = OpenEphysSource(f"tcp://127.0.0.1:{port}", N_CH, 30000.0, 5.0, 2.0)
    return emu, src


def _feed(emu, blocks, delay=0.3, **kw):
    def go():
        time.sleep(delay)  # let the subscriber join
        for first, block, extra in blocks:
            emu.send_block(block, first, **{**kw, **extra})
            time.sleep(0.002)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def _read_all(src, n_samples, timeout=5.0):
    out, t0 = [], time.monotonic()
    while sum(c.n_samples for c in out) < n_samples and time.monotonic() - t0 < timeout:
        c = src.read(0.1)
        if c is not None:
            out.append(c)
    return out


def test_reassembly_equals_the_original_data():
    emu, src = _pair()
    rng = np.random.default_rng(0)
    data = rng.normal(0, 10, (1024 * 6, N_CH)).astype(np.float32)
    blocks = [(a, data[a : a + 1024], {}) for a in range(0, data.shape[0], 1024)]
    t = _feed(emu, blocks)
    src.open()
    chunks = [src._ready.pop(0)] + _read_all(src, data.shape[0] - 1024)
    t.join()
    got = np.concatenate([c.data for c in chunks])
    assert np.array_equal(got, data)
    assert [c.first_sample for c in chunks] == list(range(0, data.shape[0], 1024))
    assert src.stats.malformed == 0 and src.stats.gaps == 0
    time.sleep(0.1)
    assert emu.heartbeats >= 1  # the plugin lists us as a client
    src.close()
    emu.close()


def test_missing_channels_bad_sizes_late_blocks_and_gaps_are_counted():
    emu, src = _pair()
    data = np.ones((256, N_CH), np.float32)
    blocks = [
        (0, data, {}),
        (256, data, {"skip_channels": (3,)}),  # channel 3 never comes: zero-filled once 512 completes
        (512, data, {}),
        (768, data, {"bad_size_channels": (5,)}),
        (1024, data, {}),
        (2048, data, {}),  # 1024..2047 lost: a gap
    ]
    t = _feed(emu, blocks)
    src.open()
    chunks = [src._ready.pop(0)] + _read_all(src, 2048 + 256 - 256, timeout=3.0)
    t.join()
    firsts = [c.first_sample for c in chunks]
    assert firsts[:3] == [0, 256, 512] and 2048 in firsts
    by_first = {c.first_sample: c for c in chunks}
    assert (by_first[256].data[:, 3] == 0).all() and (by_first[256].data[:, 2] == 1).all()
    assert src.stats.malformed >= 2  # the missing channel, the bad size
    assert src.stats.gaps >= 1
    emu.send_raw([b"DATA\x00", b"{not json", b""])
    emu.send_raw([b"DATA\x00"])
    time.sleep(0.2)
    src.read(0.2)
    assert src.stats.malformed >= 4
    src.close()
    emu.close()


def test_wrong_channel_count_and_no_data():
    emu, src = _pair()
    src.n_channels = 16  # the emulator sends 8
    t = _feed(emu, [(a, np.ones((128, N_CH), np.float32), {}) for a in range(0, 128 * 40, 128)], delay=0.2)
    src.resolve_timeout_s = 1.0
    with pytest.raises(InputError, match="sends channels 0..7"):
        src.open()
    t.join()
    src.close()
    emu.close()
    quiet = OpenEphysSource(f"tcp://127.0.0.1:{free_port()}", N_CH, 30000.0, 0.3, 1.0)
    with pytest.raises(StreamNotFoundError, match="ZMQ Interface"):
        quiet.open()
    quiet.close()


def _bad_openephys(rng, kind, emu):
    """One malformed Open Ephys message of ``kind`` (see ``OpenEphysSource._handle``)."""
    import json

    if kind == "frames":
        return [[b"DATA\x00"], [b"DATAX", b"{}", b""], [b"DATA\x00", b"{}", b"", b""]][int(rng.integers(3))]
    if kind == "header":
        heads = [b"{not json", b"[1, 2]", b'{"content": 5}', b'{"content": {"channel_num": "x"}}', b"\xff\xfe"]
        heads.append(
            json.dumps(
                {"message_num": "abc", "content": {"channel_num": 0, "num_samples": 4, "sample_num": 0}}
            ).encode()
        )
        return [b"DATA\x00", heads[int(rng.integers(len(heads)))], b"\0" * 16]
    if kind == "size":  # a header promising a huge block: nothing may be allocated for it
        return [b"DATA\x00", emu.header(0, 2**40, 0), b"\0" * 16]
    return [b"DATA\x00", emu.header(N_CH + 90, 4, 0), b"\0" * 16]  # "channel": outside the stream


def test_ten_thousand_malformed_messages_between_good_blocks_lose_nothing():
    kinds = ("frames", "header", "size", "channel")
    emu, src = _pair()
    rng = np.random.default_rng(23)
    n_bad, n_blocks, n = 10_000, 40, 256
    bad_kinds = rng.choice(kinds, n_bad)
    data = rng.normal(0, 10, (n * n_blocks, N_CH)).astype(np.float32)
    per_block = n_bad // (n_blocks - 1)
    sent_bad = bad_kinds[: per_block * (n_blocks - 1)]

    received = [0]  # samples the reader has: the sender keeps at most 4 blocks ahead of it

    def go():
        time.sleep(0.3)
        for k in range(n_blocks):
            if k:
                for kind in sent_bad[(k - 1) * per_block : k * per_block]:
                    emu.send_raw(_bad_openephys(rng, kind, emu))
            wait_until = time.monotonic() + 10
            while k > 4 and received[0] < (k - 4) * n and time.monotonic() < wait_until:
                time.sleep(0.001)
            emu.send_block(data[k * n : (k + 1) * n], k * n)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    src.open()
    chunks = [src._ready.pop(0)]
    deadline = time.monotonic() + 30
    while sum(c.n_samples for c in chunks) < data.shape[0] and time.monotonic() < deadline:
        c = src.read(0.1)
        if c is not None:
            chunks.append(c)
            received[0] = sum(c.n_samples for c in chunks)
    t.join(10)
    got = np.concatenate([c.data for c in chunks])
    assert np.array_equal(got, data) and src.stats.gaps == 0 and src.stats.samples_dropped == 0
    assert src.stats.malformed_by_kind == {k: int((sent_bad == k).sum()) for k in kinds}
    src.close()
    emu.close()


def test_an_acquisition_restart_in_the_gui_continues_the_timeline_as_a_new_segment():
    emu, src = _pair()
    data = np.arange(256 * N_CH, dtype=np.float32).reshape(256, N_CH)

    def go():
        time.sleep(0.3)
        for k in range(4):
            emu.send_block(data + k, k * 256)
            time.sleep(0.01)
        emu.message_num = 0  # stop and start in the GUI: message and sample numbers start again
        for k in range(4):
            emu.send_block(data + 100 + k, k * 256)
            time.sleep(0.01)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    src.open()
    chunks = [src._ready.pop(0)] + _read_all(src, 7 * 256, timeout=5.0)
    t.join()
    assert [c.first_sample for c in chunks] == [k * 256 for k in range(8)]  # one timeline
    assert [float(c.data[0, 0]) for c in chunks] == [0, 1, 2, 3, 100, 101, 102, 103]
    s = src.stats
    assert (s.restarts, s.segment_starts, s.gaps, s.malformed) == (1, [1024], 0, 0)
    src.close()
    emu.close()
