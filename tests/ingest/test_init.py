"""``rtclass.ingest.make_source``: a ``--source`` string to the source that reads it, configured
from the config's [probe] and [source] sections (nothing is opened here)."""

import pytest

from rtclass.config import Config
from rtclass.errors import InputError
from rtclass.ingest import SOURCE_FORMS, make_source
from rtclass.ingest.lsl import LslSource
from rtclass.ingest.openephys import OpenEphysSource
from rtclass.ingest.replay import FileSource
from rtclass.ingest.zmq import ZmqSource


@pytest.fixture
def cfg():
    return Config().replace(
        probe={"n_channels": 64, "sample_rate_hz": 25000.0},
        source={
            "chunk_ms": 2.0,
            "speed": 0.0,
            "resolve_timeout_s": 3.0,
            "buffer_s": 5.0,
            "gap_tolerance_ms": 7.0,
            "int16_uv_per_bit": 0.76,
        },
    )


def test_lsl(cfg):
    src = make_source("lsl:NP1", cfg)
    assert isinstance(src, LslSource) and src.name == "NP1"
    assert (src.n_channels, src.sample_rate_hz, src.resolve_timeout_s, src.buffer_s) == (64, 25000.0, 3.0, 5.0)
    assert src.gap_tolerance_s == pytest.approx(0.007) and src.int16_uv_per_bit == 0.76


def test_zmq_and_open_ephys_addresses_become_tcp(cfg):
    z = make_source("zmq://127.0.0.1:5570", cfg)
    assert isinstance(z, ZmqSource) and z.address == "tcp://127.0.0.1:5570"
    assert (z.n_channels, z.sample_rate_hz, z.resolve_timeout_s, z.buffer_s) == (64, 25000.0, 3.0, 5.0)
    oe = make_source("openephys://127.0.0.1:5556", cfg)
    assert isinstance(oe, OpenEphysSource) and oe.address == "tcp://127.0.0.1:5556"
    assert oe.heartbeat_address == "tcp://127.0.0.1:5557" and oe.n_channels == 64


def test_files_with_or_without_the_prefix(cfg, tmp_path):
    for spec, path in ((f"file:{tmp_path}/a.ap.bin", tmp_path / "a.ap.bin"), ("rec/b.ap.bin", "rec/b.ap.bin")):
        src = make_source(spec, cfg)
        assert isinstance(src, FileSource) and str(src.bin_path) == str(path)
        assert (src.chunk_ms, src.speed) == (2.0, 0.0)


@pytest.mark.parametrize(
    "spec, words",
    [
        ("lsl:", "needs a stream name"),
        ("udp://127.0.0.1:9", "unknown source 'udp://127.0.0.1:9'"),
        ("NP1", "use one of"),
    ],
)
def test_what_is_not_a_source_is_refused_with_the_forms(cfg, spec, words):
    with pytest.raises(InputError, match=words) as err:
        make_source(spec, cfg)
    if "unknown" in str(err.value):
        assert SOURCE_FORMS in str(err.value)


def test_batch_ms_joins_a_live_sources_chunks_but_not_a_files(cfg, tmp_path):
    from rtclass.ingest.batching import BatchedSource

    batched = cfg.replace(source={"batch_ms": 10.0})
    z = make_source("zmq://127.0.0.1:5570", batched)
    assert isinstance(z, BatchedSource) and isinstance(z.source, ZmqSource) and z.batch_s == pytest.approx(0.01)
    assert isinstance(make_source("lsl:NP1", batched), BatchedSource)
    assert isinstance(make_source(str(tmp_path / "x.ap.bin"), batched), FileSource)  # it reads chunk_ms blocks
