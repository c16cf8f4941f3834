import os
import subprocess
import sys

import numpy as np
import pytest

from rtclass.config import Config
from rtclass.discovery.clustering import cluster_snippets
from rtclass.discovery.online import OnlineDiscovery
from rtclass.discovery.worker import ClusteringFailed, ClusteringProcess
from rtclass.matching.templates import TemplateBank
from rtclass.probe import neuropixels

PRE = 20


def _zone(seed, depths=(30.0, 70.0), n_each=150):
    """Snippets [n, 60, 8] of two units of different trough depth on channel 0, with noise."""
    rng = np.random.default_rng(seed)
    snips = rng.normal(0.0, 3.0, (n_each * len(depths), 60, 8)).astype(np.float32)
    for k, depth in enumerate(depths):
        snips[k * n_each : (k + 1) * n_each, PRE - 2 : PRE + 3, 0] -= depth
        snips[k * n_each : (k + 1) * n_each, PRE - 2 : PRE + 3, 1] -= depth / 3
    return snips


@pytest.fixture
def process():
    p = ClusteringProcess(5)
    yield p
    p.close()


def test_the_child_process_clusters_exactly_as_in_process(process):
    zones = [_zone(1), _zone(2, depths=(50.0,))]
    got = process.run(zones, 6, 40, PRE)
    for snips, clusters in zip(zones, got):
        want = cluster_snippets(snips, 6, 40, PRE)
        assert len(clusters) == len(want) >= 1
        for (t_got, m_got), (t_want, m_want) in zip(clusters, want):
            assert np.array_equal(t_got, t_want) and np.array_equal(m_got, m_want)
    assert len(got[0]) == 2  # both units of the first zone


def test_a_child_dead_between_requests_is_restarted(process):
    process.run([_zone(3)], 6, 40, PRE)
    process._proc.kill()
    process._proc.wait()
    assert len(process.run([_zone(3)], 6, 40, PRE)[0]) == 2


def test_a_child_dying_mid_request_is_a_clear_error_then_a_new_one_starts(process, monkeypatch):
    def mute_child():  # a child that reads nothing and exits without answering
        process._proc = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return process._proc

    monkeypatch.setattr(process, "_start", mute_child)
    with pytest.raises(ClusteringFailed, match="clustering process failed"):
        process.run([_zone(3)], 6, 40, PRE)
    monkeypatch.undo()
    assert len(process.run([_zone(3)], 6, 40, PRE)[0]) == 2


def test_live_discovery_clusters_in_the_background_and_promotes_units():
    cfg = Config()
    bank = TemplateBank(neuropixels("np1"), 60, PRE, 60.0, 80.0)
    chans = bank.local_channels(100).size
    disc = OnlineDiscovery(cfg.discovery, cfg.matching, bank, 30000.0, threaded=True)
    try:
        snips = _zone(4)
        wide = np.zeros((snips.shape[0], 60, chans), np.float32)
        wide[:, :, :8] = snips
        disc.add([(i, 100, s) for i, s in enumerate(wide)])
        interval = disc.interval
        added = disc.maybe_run(0)  # arms the schedule
        added += disc.maybe_run(interval)  # starts a round in the background
        for k in range(2, 400):
            if added or (disc._job is None and k > 2):
                break
            disc._job is not None and disc._job.join(timeout=0.05)
            added += disc.maybe_run(k * interval)
        assert len(added) == 2 and bank.n == 2
        assert disc.failed_rounds == 0
    finally:
        disc.close()


def test_the_child_runs_at_the_configured_niceness_and_reports_its_cpu(process):
    process.run([_zone(4)], 6, 40, PRE)
    assert os.getpriority(os.PRIO_PROCESS, process._proc.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 5)
    assert process.cpu_s > 0
    first = process.cpu_s
    process._proc.kill()
    process._proc.wait()
    process.run([_zone(4)], 6, 40, PRE)  # a new child: its CPU adds to the dead one's
    assert process.cpu_s > first
