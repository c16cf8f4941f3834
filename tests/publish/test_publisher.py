"""The protocol every live output follows (``rtclass.publish.publisher.Publisher``): the pipeline
hands each output every kind of message, and an output ignores the kinds it has no use for."""

import inspect

import numpy as np

from rtclass.publish.lsl_pub import LslCountsOutlet, LslSpikeOutlet
from rtclass.publish.publisher import Publisher
from rtclass.publish.wire import SPIKE_DTYPE
from rtclass.publish.zmq_pub import ZmqSpikePublisher

KINDS = ("publish", "publish_counts", "publish_counts_array", "publish_units", "close")


def test_the_base_accepts_every_kind_and_does_nothing():
    p = Publisher()
    assert p.publish(np.zeros(3, SPIKE_DTYPE)) is None
    assert p.publish_counts([[b"counts/MLI", b""]]) is None
    assert p.publish_counts_array(np.zeros((1, 6)), np.zeros(1)) is None
    assert p.publish_units(b"{}") is None
    assert p.close() is None


def test_a_publisher_that_overrides_one_kind_still_takes_the_others():
    class SpikesOnly(Publisher):
        def __init__(self):
            self.got = []

        def publish(self, spikes):
            self.got.append(spikes.size)

    p = SpikesOnly()
    for kind in KINDS[1:]:
        assert callable(getattr(p, kind))
    p.publish_units(b"{}")
    p.publish(np.zeros(2, SPIKE_DTYPE))
    assert p.got == [2]


def test_the_outputs_are_publishers_with_the_same_signatures():
    for cls in (ZmqSpikePublisher, LslSpikeOutlet, LslCountsOutlet):
        assert issubclass(cls, Publisher)
        for kind in KINDS:
            mine, base = inspect.signature(getattr(cls, kind)), inspect.signature(getattr(Publisher, kind))
            assert list(mine.parameters) == list(base.parameters), (cls.__name__, kind)
