import numpy as np

from rtclass.ingest.base import StreamInfo
from rtclass.publish.files import SpikeLog, write_run_output
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
