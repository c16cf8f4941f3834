"""Online discovery (``rtclass.discovery.online.OnlineDiscovery``): its rounds on snippets built from
the simulator's true templates plus noise, without a stream; and, in a ``DetectionChain`` on a
simulated recording, whether its units and spikes depend on how the stream was chunked."""

import numpy as np
import pytest

from rtclass.config import Config, SimulateConfig
from rtclass.discovery.online import OnlineDiscovery, with_earlier_spikes
from rtclass.dsp.filtering import BandpassFilter
from rtclass.matching.templates import bandpassed_templates
from rtclass.pipeline.chain import DetectionChain, new_bank
from rtclass.sim.recording import Simulation
from tests.conftest import random_cuts

NOISE_UV = 8.6


@pytest.fixture(scope="module")
def filtered():
    cfg = Config()
    sim = Simulation(SimulateConfig(duration_s=1.0, seed=7))
    return sim, bandpassed_templates(sim.dense_templates(), BandpassFilter(cfg.preprocess, 1, sim.fs).sos)


def _units_found(filtered, depth_uv: float, n_spikes: int, cfg: Config | None = None) -> int:
    """Units one round creates from ``n_spikes`` noisy snippets of one unit scaled to ``depth_uv``."""
    cfg = Config() if cfg is None else cfg
    sim, templates = filtered
    bank = new_bank(cfg, sim.probe, sim.fs)
    disc = OnlineDiscovery(cfg.discovery, cfg.matching, bank, sim.fs)
    u = 26  # an MFB (large, isolated in seed 7)
    peak = int((-templates[u].min(0)).argmax())
    start = int(templates[u][:, peak].argmin()) - bank.pre
    wave = templates[u][start : start + bank.width][:, bank.local_channels(peak)]
    wave = wave * depth_uv / -wave[bank.pre, 0]
    rng = np.random.default_rng(0)
    disc.add([(i, peak, (wave + rng.normal(0, NOISE_UV, wave.shape)).astype(np.float32)) for i in range(n_spikes)])
    noise_sd = np.full(sim.probe.n_channels, NOISE_UV)
    disc.maybe_run(0, noise_sd)  # the first call only schedules the first round
    return len(disc.maybe_run(disc.interval, noise_sd))


def test_a_large_unit_needs_fewer_spikes_than_a_small_one(filtered):
    u = Config().discovery
    few = u.min_spikes_large + 5
    assert few < u.min_spikes and u.large_snr <= 15
    large, small = 15 * NOISE_UV, 6 * NOISE_UV
    assert _units_found(filtered, large, few) == 1
    assert _units_found(filtered, small, few) == 0  # too few spikes for its size ...
    assert _units_found(filtered, small, u.min_spikes + 5) == 1  # ... until it has enough
    every_unit_alike = Config().replace(discovery={"large_snr": 1000.0})
    assert _units_found(filtered, large, few, every_unit_alike) == 0


#: seconds of the session's simulated recording (seed 7) the chain runs on
CHAIN_SECONDS = 3


def _discover(sim, data, cuts, chain_too=False):
    """Spike records and bank of a DetectionChain without templates (discovery in place) fed
    ``data`` cut at ``cuts`` (and the chain)."""
    chain = DetectionChain(Config(), sim.probe, sim.fs, live=False)
    assert chain.discovery is not None and not chain.discovery.threaded
    out, a = [], 0
    for b in cuts:
        out.append(chain.process(data[a:b].copy(), a))
        a = b
    return (np.concatenate(out), chain.bank) + ((chain,) if chain_too else ())


def _assert_same_discovery(got, want, what):
    (spikes, bank), (ref_spikes, ref) = got, want
    assert np.array_equal(bank.ids[: bank.n], ref.ids[: ref.n]), f"{what}: unit ids differ"
    assert np.array_equal(bank.peak_channel[: bank.n], ref.peak_channel[: ref.n]), what
    np.testing.assert_allclose(bank.waves[: bank.n], ref.waves[: ref.n], rtol=1e-5, atol=1e-6, err_msg=what)
    assert spikes.size == ref_spikes.size, f"{what}: {spikes.size} spikes, one chunk gave {ref_spikes.size}"
    for field in ("sample", "channel", "unit"):
        bad = np.flatnonzero(spikes[field] != ref_spikes[field])
        assert bad.size == 0, f"{what}: {field} first differs at record {bad[0]} of {spikes.size}"


