import numpy as np
import pylsl
import pytest

from rtclass.errors import InputError, StreamNotFoundError
from rtclass.ingest.lsl import LslRawSender, LslSource
from tests.netutil import unique_name

FS = 30000.0


def _source(name, ch=4, timeout=5.0):
    return LslSource(name, ch, FS, timeout, 2.0, gap_tolerance_ms=2.0, int16_uv_per_bit=2.0)


def _pull(src, n_samples, timeout=5.0):
    got, waited = [], 0.0
    while sum(c.n_samples for c in got) < n_samples and waited < timeout:
        c = src.read(0.2)
        waited += 0.2 if c is None else 0.0
        if c is not None:
            got.append(c)
    return got


def test_round_trip_and_gap_detection():
    name = unique_name("rt-lsl")
    sender = LslRawSender(name, 4, FS, 30)
    src = _source(name)
    src.open()
    assert sender.wait_for_subscriber(5.0)
    rng = np.random.default_rng(0)
    blocks = [rng.normal(size=(30, 4)).astype(np.float32) for _ in range(4)]
    t0 = pylsl.local_clock()
    sender.send(blocks[0], 0, t0 + 29 / FS)
    sender.send(blocks[1], 30, t0 + 59 / FS)
    sender.send(blocks[2], 60, t0 + 89 / FS + 0.010)  # 10 ms (300 samples) lost before this one
    sender.send(blocks[3], 90, t0 + 119 / FS + 0.010)
    chunks = _pull(src, 120)
    data = np.concatenate([c.data for c in chunks])
    np.testing.assert_allclose(data, np.concatenate(blocks), rtol=1e-6)
    assert src.stats.gaps == 1 and src.stats.samples_dropped == 300
    assert chunks[-1].end_sample == 120 + 300  # indices keep the source's timeline
    src.close()
    sender.close()


def test_channel_count_mismatch():
    name = unique_name("rt-lsl")
    sender = LslRawSender(name, 8, FS, 30)
    with pytest.raises(InputError, match="has 8 channels but the config expects 4"):
        _source(name).open()
    sender.close()


def test_wrong_sample_format():
    name = unique_name("rt-lsl")
    info = pylsl.StreamInfo(name, "Neuropixels", 4, FS, pylsl.cf_double64, name)
    outlet = pylsl.StreamOutlet(info)
    with pytest.raises(InputError, match="double64"):
        _source(name).open()
    del outlet


def test_int16_stream_is_scaled():
    name = unique_name("rt-lsl")
    info = pylsl.StreamInfo(name, "Neuropixels", 4, FS, pylsl.cf_int16, name)
    outlet = pylsl.StreamOutlet(info)
    src = _source(name)
    src.open()
    assert outlet.wait_for_consumers(5.0)
    block = np.arange(120, dtype=np.int16).reshape(30, 4)
    outlet.push_chunk(block)
    chunks = _pull(src, 30)
    np.testing.assert_allclose(np.concatenate([c.data for c in chunks]), block * 2.0)
    src.close()
    del outlet


def test_stream_not_found():
    with pytest.raises(StreamNotFoundError, match="no LSL stream named"):
        _source(unique_name("nobody"), timeout=0.3).open()


def test_a_stream_that_disappears_and_comes_back_is_recovered_with_a_gap():
    name = unique_name("rt-lsl")
    sender = LslRawSender(name, 4, FS, 30)
    src = _source(name)
    src.open()
    assert sender.wait_for_subscriber(5.0)
    t0 = pylsl.local_clock()
    sender.send(np.zeros((30, 4), np.float32), 0, t0)
    assert sum(c.n_samples for c in _pull(src, 30)) == 30
    sender.close(drain_s=0.0)  # the acquisition goes away ...
    assert src.read(0.2) is None
    sender = LslRawSender(name, 4, FS, 30)  # ... and comes back (same name and source id)
    deadline = pylsl.local_clock() + 20.0
    got = []
    while not got and pylsl.local_clock() < deadline:
        sender.send(np.ones((30, 4), np.float32), 0, pylsl.local_clock())
        c = src.read(0.2)
        if c is not None:
            got.append(c)
    assert got, "the inlet did not recover"
    assert src.stats.gaps >= 1 and got[0].gap_before > 0
    src.close()
    sender.close(drain_s=0.0)


