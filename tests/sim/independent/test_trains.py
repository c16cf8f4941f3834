"""The independent generator's spike-train processes: reproducible for a seed, rates and
regularity per type in their documented ranges, the complex-spike pause of the simple spikes,
complex-spike refractoriness, mossy fibre bursts, and the processes' own arithmetic."""

import numpy as np
import pytest

from rtclass.sim.independent import celltypes as ct
from rtclass.sim.independent import trains as tr

DURATION_S = 60.0
N_UNITS = 8


def cv2(t: np.ndarray) -> float:
    """Median CV2 of consecutive intervals (Holt et al. 1996)."""
    i = np.diff(t)
    return float(np.median(2 * np.abs(np.diff(i)) / (i[1:] + i[:-1])))


def draws(cell_type: str, seed: int, n: int = N_UNITS) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [ct.draw(ct.TRAIN_PARAMS[cell_type], rng) for _ in range(n)]


def train(cell_type: str, rng: np.random.Generator, p: dict, duration_s: float = DURATION_S) -> np.ndarray:
    if cell_type == "MLI":
        return tr.interneuron_train(rng, duration_s, p)
    if cell_type == "GoC":
        return tr.golgi_train(rng, duration_s, p)
    if cell_type == "MFB":
        return tr.mossy_fibre_train(rng, duration_s, p)
    raise ValueError(cell_type)


@pytest.fixture(scope="module")
def purkinje():
    """(simple spikes, complex spikes, pauses, ss params, cs params) of N_UNITS cells."""
    out = []
    for i, (ss, cs) in enumerate(zip(draws("PkC_ss", 1), draws("PkC_cs", 2))):
        ss_t, cs_t, pauses = tr.purkinje_pair(np.random.default_rng(100 + i), DURATION_S, ss, cs)
        out.append((ss_t, cs_t, pauses, ss, cs))
    return out


@pytest.mark.parametrize("cell_type", ["MLI", "GoC", "MFB"])
def test_trains_are_reproducible_for_a_seed(cell_type):
    p = draws(cell_type, 5, 1)[0]
    a = train(cell_type, np.random.default_rng(9), p)
    b = train(cell_type, np.random.default_rng(9), p)
    c = train(cell_type, np.random.default_rng(10), p)
    np.testing.assert_array_equal(a, b)
    assert a.size != c.size or not np.array_equal(a, c)


def test_purkinje_pairs_are_reproducible_for_a_seed():
    ss, cs = draws("PkC_ss", 3, 1)[0], draws("PkC_cs", 4, 1)[0]
    a = tr.purkinje_pair(np.random.default_rng(1), DURATION_S, ss, cs)
    b = tr.purkinje_pair(np.random.default_rng(1), DURATION_S, ss, cs)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_simple_spikes_are_fast_and_fairly_regular(purkinje):
    rates = [ss_t.size / DURATION_S for ss_t, *_ in purkinje]
    assert 20 <= np.median(rates) <= 200
    for (ss_t, _, _, ss, _), rate in zip(purkinje, rates):
        assert 0.7 * ss["rate_hz"] <= rate <= 1.1 * ss["rate_hz"]
        assert 0.12 <= cv2(ss_t) <= 0.6
        assert np.diff(ss_t).min() >= ss["dead_time_ms"] / 1e3 - 1e-9  # refractory


def test_no_simple_spike_within_the_pause_after_a_complex_spike(purkinje):
    for ss_t, cs_t, pauses, ss, _ in purkinje:
        assert cs_t.size > 0
        first_after = np.searchsorted(ss_t, cs_t, side="left")
        nxt = np.append(ss_t, np.inf)[first_after]
        assert np.all(nxt - cs_t >= pauses)
        assert 0.3 * ss["cs_pause_ms"] <= np.median(pauses) * 1e3 <= 2 * ss["cs_pause_ms"]


