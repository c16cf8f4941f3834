"""Shared fixtures. LSL is confined to this machine before any test touches it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rtclass.ingest.lsl import use_loopback_only

use_loopback_only()

from rtclass.config import Config, SimulateConfig  # noqa: E402
from rtclass.sim.recording import Simulation  # noqa: E402
from rtclass.sim.writer import write_simulation  # noqa: E402

#: seed of the simulated probe most tests use
SIM_SEED = 7
#: reference arrays produced by npyx and the script that made them
TEST_DATA = Path(__file__).resolve().parent / "data"


def c4_reference_maker():
    """``tests/data/make_c4_reference.py`` as a module: the spike trains and waveforms that the
    stored npyx reference (``c4_reference.npz``) was computed from."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_c4_reference", TEST_DATA / "make_c4_reference.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    return maker


@pytest.fixture(scope="session")
def sim_cfg() -> SimulateConfig:
    return SimulateConfig(duration_s=6.0, seed=SIM_SEED)


@pytest.fixture(scope="session")
def sim(sim_cfg) -> Simulation:
    return Simulation(sim_cfg)


@pytest.fixture(scope="session")
def sim_data(sim) -> np.ndarray:
    """The whole simulated recording, float32 uV [n, 384]."""
    return sim.synthesizer().read(sim.n_samples)


@pytest.fixture(scope="session")
def recording(tmp_path_factory, sim_cfg) -> Path:
    """A simulated SpikeGLX recording on disk (3 s) with its ground truth folder."""
    out = tmp_path_factory.mktemp("sim")
    path, _ = write_simulation(replace(sim_cfg, duration_s=3.0), out)
    return path


@pytest.fixture
def cfg() -> Config:
    return Config()


def random_cuts(n: int, rng: np.random.Generator, lo: int = 1, hi: int = 2000) -> list[int]:
    """Chunk boundaries with chunk sizes drawn from lo..hi, ending at n."""
    cuts, a = [], 0
    while a < n:
        a = min(n, a + int(rng.integers(lo, hi + 1)))
        cuts.append(a)
    return cuts
