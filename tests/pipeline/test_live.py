import json

import numpy as np

from rtclass.config import Config
from rtclass.ingest.base import SourceStats, StreamInfo
from rtclass.ingest.chunk import Chunk
from rtclass.pipeline.live import Pipeline, run_live
from rtclass.probe import neuropixels


def _file_cfg(chunk_ms=1.0):
    return Config().replace(source={"speed": 0.0, "chunk_ms": chunk_ms}, publish={"zmq": False, "lsl": False})


def test_file_run_writes_the_output_files(recording, tmp_path):
    out = tmp_path / "run"
    metrics = run_live(_file_cfg(), f"file:{recording}", str(out))
    for name in (
        "spike_times.npy",
        "spike_clusters.npy",
        "spike_channels.npy",
        "spike_amplitudes.npy",
        "params.py",
        "metrics.json",
    ):
        assert (out / name).exists(), name
    times = np.load(out / "spike_times.npy")
    assert times.dtype == np.int64 and times.size > 100 and (np.diff(times) >= 0).all()
    clusters = np.load(out / "spike_clusters.npy")
    assert clusters.size == times.size and (clusters >= -1).all()
    assert (np.load(out / "spike_amplitudes.npy") > 0).all()
    m = json.loads((out / "metrics.json").read_text())
    assert m["samples_in"] == 3 * 30000 and m["samples_dropped"] == 0 and m["spikes"] == times.size
    assert set(m["stage_time_per_chunk"]) >= {"filter", "reference", "detect", "total"}
    params = {}
    exec((out / "params.py").read_text(), params)
    assert params["n_channels_dat"] == 385 and params["sample_rate"] == 30000.0
    assert metrics["spikes"] == times.size


def test_whole_pipeline_is_chunk_invariant(recording):
    results = []
    for chunk_ms in (1.0, 7.3, 100.0):
        results.append(run_live(_file_cfg(chunk_ms), f"file:{recording}", None))
    # same spikes whatever the chunking (compare through the pipeline's own log)
    assert len({r["spikes"] for r in results}) == 1


class _ListSource:
    """A scripted source: hands out prepared chunks."""

    def __init__(self, chunks, n_channels):
        self.chunks = list(chunks)
        self.n_channels = n_channels
        self.stats = SourceStats()

    def open(self):
        return StreamInfo("scripted", self.n_channels, 30000.0)

    @property
    def finished(self):
        return not self.chunks

    def read(self, timeout_s):
        c = self.chunks.pop(0)
        self.stats.samples_in += c.n_samples
        return c

    def close(self):
        pass


def test_nonfinite_input_is_repaired_counted_and_the_run_goes_on(sim_data):
    data = sim_data[:30000].copy()
    data[100:110, 5] = np.nan
    data[20000, 7] = np.inf
    chunks = [Chunk(data[a : a + 300], a, a / 30000.0) for a in range(0, 30000, 300)]
    pipe = Pipeline(Config(), _ListSource(chunks, 384), probe=neuropixels("np1"))
    pipe.open()
    pipe.run()
    m = pipe.metrics()
    assert m["nonfinite_values"] == 11 and m["samples_processed"] == 30000


def test_channel_count_mismatch_at_start():
    import pytest

    from rtclass.errors import InputError

    pipe = Pipeline(Config(), _ListSource([], 100))
    with pytest.raises(InputError, match="100 channels"):
        pipe.open()


class _SilentAfter(_ListSource):
    """Sends its chunks, then nothing (a live stream that stopped)."""

    @property
    def finished(self):
        return False

    def read(self, timeout_s):
        import time

        if self.chunks:
            return super().read(timeout_s)
        time.sleep(timeout_s)
        return None


def test_idle_timeout_ends_a_run_whose_source_went_quiet(sim_data):
    import time

    chunks = [Chunk(sim_data[a : a + 300].copy(), a, a / 30000.0) for a in range(0, 3000, 300)]
    cfg = Config().replace(run={"idle_timeout_s": 0.5})
    pipe = Pipeline(cfg, _SilentAfter(chunks, 384), probe=neuropixels("np1"))
    pipe.open()
    t = time.monotonic()
    pipe.run()
    assert time.monotonic() - t < 5.0
    assert pipe.samples_processed == 3000


def test_after_open_the_run_compiles_nothing(sim_data):
    """Every kernel variant the hot path calls is compiled (or loaded) by the warm-up in
    ``open``: a compile inside the live loop would stall it for seconds."""
    import gc

    import numba

    import rtclass.dsp.detect_kernels
    import rtclass.dsp.filter_kernels
    import rtclass.dsp.guard
    import rtclass.features.unit_features
    import rtclass.matching.kernels

    def signatures():
        mods = (
            rtclass.dsp.detect_kernels,
            rtclass.dsp.filter_kernels,
            rtclass.dsp.guard,
            rtclass.features.unit_features,
            rtclass.matching.kernels,
        )
        return {
            f"{m.__name__}.{k}": len(v.signatures)
            for m in mods
            for k, v in vars(m).items()
            if isinstance(v, numba.core.registry.CPUDispatcher)
        }

    data = sim_data[:90000]
    chunks = [Chunk(data[a : a + 30].copy(), a, a / 30000.0) for a in range(0, data.shape[0], 30)]
    pipe = Pipeline(Config().replace(classify={"model": "none"}), _ListSource(chunks, 384), probe=neuropixels("np1"))
    pipe.live = False  # discovery in place: units appear within these 3 s whatever the machine's speed
    pipe.open()
    before = signatures()
    pipe.run()
    assert pipe.chain.bank.n > 0 and len(pipe.log) > 0  # units were found and spikes matched
    assert signatures() == before
    assert gc.get_freeze_count() == 0  # the run froze its start-up objects out of the GC, and let go after
