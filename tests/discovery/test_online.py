"""Online discovery's rounds (``rtclass.discovery.online.OnlineDiscovery``) on snippets built from
the simulator's true templates plus noise, without a stream."""

import numpy as np
import pytest

from rtclass.config import Config, SimulateConfig
from rtclass.discovery.clustering import median_of_rows
from rtclass.discovery.online import OnlineDiscovery
from rtclass.dsp.filtering import BandpassFilter
from rtclass.matching.templates import bandpassed_templates
from rtclass.pipeline.chain import new_bank
from rtclass.sim.recording import Simulation

NOISE_UV = 8.6


@pytest.fixture(scope="module")
def filtered():
    cfg = Config()
    sim = Simulation(SimulateConfig(duration_s=1.0, seed=7))
    return sim, bandpassed_templates(sim.dense_templates(), BandpassFilter(cfg.preprocess, 1, sim.fs).sos)


def _units_found(filtered, depth_uv: float, n_spikes: int, cfg: Config = Config()) -> int:
    """Units one round creates from ``n_spikes`` noisy snippets of one unit scaled to ``depth_uv``."""
    sim, templates = filtered
    bank = new_bank(cfg, sim.probe, sim.fs)
    disc = OnlineDiscovery(cfg.units, bank, sim.fs)
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
    u = Config().units
    assert u.discovery_min_spikes_large <= 25 < u.discovery_min_spikes and u.discovery_large_snr <= 15
    large, small = 15 * NOISE_UV, 6 * NOISE_UV
    assert _units_found(filtered, large, 25) == 1
    assert _units_found(filtered, small, 25) == 0  # too few spikes for its size ...
    assert _units_found(filtered, small, u.discovery_min_spikes + 5) == 1  # ... until it has enough
    every_unit_alike = Config().replace(units={"discovery_large_snr": 1000.0})
    assert _units_found(filtered, large, 25, every_unit_alike) == 0


def test_median_of_rows_is_numpys_median():
    rng = np.random.default_rng(2)
    for n in (1, 2, 47, 250):
        x = rng.normal(0, 10, (n, 20, 12)).astype(np.float32)
        assert np.array_equal(median_of_rows(x), np.median(x, axis=0))
