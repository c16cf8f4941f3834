import json

import numpy as np

from rtclass.config import Config
from rtclass.ingest.base import SourceStats, StreamInfo
from rtclass.ingest.chunk import Chunk
from rtclass.pipeline.live import Pipeline, run_live
from rtclass.probe import neuropixels
from rtclass.publish.publisher import Publisher


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
    assert not (out / "spikes.journal.bin").exists()  # a run that ended removes its journal
    assert not list(out.glob("*.partial"))
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


def test_the_run_reports_where_it_was_scheduled(sim_data):
    import os

    core = max(os.sched_getaffinity(0))
    data = sim_data[:3000].copy()
    chunks = [Chunk(data[a : a + 300], a, a / 30000.0) for a in range(0, 3000, 300)]
    pipe = Pipeline(Config().replace(run={"cpu_cores": str(core)}), _ListSource(chunks, 384), probe=neuropixels("np1"))
    before = os.sched_getaffinity(0)
    pipe.open()
    pipe.run()
    assert pipe.metrics()["scheduling"] == {"cpu_cores": [core], "realtime_priority": 0, "refused": ""}
    assert pipe.metrics()["batch_ms"] == 0.0  # each chunk processed as it arrived
    assert os.sched_getaffinity(0) == before  # undone when the run ends


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


#: run in a fresh interpreter: kernels compiled by earlier tests of this session would hide a
#: signature that only the live path asks for
_COMPILES_NOTHING_SCRIPT = """
import gc, importlib, json, pkgutil, sys
import numba
import rtclass
from rtclass.config import Config
from rtclass.ingest.chunk import Chunk
from rtclass.pipeline.live import Pipeline
from rtclass.probe import neuropixels
from rtclass.sim.recording import Simulation
from rtclass.config import SimulateConfig

def signatures():
    out = {}
    for info in pkgutil.walk_packages(rtclass.__path__, "rtclass."):
        if ".apps." in info.name or ".bench." in info.name or ".sim." in info.name or ".evaluation." in info.name:
            continue
        mod = importlib.import_module(info.name)
        for k, v in vars(mod).items():
            if isinstance(v, numba.core.registry.CPUDispatcher):
                out[info.name + "." + k] = len(v.signatures)
    return out

sim = Simulation(SimulateConfig(duration_s=3.0, seed=int(sys.argv[1])))
data = sim.synthesizer().read(sim.n_samples)

class ListSource:
    def __init__(self, chunks):
        from rtclass.ingest.base import SourceStats
        self.chunks, self.stats = chunks, SourceStats()
    def open(self):
        from rtclass.ingest.base import StreamInfo
        return StreamInfo("scripted", 384, 30000.0)
    @property
    def finished(self):
        return not self.chunks
    def read(self, timeout_s):
        return self.chunks.pop(0)
    def close(self):
        pass

chunks = [Chunk(data[a : a + 30].copy(), a, a / 30000.0) for a in range(0, data.shape[0], 30)]
pipe = Pipeline(Config(), ListSource(chunks), probe=neuropixels("np1"))
pipe.live = False  # discovery in place: units appear within these 3 s whatever the machine's speed
pipe.open()
before = signatures()
pipe.run()
after = signatures()
print(json.dumps({"units": pipe.chain.bank.n, "spikes": len(pipe.log), "labeler": pipe.labeler is not None,
                  "compiled_in_run": {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)},
                  "gc_frozen": gc.get_freeze_count()}))
"""


