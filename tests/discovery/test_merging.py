"""Merging units that discovery found twice (``rtclass.discovery.merging``), on the simulator's true
templates of seed 7's two interneurons 20 um apart (shape correlation 0.97)."""

import numpy as np
import pytest

from rtclass.config import Config, SimulateConfig
from rtclass.discovery.merging import MIN_EXPECTED_PAIRS, RecentTrains, duplicates, one_neuron, pairs_at_lags
from rtclass.discovery.online import OnlineDiscovery
from rtclass.dsp.filtering import BandpassFilter
from rtclass.matching.templates import bandpassed_templates
from rtclass.pipeline.chain import new_bank
from rtclass.publish.unit_table import UnitTable
from rtclass.sim.recording import Simulation

NOISE_UV = 8.6  # the simulated probe's filtered noise level
A, B = 14, 15


@pytest.fixture(scope="module")
def templates():
    cfg = Config()
    sim = Simulation(SimulateConfig(duration_s=1.0, seed=7))
    filtered = bandpassed_templates(sim.dense_templates(), BandpassFilter(cfg.preprocess, 1, sim.fs).sos)
    return cfg, sim, filtered


def _bank(templates):
    cfg, sim, filtered = templates
    bank = new_bank(cfg, sim.probe, sim.fs)

    def centred(u, peak=None):
        """Unit u's template (uV), trough at ``bank.pre``, on the channels around ``peak`` (its own)."""
        own = int((-filtered[u].min(0)).argmax())
        peak = own if peak is None else peak
        start = int(filtered[u][:, own].argmin()) - bank.pre
        return filtered[u][start : start + bank.width][:, bank.local_channels(peak)], peak

    return cfg, bank, centred


def _duplicates(cfg, bank, parted=frozenset()):
    inv_var = np.full(bank.probe.n_channels, 1 / NOISE_UV**2, np.float32)
    return duplicates(bank, inv_var, cfg.matching.max_shift_samples, cfg.matching.amplitude_tolerance, set(parted))


def test_a_unit_found_twice_is_merged_into_the_one_with_more_spikes(templates):
    cfg, bank, centred = _bank(templates)
    wave, peak = centred(A)
    rng = np.random.default_rng(0)
    first = bank.add(wave, peak, weight=300)
    second = bank.add(1.1 * wave + rng.normal(0, NOISE_UV / 10, wave.shape), peak, weight=60)
    assert _duplicates(cfg, bank) == [(second, first)]
    bank.retire(second, first)
    assert bank.merged_into == {second: first}
    assert bank.index[second] not in bank.candidates[peak]  # it matches nothing from now on ...
    assert bank.index[first] in bank.candidates[peak]  # ... its spikes go to the first
    assert _duplicates(cfg, bank) == []
    rows = {r["id"]: r for r in UnitTable(bank, 30000.0).rows(0)}
    assert rows[second]["merged_into"] == first and rows[first]["merged_into"] is None  # subscribers see it
    assert bank.same_unit(
        wave, peak, cfg.matching.max_shift_samples, cfg.discovery.merge_similarity, cfg.matching.amplitude_tolerance
    )  # the kept unit still explains it


def test_different_units_are_not_merged(templates):
    cfg, bank, centred = _bank(templates)
    wave_a, peak_a = centred(A)
    bank.add(wave_a, peak_a, weight=100)
    bank.add(centred(B)[0], centred(B)[1], weight=100)  # 0.97 correlated, own peak channel
    bank.add(0.5 * wave_a, peak_a, weight=100)  # same shape, half the size
    assert _duplicates(cfg, bank) == []
    b_on_a, _ = centred(B, peak_a)  # B seen from A's peak channel: 0.97 correlated, not a duplicate
    bank.add(b_on_a, peak_a, weight=100)
    assert _duplicates(cfg, bank) == []


def test_units_a_split_parted_are_not_merged_again(templates):
    cfg, bank, centred = _bank(templates)
    wave, peak = centred(A)
    kept = bank.add(wave, peak, weight=100)
    split_off = bank.add(1.05 * wave, peak, weight=50)
    assert _duplicates(cfg, bank) == [(split_off, kept)]
    assert _duplicates(cfg, bank, {frozenset((kept, split_off))}) == []


def _round(cfg, bank, parted=(), spikes=None):
    """One unthreaded discovery round with nothing to cluster: only the merge checks run (on the
    decided ``spikes`` (samples, unit ids) given)."""
    disc = OnlineDiscovery(cfg.discovery, cfg.matching, bank, 30000.0)
    disc._parted.update(frozenset(p) for p in parted)
    if spikes is not None:
        disc.add_spikes(*spikes)
    noise_sd = np.full(bank.probe.n_channels, NOISE_UV)
    disc.maybe_run(0, noise_sd)  # schedules the first round
    disc.maybe_run(disc.interval, noise_sd)
    return disc


def test_a_discovery_round_merges_a_duplicate_and_the_matcher_stops_using_it(templates):
    cfg, bank, centred = _bank(templates)
    wave, peak = centred(A)
    first = bank.add(wave, peak, weight=300)
    second = bank.add(1.1 * wave, peak, weight=60)
    assert _round(cfg, bank, parted=[(first, second)]).merges == 0  # a split parted them
    disc = _round(cfg, bank)
    assert disc.merges == 1 and bank.merged_into == {second: first}
    assert not bank.active[bank.index[second]] and bank.index[second] not in bank.candidates[peak]
    third = bank.add(0.95 * wave, peak, weight=500)  # found again later, with more spikes: first goes into it
    assert _round(cfg, bank).merges == 1
    assert bank.merged_into == {first: third, second: third}  # chains resolve to the unit that gets spikes


