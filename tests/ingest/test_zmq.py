import time

import numpy as np
import pytest
import zmq

from rtclass.errors import InputError, PublishError, StreamNotFoundError
from rtclass.ingest import rawframe
from rtclass.ingest.zmq import ZmqRawSender, ZmqSource
from tests.netutil import free_port, in_thread


def _blocks(n_blocks, n=30, ch=4):
    rng = np.random.default_rng(0)
    return [rng.integers(-100, 100, (n, ch)).astype(np.int16) for _ in range(n_blocks)]


def _serve(sender: ZmqRawSender, messages, received=None, max_lead_samples=0):
    """Send ``messages`` (raw multipart lists, or (block, first_sample) frames). With ``received``
    (a one-item list the reader updates with the samples it has), a frame waits until the reader
    is at most ``max_lead_samples`` behind it (up to 10 s)."""
    assert sender.wait_for_subscriber(5.0)
    for m in messages:
        if isinstance(m, list):
            sender._sock.send_multipart(m)
            continue
        block, first = m
        wait_until = time.monotonic() + 10
        while received is not None and received[0] < first - max_lead_samples and time.monotonic() < wait_until:
            time.sleep(0.001)
        sender.send(block, first, first / 30000.0, 2.0)


def _source(addr, ch=4, timeout=5.0):
    return ZmqSource(addr, ch, 30000.0, timeout, 1.0)


def test_round_trip_with_gap_and_malformed_frames():
    addr = f"tcp://127.0.0.1:{free_port()}"
    sender = ZmqRawSender(addr)
    blocks = _blocks(5)
    msgs = [(blocks[0], 0), (blocks[1], 30), [b"raw", b"junk", b""], (blocks[2], 90), (blocks[3], 90), (blocks[4], 120)]
    src = _source(addr)
    t = in_thread(_serve, sender, msgs)
    src.open()
    chunks, n = [], 0
    while n < 120:
        c = src.read(2.0)
        assert c is not None or src.stats.malformed, "timed out"
        if c is not None:
            chunks.append(c)
            n += c.n_samples
    t.join()
    # queued frames may arrive joined, but never across the gap
    starts = {c.first_sample: c for c in chunks}
    assert 0 in starts and 90 in starts and starts[90].gap_before == 30
    assert sum(c.gap_before for c in chunks) == 30
    got = np.concatenate([c.data for c in chunks])
    np.testing.assert_allclose(got, np.concatenate([blocks[0], blocks[1], blocks[2], blocks[4]]) * 2.0)
    s = src.stats
    assert (s.gaps, s.samples_dropped, s.malformed, s.samples_in) == (1, 30, 2, 120)  # junk + repeated block
    src.close()
    sender.close()


def test_a_backlog_is_read_as_one_chunk():
    """After a stall, the frames queued behind the first come back joined (one pass to catch up)."""
    addr = f"tcp://127.0.0.1:{free_port()}"
    sender = ZmqRawSender(addr)
    blocks = _blocks(6)
    src = _source(addr)
    t = in_thread(_serve, sender, [(b, 30 * i) for i, b in enumerate(blocks)])
    src.open()  # holds the first frame
    t.join()
    time.sleep(0.2)  # everything has arrived
    c = src.read(2.0)
    assert (c.first_sample, c.n_samples, c.gap_before) == (0, 180, 0)
    np.testing.assert_allclose(c.data, np.concatenate(blocks) * 2.0)
    assert c.t_last == pytest.approx(150 / 30000.0)
    assert src.read(0.05) is None
    src.close()
    sender.close()


def test_channel_count_mismatch_is_an_error_at_start():
    addr = f"tcp://127.0.0.1:{free_port()}"
    sender = ZmqRawSender(addr)
    t = in_thread(_serve, sender, [(b, i * 30) for i, b in enumerate(_blocks(3, ch=8))])
    src = _source(addr, ch=4)
    with pytest.raises(InputError, match="has 8 channels but the config expects 4"):
        src.open()
    t.join()
    src.close()
    sender.close()


def test_no_publisher_times_out_with_advice():
    src = _source(f"tcp://127.0.0.1:{free_port()}", timeout=0.3)
    with pytest.raises(StreamNotFoundError, match="rtclass replay"):
        src.open()
    src.close()


def test_port_in_use():
    addr = f"tcp://127.0.0.1:{free_port()}"
    first = ZmqRawSender(addr)
    with pytest.raises(PublishError, match="in use"):
        ZmqRawSender(addr)
    first.close()


def test_frame_helpers_reject_wrong_dtype_on_the_wire():
    frames = rawframe.encode(np.zeros((2, 2), np.int16), 0, 0.0)
    frames[1] = frames[1][:5] + bytes([3]) + frames[1][6:]
    with pytest.raises(rawframe.FrameError):
        rawframe.decode(frames)
    assert zmq.zmq_version()


