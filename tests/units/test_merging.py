"""Merging units that discovery found twice (``rtclass.units.merging``), on the simulator's true
templates of seed 7's two interneurons 20 um apart (shape correlation 0.97)."""

import numpy as np
import pytest

from rtclass.config import Config, SimulateConfig
from rtclass.dsp.filtering import BandpassFilter
from rtclass.pipeline import new_bank
from rtclass.sim.recording import Simulation
from rtclass.units.discovery import OnlineDiscovery
from rtclass.units.merging import duplicates
from rtclass.units.table import UnitTable
from rtclass.units.templates import bandpassed_templates

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
    return duplicates(bank, inv_var, cfg.units.max_shift_samples, cfg.units.amplitude_tolerance, set(parted))


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
    assert bank.same_unit(wave, peak, cfg.units.max_shift_samples, cfg.units.merge_similarity,
                          cfg.units.amplitude_tolerance)  # the kept unit still explains it


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


def _round(cfg, bank, parted=()):
    """One unthreaded discovery round with nothing to cluster: only the merge check runs."""
    disc = OnlineDiscovery(cfg.units, bank, 30000.0)
    disc._parted.update(frozenset(p) for p in parted)
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