def test_complex_spikes_are_rare_and_refractory(purkinje):
    for _, cs_t, _, _, cs in purkinje:
        rate = cs_t.size / DURATION_S
        assert 0.3 <= rate <= 4.0
        assert np.diff(cs_t).min() >= cs["abs_refractory_ms"] / 1e3


def test_interneurons_are_irregular_and_golgi_cells_regular_ish():
    mli = [train("MLI", np.random.default_rng(20 + i), p) for i, p in enumerate(draws("MLI", 6))]
    goc = [train("GoC", np.random.default_rng(40 + i), p) for i, p in enumerate(draws("GoC", 7))]
    mli_rates = [t.size / DURATION_S for t in mli]
    goc_rates = [t.size / DURATION_S for t in goc]
    assert 5 <= np.median(mli_rates) <= 80
    assert 2 <= np.median(goc_rates) <= 40
    assert np.median([cv2(t) for t in mli]) > 0.5
    assert np.median([cv2(t) for t in goc]) < np.median([cv2(t) for t in mli])


def test_mossy_fibres_burst_at_high_frequency():
    for i, p in enumerate(draws("MFB", 8)):
        t = train("MFB", np.random.default_rng(60 + i), p)
        isi = np.diff(t)
        assert 0.5 * p["rate_hz"] <= t.size / DURATION_S <= 1.5 * p["rate_hz"]
        assert np.sum(isi < 2e-3) > 0, "no intra-burst intervals"
        assert isi.min() >= min(p["dead_time_ms"], tr.MFB_MIN_BURST_ISI_MS) / 1e3 - 1e-9


def test_hazard_table_gives_the_rate_it_promises():
    a_s, rec_s, target = 2e-3, 10e-3, 40.0
    lam, achieved = tr.hazard_rate_table(a_s, rec_s)
    assert np.all(np.diff(achieved) > 0)
    t = tr.hazard_train(np.random.default_rng(0), np.full(int(100 / tr.RATE_BIN_S), target), a_s, rec_s)
    assert abs(t.size / 100 - target) < 0.05 * target
    assert np.diff(t).min() >= a_s


def test_inverse_gaussian_train_keeps_rate_cv_and_dead_time():
    rate, cv, dead = 50.0, 0.3, 3e-3
    t = tr.inverse_gaussian_train(np.random.default_rng(0), np.full(int(100 / tr.RATE_BIN_S), rate), cv, dead)
    isi = np.diff(t)
    assert abs(t.size / 100 - rate) < 0.03 * rate
    assert abs(isi.std() / isi.mean() - cv) < 0.03
    assert isi.min() >= dead


def test_silent_windows_suppress_spikes_and_restart_the_process():
    rate = np.full(int(10 / tr.RATE_BIN_S), 100.0)
    t = tr.inverse_gaussian_train(np.random.default_rng(0), rate, 0.3, 2e-3, np.array([2.0, 2.5]), np.array([3.0, 2.7]))
    assert not np.any((t >= 2.0) & (t < 3.0))
    assert np.any((t >= 3.0) & (t < 3.05))


def test_modulation_has_mean_one_and_moves():
    p = draws("MLI", 11, 1)[0] | {"epoch_gain_sd": 0.5, "sine_depth": 0.3}
    g = tr.modulation_profile(np.random.default_rng(0), DURATION_S, p)
    assert g.size == int(DURATION_S / tr.RATE_BIN_S)
    assert abs(g.mean() - 1) < 1e-9
    assert g.std() > 0.1


def test_to_samples_gives_sorted_unique_int64_inside_the_recording():
    s, source = tr.to_samples(np.array([0.5, 0.1, 0.1, -1.0, 2.0, 0.3]), 1.0)
    assert s.dtype == np.int64
    np.testing.assert_array_equal(s, [3000, 9000, 15000])
    np.testing.assert_array_equal(source, [1, 5, 0])  # the first of the two at 0.1 s