def _paced_sender(name, plan, chunk=30):
    """A plain pylsl outlet pushing ``chunk``-sample chunks at real-time pace with push-time stamps
    (``push_chunk`` without timestamps, as most senders do). Channel 0 carries each sample's true
    index. ``plan``: list of ("send", n_samples) / ("stall", seconds) / ("skip", n_samples: produced
    but never pushed, a real loss)."""
    import time

    from tests.netutil import in_thread

    def run(outlet):
        assert outlet.wait_for_consumers(5.0)
        index, t_next = 0, time.monotonic()
        for what, amount in plan:
            if what == "stall":
                time.sleep(amount)  # the samples keep being produced: pushed late, all at once
                continue
            if what == "skip":
                index += amount
                t_next += amount / FS
                continue
            for _ in range(amount // chunk):
                block = np.zeros((chunk, 4), np.float32)
                block[:, 0] = np.arange(index, index + chunk)
                t_next += chunk / FS
                wait = t_next - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                outlet.push_chunk(block)
                index += chunk
        time.sleep(0.5)

    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Neuropixels", 4, FS, pylsl.cf_float32, name), chunk)
    return outlet, in_thread(run, outlet)


def _timeline(src, n_samples, timeout=10.0):
    chunks = _pull(src, n_samples, timeout)
    index = np.concatenate([np.arange(c.first_sample, c.end_sample) for c in chunks])
    true_index = np.concatenate([c.data[:, 0] for c in chunks]).astype(np.int64)
    return index, true_index


def test_a_sender_that_stalls_and_catches_up_loses_nothing_and_keeps_the_timeline():
    name = unique_name("stall")
    # a 1 s stall: its 30,000 samples are pushed late, in a burst, stamped when pushed
    outlet, t = _paced_sender(name, [("send", 9000), ("stall", 1.0), ("send", 39000)])
    src = _source(name)
    src.open()
    index, true_index = _timeline(src, 48000)
    t.join()
    assert index.size == 48000 and np.array_equal(index, true_index)  # every sample at its true index
    s = src.stats
    assert (s.samples_dropped, s.gaps) == (0, 0) and s.stalls >= 1
    src.close()


def test_a_real_loss_is_counted_and_the_timeline_skips_it():
    name = unique_name("loss")
    outlet, t = _paced_sender(name, [("send", 9000), ("skip", 3000), ("send", 9000)])
    src = _source(name)
    src.open()
    index, true_index = _timeline(src, 18000)
    t.join()
    assert index.size == 18000
    s = src.stats
    assert s.gaps == 1 and abs(s.samples_dropped - 3000) <= 30  # push-time stamps: within a chunk
    assert np.abs(index - true_index).max() <= 30 and np.array_equal(index[:9000], true_index[:9000])
    src.close()


def test_an_outlet_restarted_with_a_new_source_id_is_a_new_segment_on_the_same_timeline():
    """The acquisition restarts: its old outlet goes away and a new one with the same name but
    another source id appears (liblsl's own recovery only follows the same source id). Its
    samples continue the run's timeline, and the restart is counted, within about a second."""
    import time

    name = unique_name("rt-lsl-restart")
    first = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Neuropixels", 4, FS, pylsl.cf_float32, "acq-1"), 30)
    src = _source(name)
    src.open()
    assert first.wait_for_consumers(5.0)
    block = np.zeros((300, 4), np.float32)
    block[:, 0] = np.arange(300)
    first.push_chunk(block)
    got = _pull(src, 300)
    del first  # the acquisition stops ...
    time.sleep(0.3)
    second = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Neuropixels", 4, FS, pylsl.cf_float32, "acq-2"), 30)
    t_restart = time.monotonic()
    block[:, 0] = 1000 + np.arange(300)
    deadline = time.monotonic() + 15
    while sum(c.n_samples for c in got) < 600 and time.monotonic() < deadline:
        if second.have_consumers():
            second.push_chunk(block)
            block[:, 0] += 300
            time.sleep(0.01)
        c = src.read(0.05)
        if c is not None:
            got.append(c)
    assert sum(c.n_samples for c in got) >= 600, "the new outlet was never read"
    assert time.monotonic() - t_restart < 10
    assert src.stats.restarts == 1 and src.stats.segment_starts == [300]
    index = np.concatenate([np.arange(c.first_sample, c.end_sample) for c in got])
    values = np.concatenate([c.data[:, 0] for c in got])
    assert np.array_equal(index, np.arange(index.size))  # one timeline, no gap inserted
    assert values[299] == 299 and values[300] == 1000  # the new segment starts right after the old
    assert src.stats.gaps == 0 and src.stats.samples_dropped == 0
    src.close()