def test_a_publisher_that_restarts_continues_the_timeline_as_a_new_segment():
    """A second sender on the same port after the first ended (its index starts at 0 again): its
    frames are kept, not dropped as out of order; they continue this run's timeline, and the
    restart is counted with the sample where the new segment starts."""
    addr = f"tcp://127.0.0.1:{free_port()}"
    sender = ZmqRawSender(addr)
    blocks = _blocks(6)
    msgs = [(blocks[0], 0), (blocks[1], 30), (blocks[2], 60), (blocks[3], 0), (blocks[4], 30), (blocks[5], 60)]
    src = _source(addr)
    t = in_thread(_serve, sender, msgs)
    src.open()
    chunks, n = [], 0
    while n < 180:
        c = src.read(2.0)
        assert c is not None, "timed out: the restarted stream's frames did not arrive"
        chunks.append(c)
        n += c.n_samples
    t.join()
    assert chunks[0].first_sample == 0
    for a, b in zip(chunks, chunks[1:]):
        assert b.first_sample == a.first_sample + a.n_samples and b.gap_before == 0  # one unbroken timeline
    np.testing.assert_allclose(np.concatenate([c.data for c in chunks]), np.concatenate(blocks) * 2.0)
    s = src.stats
    assert (s.restarts, s.segment_starts, s.malformed, s.samples_dropped, s.samples_in) == (1, [90], 0, 0, 180)
    src.close()
    sender.close()


def test_binding_beyond_this_machine_is_warned_about(caplog):
    from rtclass.ingest.zmq import bind_socket, serves_other_machines

    assert serves_other_machines("tcp://0.0.0.0:5560") and serves_other_machines("tcp://192.168.1.4:5560")
    assert not serves_other_machines("tcp://127.0.0.1:5560") and not serves_other_machines("tcp://localhost:1")
    assert not serves_other_machines("ipc:///tmp/x") and not serves_other_machines("tcp://[::1]:5560")
    with caplog.at_level("WARNING", logger="rtclass.zmq"):
        bind_socket(zmq.Context.instance(), zmq.PUB, f"tcp://127.0.0.1:{free_port()}", "the test socket").close()
    assert not caplog.records
    # an address of no interface here (TEST-NET-1): warned about before the bind, which then fails
    with caplog.at_level("WARNING", logger="rtclass.zmq"), pytest.raises(PublishError, match="cannot bind"):
        bind_socket(zmq.Context.instance(), zmq.PUB, "tcp://192.0.2.1:5560", "the test socket")
    assert "reachable from other machines" in caplog.text


def _malformed(rng, kind, good_header):
    """One malformed raw message of ``kind`` (see ``rawframe.decode``), built from a good header."""
    if kind == "parts":
        return [b"raw"] * int(rng.choice([1, 2, 4, 5]))
    if kind == "topic":  # matches the subscription's prefix, yet is not the raw topic
        return [b"raw-v2", good_header, b"\0" * 240]
    if kind == "header":
        return [b"raw", good_header[: int(rng.integers(0, 36))], b""]
    fields = list(rawframe.HEADER.unpack(good_header))
    if kind == "magic":
        fields[0] = b"XXXX"
    elif kind == "version":
        fields[1] = 2
    elif kind == "dtype":
        fields[2] = 7
    elif kind == "size":  # the header promises far more than arrives (nothing may be allocated for it)
        fields[4], fields[5] = 2**31, 2**31
    elif kind == "channels":  # a valid frame, but of another probe
        fields[4] = 3
        return [b"raw", rawframe.HEADER.pack(*fields), b"\0" * (30 * 3 * 2)]
    return [b"raw", rawframe.HEADER.pack(*fields), b"\0" * 240]


def test_ten_thousand_malformed_messages_between_good_frames_lose_nothing():
    """Bad input at volume: every good sample arrives at its index, each bad message is counted by
    kind, nothing crashes, memory stays bounded."""
    import resource

    kinds = ("parts", "topic", "header", "magic", "version", "dtype", "size", "channels")
    rng = np.random.default_rng(19)
    n_bad, n_good = 10_000, 500
    bad_kinds = rng.choice(kinds, n_bad)
    addr = f"tcp://127.0.0.1:{free_port()}"
    sender = ZmqRawSender(addr)
    sender._sock.setsockopt(zmq.SNDHWM, 0)  # the test must not drop at the sender: it counts everything
    blocks = _blocks(n_good)
    good_header = rawframe.encode(blocks[0], 0, 0.0)[1]
    per_good = n_bad // n_good
    # a good frame first (at start, a frame of another channel count is a clear error instead), then
    # bad messages before each good frame: once the last frame is in, every bad one was read
    msgs = [(blocks[0], 0)]
    for k in range(1, n_good + 1):
        msgs.extend(_malformed(rng, kind, good_header) for kind in bad_kinds[(k - 1) * per_good : k * per_good])
        if k < n_good:
            msgs.append((blocks[k], 30 * k))
    msgs.append((blocks[0], 30 * n_good))
    src = ZmqSource(addr, 4, 30000.0, 5.0, 30.0)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    received = [0]  # samples the reader has: the sender keeps at most 20 frames ahead of it

    t = in_thread(_serve, sender, msgs, received, 20 * 30)
    src.open()
    got = np.zeros((30 * (n_good + 1), 4), np.float32)
    n, deadline = 0, time.monotonic() + 60
    while n < 30 * (n_good + 1) and time.monotonic() < deadline:
        c = src.read(1.0)
        if c is not None:
            got[c.first_sample : c.first_sample + c.n_samples] = c.data
            n += c.n_samples
            received[0] = n
    t.join(10)
    s = src.stats
    assert (s.samples_in, s.samples_dropped, s.gaps) == (30 * (n_good + 1), 0, 0)
    np.testing.assert_allclose(got, np.concatenate([*blocks, blocks[0]]) * 2.0)
    assert s.malformed == n_bad
    assert s.malformed_by_kind == {k: int((bad_kinds == k).sum()) for k in kinds}
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 200_000  # kB
    src.close()
    sender.close()