def test_after_open_the_run_compiles_nothing():
    """Every kernel variant the hot path calls (signal chain, matching, discovery, features,
    labeller) is compiled (or loaded) by the warm-up in ``open``: a compile inside the live loop
    stalls it for seconds. Checked in a fresh interpreter, where nothing was compiled before."""
    import subprocess
    import sys

    from tests.conftest import SIM_SEED

    done = subprocess.run(
        [sys.executable, "-c", _COMPILES_NOTHING_SCRIPT, str(SIM_SEED)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["units"] > 0 and result["spikes"] > 0 and result["labeler"]  # the whole live path ran
    assert result["compiled_in_run"] == {}
    assert result["gc_frozen"] == 0  # the run froze its start-up objects out of the GC, and let go after


def test_a_source_that_stops_sending_shows_in_the_status(sim_data):
    from rtclass.pipeline import live

    chunks = [Chunk(sim_data[a : a + 300].copy(), a, a / 30000.0) for a in range(0, 3000, 300)]
    cfg = Config().replace(run={"idle_timeout_s": 1.6, "status_interval_s": 0.1})
    pipe = Pipeline(cfg, _SilentAfter(chunks, 384), probe=neuropixels("np1"))
    pipe.open()
    seen = []
    pipe.run(on_status=seen.append)
    waiting = [s for s in seen if s.waiting_s > 0]
    assert waiting, "the status never said the source was quiet"
    assert all(s.source_name == "scripted" for s in waiting)
    assert max(s.waiting_s for s in waiting) >= live.WAITING_AFTER_S
    assert seen[0].waiting_s == 0.0  # while data flowed


def test_a_slow_warm_up_says_it_is_compiling_and_how_long_it_took(monkeypatch):
    from rtclass.pipeline import live

    monkeypatch.setattr(live, "COMPILE_NOTICE_AFTER_S", 0.0)
    said = []
    took_s = live.compile_kernels(Config(), neuropixels("np1"), 30000.0, said.append)
    assert len(said) == 2
    assert "compiling" in said[0]
    assert said[1] == f"kernels ready in {took_s:.1f} s"


def test_a_quick_warm_up_says_nothing(monkeypatch):
    from rtclass.pipeline import live

    live.compile_kernels(Config(), neuropixels("np1"), 30000.0, lambda m: None)  # compiled now
    monkeypatch.setattr(live, "COMPILE_NOTICE_AFTER_S", 60.0)
    said = []
    live.compile_kernels(Config(), neuropixels("np1"), 30000.0, said.append)
    assert said == []


def test_an_error_inside_the_run_still_writes_what_was_processed(recording, tmp_path, monkeypatch):
    import pytest

    real_process = Pipeline.process
    calls = {"n": 0}

    def failing_process(self, chunk):
        calls["n"] += 1
        if calls["n"] == 1500:  # 1.5 s into the 3 s file
            raise RuntimeError("injected failure")
        return real_process(self, chunk)

    monkeypatch.setattr(Pipeline, "process", failing_process)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="injected failure"):
        run_live(_file_cfg(), f"file:{recording}", str(out))
    m = json.loads((out / "metrics.json").read_text())
    assert m["stopped_by_error"] == "RuntimeError: injected failure"
    assert m["samples_processed"] == 1499 * 30
    times = np.load(out / "spike_times.npy")
    assert times.size == m["spikes"] > 0 and times.max() < 1499 * 30


def test_after_sigkill_the_spikes_published_so_far_are_on_disk(recording, tmp_path):
    """``rtclass run`` killed with SIGKILL mid-run: no complete output files, but its journal holds
    the spikes published until about a second before, readable with ``read_spike_journal``."""
    import signal
    import subprocess
    import sys
    import time

    from rtclass.publish.files import JOURNAL_NAME, read_spike_journal

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "rtclass.cli", "run", "--source", f"file:{recording}", "--speed", "0.5"]
    proc = subprocess.Popen([*cmd, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        journal = out / JOURNAL_NAME
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (not journal.exists() or read_spike_journal(journal).size < 50):
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    spikes = read_spike_journal(journal)
    assert spikes.size >= 50 and (spikes["sample"] >= 0).all() and (spikes["amplitude_uv"] > 0).all()
    assert not (out / "spike_times.npy").exists() and not (out / "metrics.json").exists()


def test_the_unit_table_is_sent_when_it_changes_and_repeated_for_late_subscribers(monkeypatch):
    from types import SimpleNamespace

    from rtclass.pipeline import live

    clock = [100.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])
    sent = []
    cfg = Config().replace(publish={"unit_table_interval_s": 1.0, "unit_table_repeat_s": 5.0})
    bank = SimpleNamespace(n=3, merged_into={})
    table = SimpleNamespace(version=0, to_json=lambda now: f"table at {now}".encode())
    pipe = SimpleNamespace(
        chain=SimpleNamespace(bank=bank),
        table=table,
        labeler=None,
        cfg=cfg,
        publishers=[SimpleNamespace(publish_units=sent.append)],
        _table_sent=live.NOTHING_SENT,
        _table_due=0.0,
        _table_repeat_due=0.0,
    )
    publish = live.Pipeline._publish_table
    publish(pipe, 1)
    assert sent == [b"table at 1"]  # the first table
    clock[0] += 2.0
    publish(pipe, 2)
    assert len(sent) == 1  # unchanged, not yet due again
    bank.n = 4
    clock[0] += 0.5
    publish(pipe, 3)
    assert sent[-1] == b"table at 3"  # a new unit: sent at once (1 s since the last)
    bank.n = 5
    clock[0] += 0.2
    publish(pipe, 4)
    assert len(sent) == 2  # changed again, but within unit_table_interval_s
    clock[0] += 1.0
    publish(pipe, 5)
    assert sent[-1] == b"table at 5"
    clock[0] += 4.9
    publish(pipe, 6)
    assert len(sent) == 3
    clock[0] += 0.2
    publish(pipe, 7)
    assert sent[-1] == b"table at 7"  # unchanged for 5 s: repeated for whoever joined since


class _Capture(Publisher):
    """A publisher that keeps what it is handed."""

    def __init__(self):
        self.status, self.features, self.spikes = [], [], []

    def publish(self, spikes):
        self.spikes.append(spikes.copy())

    def publish_counts(self, messages):
        pass

    def publish_counts_array(self, counts, t_ends):
        pass

    def publish_units(self, table_json):
        pass

    def publish_status(self, status_json):
        self.status.append(json.loads(status_json))

    def publish_features(self, records):
        self.features.append(records.copy())

    def close(self):
        pass


def test_a_run_publishes_its_health_counters_and_the_spike_to_publish_lag(recording):
    from rtclass.ingest import make_source

    cfg = Config().replace(
        source={"speed": 1.0},
        publish={"zmq": False, "lsl": False, "status_interval_s": 0.2},
        classify={"model": "none"},
    )
    pipe = Pipeline(cfg, make_source(f"file:{recording}", cfg))
    pipe.open()
    cap = _Capture()
    pipe.publishers = [cap]
    try:
        pipe.run()
    finally:
        pipe.close()
    assert len(cap.status) >= 5  # 3 s of data at real time, every 0.2 s
    data_s = [s["data_s"] for s in cap.status]
    assert data_s == sorted(data_s) and data_s[-1] > data_s[0]
    last = cap.status[-1]
    for key in (
        "samples_dropped",
        "gaps",
        "restarts",
        "malformed",
        "malformed_by_kind",
        "chunk_p99_us",
        "units",
        "discovery_skipped",
    ):
        assert key in last, key
    # every published spike waited at least the match window's look-ahead after its sample
    waited_ms = (pipe.chain.detector.sweep + pipe.chain.matcher.normal_latency_samples) / 30000 * 1e3
    m = pipe.metrics()
    assert waited_ms <= m["publish_lag_ms"]["p50"] <= m["publish_lag_ms"]["p99"]
    assert 0 < m["active_units"] <= m["units"]  # units that get spikes, of all ids given
    late = m["late_decisions"]  # spikes decided again on their late window, and the units that do
    assert late["enabled"] and 0 <= late["moved"] <= late["held"] and late["later_by_ms"] > 0
    assert set(late["units"]) <= {r["id"] for r in pipe.table.rows(pipe.chain.detector.work_first)}
    assert last["publish_lag_p50_ms"] >= waited_ms
    assert cap.features == []  # no classifier, no features


def test_after_a_labelling_round_the_units_classifier_input_is_published_once():
    from types import SimpleNamespace

    from rtclass.pipeline import live
    from rtclass.publish.wire import FEATURES_DTYPE

    cap = _Capture()
    acg = np.random.default_rng(0).random((2, *FEATURES_DTYPE["acg3d"].shape)).astype(np.float32)
    wave = np.random.default_rng(1).random((2, FEATURES_DTYPE["waveform"].shape[0])).astype(np.float32)
    labeler = SimpleNamespace(inputs=(np.array([3, 8], np.int32), acg, wave), ticks=1)
    pipe = SimpleNamespace(cfg=Config(), publishers=[cap], labeler=labeler, _features_sent=-1)
    live.Pipeline._publish_status(pipe, live.Status(data_s=1.0))
    live.Pipeline._publish_status(pipe, live.Status(data_s=1.5))  # no new round: no features again
    assert [s["data_s"] for s in cap.status] == [1.0, 1.5]
    assert len(cap.features) == 1
    rec = cap.features[0]
    assert (
        rec["unit"].tolist() == [3, 8] and np.array_equal(rec["acg3d"], acg) and np.array_equal(rec["waveform"], wave)
    )
    labeler.ticks = 2
    live.Pipeline._publish_status(pipe, live.Status(data_s=2.0))
    assert len(cap.features) == 2


def test_with_the_layers_given_a_run_labels_with_the_shipped_layer_aware_model(recording, tmp_path):
    from rtclass.classify.model import DEFAULT_LAYER_MODEL, DEFAULT_MODEL

    cfg = _file_cfg().replace(classify={"layers": "GCL:0-1000,PCL:1000-1040,ML:1040-1400"})
    m = run_live(cfg, f"file:{recording}", str(tmp_path / "layers"))
    assert m["labels"]["model"] == str(DEFAULT_LAYER_MODEL)
    plain = run_live(_file_cfg(), f"file:{recording}", str(tmp_path / "plain"))
    assert plain["labels"]["model"] == str(DEFAULT_MODEL)
