"""The LSL outlets of labeled spikes and counts (``rtclass.publish.lsl_pub``), on this machine only
(tests/conftest.py keeps LSL on loopback): the stream a decoder resolves, its channel labels, the
values and timestamps it pulls."""

import time

import numpy as np
import pylsl

from rtclass.cell_types import CELL_TYPE_NAMES
from rtclass.publish.lsl_pub import CHANNELS, STREAM_TYPE, LslCountsOutlet, LslSpikeOutlet
from rtclass.publish.publisher import Publisher
from rtclass.publish.wire import SPIKE_DTYPE
from tests.netutil import unique_name


def _inlet(name):
    (info,) = pylsl.resolve_byprop("name", name, 1, 5.0)
    inlet = pylsl.StreamInlet(info, recover=False)
    inlet.open_stream(timeout=5.0)
    return inlet


def _labels(inlet):
    ch = inlet.info(timeout=5.0).desc().child("channels").child("channel")
    out = []
    while not ch.empty():
        out.append(ch.child_value("label"))
        ch = ch.next_sibling()
    return out


def _pull(inlet, n, timeout=5.0):
    values, stamps, deadline = [], [], time.time() + timeout
    while len(values) < n and time.time() < deadline:
        v, t = inlet.pull_chunk(timeout=0.2)
        values += v
        stamps += t
    return np.array(values), np.array(stamps)


def test_spikes_arrive_as_five_labelled_channels_stamped_with_source_time():
    source = unique_name("rt-src")
    out = LslSpikeOutlet(source)
    assert isinstance(out, Publisher) and out.name == f"{source}-spikes"
    inlet = _inlet(out.name)
    info = inlet.info(timeout=5.0)
    assert info.type() == STREAM_TYPE and info.channel_count() == 5
    assert info.nominal_srate() == pylsl.IRREGULAR_RATE and info.channel_format() == pylsl.cf_double64
    assert _labels(inlet) == list(CHANNELS) == ["sample", "unit", "channel", "cell_type_code", "confidence"]
    spikes = np.zeros(3, SPIKE_DTYPE)
    spikes["sample"] = [2**40 + 1, 30000, 30010]  # int64 samples survive as doubles up to 2**53
    spikes["unit"], spikes["channel"], spikes["cell_type"] = [-1, 7, 7], [0, 383, 12], [0, 2, 2]
    spikes["confidence"] = [0.0, 3.5, 2.25]
    now = pylsl.local_clock()
    spikes["t_source"] = [now - 0.01, now - 0.005, now - 0.004]
    time.sleep(0.2)  # the inlet is connected before anything is pushed
    out.publish(np.zeros(0, SPIKE_DTYPE))  # nothing: no sample
    out.publish(spikes)
    values, stamps = _pull(inlet, 3)
    assert values.shape == (3, 5)
    assert values[:, 0].tolist() == [2**40 + 1, 30000, 30010]
    assert values[:, 1:].tolist() == [[-1, 0, 0, 0.0], [7, 383, 2, 3.5], [7, 12, 2, 2.25]]
    np.testing.assert_allclose(stamps, spikes["t_source"], atol=1e-6)
    inlet.close_stream()
    out.close()


def test_counts_arrive_one_sample_per_bin_one_channel_per_cell_type():
    source = unique_name("rt-src")
    out = LslCountsOutlet(source, bin_s=0.02)
    inlet = _inlet(f"{source}-counts")
    info = inlet.info(timeout=5.0)
    assert info.nominal_srate() == 50.0 and info.channel_format() == pylsl.cf_float32
    assert _labels(inlet) == list(CELL_TYPE_NAMES)
    counts = np.arange(12).reshape(2, 6)
    t_ends = np.array([10.02, 10.04])
    time.sleep(0.2)
    out.publish_counts_array(np.zeros((0, 6)), np.zeros(0))  # no bins closed: no sample
    out.publish_counts_array(counts, t_ends)
    values, stamps = _pull(inlet, 2)
    assert values.tolist() == counts.tolist()
    np.testing.assert_allclose(stamps, t_ends, atol=1e-6)
    out.publish(np.zeros(2, SPIKE_DTYPE))  # spikes go to the spike outlet: ignored here
    inlet.close_stream()
    out.close()
