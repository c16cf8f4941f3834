"""What every source shares (``rtclass.ingest.base``): the stream description, the counters that
go to metrics.json, and the Source protocol."""

import dataclasses
import logging

import pytest

from rtclass.ingest.base import Source, SourceStats, StreamInfo
from rtclass.ingest.lsl import LslSource
from rtclass.ingest.openephys import OpenEphysSource
from rtclass.ingest.replay import FileSource
from rtclass.ingest.zmq import ZmqSource


def test_stream_info_defaults_describe_a_live_stream_without_files():
    info = StreamInfo("NP1", 384, 30000.0)
    assert info.meta_path is None and info.raw_path is None and info.raw_n_channels == 0
    assert info.raw_dtype == "int16"
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.n_channels = 10


def test_stats_are_reported_without_private_fields():
    s = SourceStats()
    s.samples_in, s.gaps, s.samples_dropped = 3000, 1, 30
    s.incident("gap", "30 samples lost")
    assert s.as_dict() == {
        "samples_in": 3000,
        "samples_dropped": 30,
        "gaps": 1,
        "chunks": 0,
        "malformed": 0,
        "restarts": 0,
        "stalls": 0,
        "segment_starts": [],
        "malformed_by_kind": {},
    }
    s.bad_message("header", "a bad header")
    s.bad_message("header", "another")
    s.bad_message("size", "a bad size")
    assert s.malformed == 3 and s.as_dict()["malformed_by_kind"] == {"header": 2, "size": 1}


def test_each_kind_of_incident_is_logged_once(caplog):
    s = SourceStats()
    with caplog.at_level(logging.WARNING, logger="rtclass.ingest"):
        for i in range(5):
            s.incident("malformed", f"bad frame {i}")
        s.incident("gap", "a gap")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "bad frame 0" in messages[0] and "further malformed problems are counted" in messages[0]
    assert "a gap" in messages[1]


@pytest.mark.parametrize("cls", [FileSource, LslSource, ZmqSource, OpenEphysSource])
def test_every_source_implements_the_protocol(cls):
    for name in ("open", "read", "close"):
        assert callable(getattr(cls, name, None)), (cls, name)
    assert isinstance(getattr(cls, "finished", None), property), cls
    assert {"open", "read", "close", "finished"} <= set(dir(Source))