FS = 30000
LO, HI = 24, 60  # REFRACTORY_FROM_MS, REFRACTORY_MS at 30 kHz


def _train(rng, rate_hz, seconds, dead_ms):
    """A Poisson train with a dead time (samples, sorted)."""
    isi = rng.exponential(FS / rate_hz, int(rate_hz * seconds * 1.5)) + dead_ms * FS / 1000
    t = np.cumsum(isi).astype(np.int64)
    return t[t < seconds * FS]


def test_a_neuron_cut_in_two_respects_one_refractory_period_two_neurons_do_not():
    rng = np.random.default_rng(0)
    neuron = _train(rng, 60.0, 20.0, 3.0)
    part = rng.random(neuron.size) < 0.3  # a split took 30 % of its spikes
    assert one_neuron(neuron[part], neuron[~part], LO, HI)
    other = _train(rng, 60.0, 20.0, 3.0)
    assert not one_neuron(neuron[part], other, LO, HI)
    # a sorter loses pairs closer than the match window for any two units: not taken for a neuron
    close = np.abs(other[:, None] - neuron[part][None, :]).min(1) < LO
    assert not one_neuron(neuron[part], other[~close], LO, HI)
    # too few spikes for the test to tell (chance predicts fewer than MIN_EXPECTED_PAIRS pairs)
    few = _train(rng, 2.0, 20.0, 3.0)
    assert few.size * other.size * 2 * (HI - LO + 1) / (20 * FS) < MIN_EXPECTED_PAIRS
    assert not one_neuron(few, neuron, LO, HI)


def test_complex_spikes_are_not_merged_with_the_simple_spikes_they_pause():
    rng = np.random.default_rng(1)
    cs = _train(rng, 1.5, 60.0, 100.0)
    ss = _train(rng, 100.0, 60.0, 3.0)
    paused = np.zeros(ss.size, bool)
    for t in cs:
        paused |= (ss > t - HI) & (ss < t + int(0.015 * FS))  # silent 15 ms after, and just before
    assert pairs_at_lags(cs, ss[~paused], LO, HI) == 0
    assert not one_neuron(cs, ss[~paused], LO, HI)


def test_trains_only_count_the_time_both_cover():
    rng = np.random.default_rng(2)
    neuron = _train(rng, 80.0, 30.0, 3.0)
    late = neuron[neuron > 20 * FS]  # a unit found at 20 s that took every other spike from then
    early = np.concatenate([neuron[neuron <= 20 * FS], late[::2]])
    assert one_neuron(late[1::2], early, LO, HI)
    assert not one_neuron(neuron[neuron < 10 * FS], neuron[neuron > 10 * FS], LO, HI)  # no common time


def test_recent_trains_keep_each_units_latest_spikes():
    trains = RecentTrains(capacity=3)
    trains.add(np.array([1, 2, 3, 4, 5, 6]), np.array([0, -1, 0, 1, 0, 0]))
    assert trains.train(0).tolist() == [3, 5, 6] and trains.train(1).tolist() == [4]
    assert trains.train(-1).size == 0 and trains.train(7).size == 0
    trains.forget(0)
    assert trains.train(0).size == 0


def test_a_discovery_round_merges_similar_units_whose_spikes_are_one_neurons(templates):
    cfg, bank, centred = _bank(templates)
    wave, peak = centred(A)
    rng = np.random.default_rng(3)
    # the same neuron's spikes, a cluster of them distorted (10 % of the energy) by overlaps
    distorted = wave + rng.normal(0, np.sqrt(0.1 * (wave**2).mean()), wave.shape).astype(np.float32)
    first = bank.add(wave, peak, weight=300)
    second = bank.add(distorted, peak, weight=100)
    assert _duplicates(cfg, bank) == []  # too different for the template merge
    neuron = _train(rng, 60.0, 30.0, 3.0)
    units = np.where(rng.random(neuron.size) < 0.3, second, first)
    assert _round(cfg, bank, parted=[(first, second)], spikes=(neuron, units)).merges == 1  # parted or not
    assert bank.merged_into == {second: first}
    cfg, bank, centred = _bank(templates)
    first, second = bank.add(wave, peak, weight=300), bank.add(distorted, peak, weight=100)
    both = np.concatenate([neuron, _train(rng, 30.0, 30.0, 3.0)])
    order = np.argsort(both, kind="stable")
    units = np.concatenate([np.full(neuron.size, first), np.full(both.size - neuron.size, second)])
    assert _round(cfg, bank, spikes=(both[order], units[order])).merges == 0  # two neurons
    cfg, bank, centred = _bank(templates)
    first, larger = bank.add(wave, peak, weight=300), bank.add(1.6 * wave, peak, weight=100)
    units = np.where(rng.random(neuron.size) < 0.3, larger, first)  # another size: never a candidate
    assert _round(cfg, bank, spikes=(neuron, units)).merges == 0
