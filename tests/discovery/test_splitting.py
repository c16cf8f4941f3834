"""Splitting a unit that holds two neighbouring units (``rtclass.discovery.splitting``), on the
simulator's true templates of two interneurons 20 um apart whose shapes correlate at 0.97."""

import numpy as np
import pytest

from rtclass.config import Config, SimulateConfig
from rtclass.discovery.splitting import plan_split
from rtclass.dsp.filtering import BandpassFilter
from rtclass.matching.templates import bandpassed_templates
from rtclass.pipeline.chain import new_bank
from rtclass.sim.recording import Simulation

NOISE_UV = 8.6  # the simulated probe's filtered noise level
A, B = 14, 15  # seed 7's near-identical MLIs (peak channels 267 and 269)


@pytest.fixture(scope="module")
def setup():
    cfg = Config()
    sim = Simulation(SimulateConfig(duration_s=1.0, seed=7))
    filtered = bandpassed_templates(sim.dense_templates(), BandpassFilter(cfg.preprocess, 1, sim.fs).sos)
    bank = new_bank(cfg, sim.probe, sim.fs)

    def centred(u, channels):
        """Unit u's template, trough at ``bank.pre``, on ``channels``."""
        peak = int((-filtered[u].min(0)).argmax())
        start = int(filtered[u][:, peak].argmin()) - bank.pre
        return filtered[u][start : start + bank.width][:, channels], peak

    return cfg, bank, centred


def _median_noise(rng, shape, n):
    return rng.normal(0, NOISE_UV * np.sqrt(np.pi / 2 / n), shape)


def test_a_unit_holding_two_close_units_is_split_at_the_other_ones_peak(setup):
    cfg, bank, centred = setup
    _, peak_b = centred(B, [0])
    _, peak_a = centred(A, [0])
    local = bank.local_channels(peak_b)
    mixed = 0.35 * centred(A, local)[0] + 0.65 * centred(B, local)[0]
    uid = bank.add(mixed, peak_b, weight=40)  # found first, from a cluster holding both, mostly B
    wide = bank.wide_channels(peak_b)
    rng = np.random.default_rng(0)
    clusters = [
        (centred(u, wide)[0] + _median_noise(rng, (bank.width, wide.size), n), np.ones(n, bool))
        for u, n in ((A, 220), (B, 180))
    ]
    inv_var = np.full(bank.probe.n_channels, 1 / NOISE_UV**2, np.float32)
    kept, n_kept, new = plan_split(
        clusters, uid, bank, inv_var, cfg.matching.max_shift_samples, cfg.matching.amplitude_tolerance
    )
    assert kept is not None and n_kept == 180  # the unit keeps B (what it mostly was)
    assert np.allclose(kept, clusters[1][0][:, [list(wide).index(c) for c in local]])
    assert [(channel, n) for _, channel, n in new] == [(peak_a, 220)]  # A becomes a unit at its own peak
    assert np.allclose(new[0][0], clusters[0][0][:, [list(wide).index(c) for c in bank.local_channels(peak_a)]])


def test_clusters_that_differ_by_size_jitter_or_noise_do_not_split_a_unit(setup):
    cfg, bank, centred = setup
    _, peak = centred(A, [0])
    uid = bank.add(centred(A, bank.local_channels(peak))[0], peak, weight=40)
    wide = bank.wide_channels(peak)
    base = centred(A, wide)[0]
    rng = np.random.default_rng(1)
    inv_var = np.full(bank.probe.n_channels, 1 / NOISE_UV**2, np.float32)
    for scale in (0.9, 1.1):  # ISO-SPLIT cut one unit's amplitude spread in two
        clusters = [(base * s + _median_noise(rng, base.shape, 100), np.ones(100, bool)) for s in (1.0, scale)]
        kept, _, new = plan_split(
            clusters, uid, bank, inv_var, cfg.matching.max_shift_samples, cfg.matching.amplitude_tolerance
        )
        assert kept is None and new == []
    # one cluster: nothing to split
    assert plan_split(
        [(base, np.ones(100, bool))],
        uid,
        bank,
        inv_var,
        cfg.matching.max_shift_samples,
        cfg.matching.amplitude_tolerance,
    ) == (None, 0, [])
