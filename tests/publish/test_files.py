from pathlib import Path

import numpy as np
import pytest

from rtclass.ingest.base import StreamInfo
from rtclass.publish.files import SpikeLog, UnitOutputs, write_run_output
from rtclass.publish.wire import SPIKE_DTYPE


def _spikes(samples, units):
    s = np.zeros(len(samples), SPIKE_DTYPE)
    s["sample"], s["unit"] = samples, units
    return s


def test_spike_files_are_in_sample_order_with_their_amplitudes(tmp_path):
    """The second spike of an overlapping pair is published after the peak that revealed it and
    can precede spikes logged before it: the files are sorted, each amplitude kept with its spike."""
    log = SpikeLog()
    log.append(_spikes([100, 140], [0, 1]), [10.0, 14.0])
    log.append(_spikes([136, 200], [2, 0]), [13.6, 20.0])  # 136 belongs before 140
    out = write_run_output(tmp_path / "run", log, StreamInfo("sim", 4, 30000.0), {})
    assert np.load(out / "spike_times.npy").tolist() == [100, 136, 140, 200]
    assert np.load(out / "spike_clusters.npy").tolist() == [0, 2, 1, 0]
    assert np.allclose(np.load(out / "spike_amplitudes.npy"), [10.0, 13.6, 14.0, 20.0])


def test_the_files_give_a_discovered_units_earlier_spikes_to_it(tmp_path):
    """Spikes published unassigned before discovery found their unit (its cluster's members, on its
    channel) carry the unit in the files; the metrics say how many."""
    log = SpikeLog()
    s = _spikes([100, 150, 150, 300, 400], [-1, -1, -1, 7, -1])
    s["channel"] = [3, 3, 5, 3, 3]
    log.append(s, [1.0] * 5)
    units = UnitOutputs(
        np.array([7]), np.zeros((1, 20, 8), np.float32), np.zeros((8, 2)), {}, earlier=[(7, 3, np.array([100, 150]))]
    )
    out = write_run_output(tmp_path / "run", log, StreamInfo("sim", 8, 30000.0), {}, units)
    clusters = np.load(out / "spike_clusters.npy").tolist()
    assert clusters == [7, 7, 8, 7, 8]  # 8: the cluster of spikes no unit explains
    import json

    assert json.loads((out / "metrics.json").read_text())["earlier_spikes_assigned_in_files"] == 2


def test_the_journal_is_flushed_on_time_and_readable_while_the_run_goes_on(tmp_path):
    from rtclass.publish.files import JOURNAL_FLUSH_S, SpikeJournal, read_spike_journal

    now = [0.0]
    journal = SpikeJournal(tmp_path, clock=lambda: now[0])
    spikes = np.zeros(3, SPIKE_DTYPE)
    spikes["sample"], spikes["unit"], spikes["cell_type"] = [10, 20, 30], [1, 2, -1], [1, 3, 0]
    journal.append(spikes, np.array([50.0, 60.0, 70.0]))
    assert read_spike_journal(journal.path).size == 0  # buffered: not on disk yet
    now[0] = JOURNAL_FLUSH_S
    journal.append(spikes[:1], np.array([80.0]))
    got = read_spike_journal(journal.path)  # another reader sees every spike so far
    assert got["sample"].tolist() == [10, 20, 30, 10] and got["amplitude_uv"].tolist() == [50, 60, 70, 80]
    assert got["unit"].tolist() == [1, 2, -1, 1] and got["cell_type"].tolist() == [1, 3, 0, 1]
    with open(journal.path, "ab") as f:  # a record cut short by a kill
        f.write(b"\x01\x02\x03")
    assert read_spike_journal(journal.path).size == 4
    journal.close(remove=True)
    assert not journal.path.exists()


def test_output_files_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    from rtclass.publish import files

    files.save_npy(tmp_path / "a.npy", np.arange(3))
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2]

    def killed(path, array):  # the writer dies half-way
        path.write_bytes(b"\x93NUMPY")
        raise KeyboardInterrupt

    monkeypatch.setattr(files.np, "save", lambda f, a: killed(Path(f.name), a))
    with pytest.raises(KeyboardInterrupt):
        files.save_npy(tmp_path / "b.npy", np.arange(3))
    assert not (tmp_path / "b.npy").exists()  # never a truncated file under the real name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "b.npy.partial"]


def test_the_spike_log_keeps_every_spike_in_order_across_blocks(monkeypatch):
    from rtclass.publish import files
    from rtclass.publish.wire import SPIKE_DTYPE

    monkeypatch.setattr(files, "BLOCK_SPIKES", 64)
    log = files.SpikeLog(recent_batches=3)
    rng = np.random.default_rng(3)
    sizes = [1, 63, 0, 200, 5, 64, 7]  # batches that fill, cross and span whole blocks
    start = 0
    for n in sizes:
        batch = np.zeros(n, SPIKE_DTYPE)
        batch["sample"] = start + np.arange(n)
        batch["channel"] = rng.integers(0, 384, n)
        log.append(batch, batch["sample"].astype(np.float32) / 2)
        start += n
    assert len(log) == sum(sizes)
    assert np.array_equal(log.spikes()["sample"], np.arange(sum(sizes)))
    assert np.array_equal(log.amplitudes(), np.arange(sum(sizes)) / 2)
    last_three = log.spikes()[-(64 + 7 + 5) :]["channel"]  # the last three non-empty batches
    assert np.array_equal(log.recent_channels(10), np.unique(last_three))