@pytest.fixture(scope="module")
def one_chunk(sim, sim_data):
    data = sim_data[: CHAIN_SECONDS * 30000]
    spikes, bank = _discover(sim, data, [data.shape[0]])
    assert bank.n >= 5 and (spikes["unit"] >= 0).sum() > 500  # discovery found units and they took spikes
    return data, (spikes, bank)


@pytest.mark.parametrize("seed", [12, 13])
def test_discovery_is_chunk_invariant(sim, one_chunk, seed):
    """Rounds run in place (``live=False``) at samples fixed by the stream's start: one chunk or
    chunks of random sizes give the same units (ids, peak channels, templates) and the same spikes."""
    data, want = one_chunk
    cuts = random_cuts(data.shape[0], np.random.default_rng(seed), 1, 700)
    _assert_same_discovery(_discover(sim, data, cuts), want, f"random chunks of 1..700 samples (seed {seed})")


def test_a_units_earlier_spikes_are_the_cluster_it_was_found_from(sim, one_chunk):
    """Each promoted unit remembers the spikes of its cluster, published unassigned before it
    existed; the output files' view gives them that unit, and most of them are its own."""
    data, _ = one_chunk
    spikes, bank, chain = _discover(sim, data, [data.shape[0]], chain_too=True)
    earlier = chain.discovery.earlier
    assert len(earlier) == chain.discovery.promoted >= 5
    files = with_earlier_spikes(spikes, earlier)
    changed = files["unit"] != spikes["unit"]
    assert changed.sum() >= sum(min(s.size, 15) for _, _, s in earlier)  # every cluster's members
    assert np.all(spikes["unit"][changed] < 0)  # only spikes published unassigned change
    assert np.array_equal(files[~changed], spikes[~changed])
    for uid, channel, samples in earlier:
        mine = files[(files["unit"] == uid) & np.isin(files["sample"], samples)]
        assert np.all(mine["channel"] == channel) and mine.size == np.unique(samples).size
    # the spikes so given are one true unit's, most of them: each is matched to the true spike
    # nearest in time among those peaking within 60 um of the unit's channel
    pos, peak = sim.probe.positions_um, np.abs(sim.dense_templates()).max(1).argmax(1)
    purity = []
    for _, channel, samples in earlier:
        near = np.flatnonzero(np.linalg.norm(pos[peak] - pos[channel], axis=1) <= 60)
        mine = np.isin(sim.spike_units, near)
        t, u = sim.spike_times[mine], sim.spike_units[mine]
        j = np.searchsorted(t, samples).clip(1, t.size - 1)
        j = np.where(np.abs(t[j - 1] - samples) < np.abs(t[j] - samples), j - 1, j)
        close = np.abs(t[j] - samples) <= 15
        if close.sum() >= 10:
            purity.append(np.bincount(u[j][close]).max() / close.sum())
    assert len(purity) >= 5 and np.median(purity) >= 0.8


def test_a_round_due_while_the_last_is_still_clustering_is_counted_as_skipped(filtered, monkeypatch):
    import threading

    cfg = Config()
    sim, _ = filtered
    disc = OnlineDiscovery(cfg.discovery, cfg.matching, new_bank(cfg, sim.probe, sim.fs), sim.fs, threaded=True)
    release = threading.Event()
    monkeypatch.setattr(disc, "_cluster", lambda due: release.wait(10) and [])
    disc.maybe_run(0)
    disc.maybe_run(disc.interval)  # starts a round, which blocks
    disc.maybe_run(2 * disc.interval)  # due again while it runs
    disc.maybe_run(3 * disc.interval)
    assert disc.skipped_rounds == 2 and disc.rounds == 1
    release.set()
    disc._job.join(5)
    disc.maybe_run(4 * disc.interval)  # collects the finished round, starts the next
    assert disc.skipped_rounds == 2 and disc.rounds == 2
    release.set()
    disc.close()
