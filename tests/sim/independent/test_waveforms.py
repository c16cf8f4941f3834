"""The independent generator's waveforms: widths per type after C4's preprocessing (MFB narrowest,
GoC broader than MLI), spikelets in complex spikes, the triphasic axonal spike, a causal
acquisition filter, coloured residual noise and the variety of a sorter's templates."""

import numpy as np
import pytest
from scipy.signal import find_peaks

from rtclass.cell_types import CELL_TYPES
from rtclass.features.c4 import preprocess_waveform
from rtclass.sim.independent import celltypes as ct
from rtclass.sim.independent import waveforms as wf

N_UNITS = 60
#: a secondary trough (a spikelet) must stand out by this much (relative to the main trough of
#: -1) and be at most this wide at half its prominence (the high-pass undershoot is broader)
TROUGH_PROMINENCE = 0.1
SPIKELET_MAX_WIDTH_SAMPLES = 15


def drawn(cell_type: str, seed: int, n: int = N_UNITS) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [ct.draw_unit_params(cell_type, rng) for _ in range(n)]


@pytest.fixture(scope="module")
def widths() -> dict[str, np.ndarray]:
    """Trough-to-peak (ms) after preprocess_waveform of N_UNITS noisy templates per type."""
    out = {}
    for t, cell_type in enumerate(CELL_TYPES):
        rng = np.random.default_rng(100 + t)
        model = ct.WAVEFORM_OF_TYPE[cell_type]
        out[cell_type] = np.array(
            [
                wf.trough_to_peak_ms(preprocess_waveform(wf.template(rng, model, p["waveform"], p["template"])))
                for p in drawn(cell_type, t)
            ]
        )
    return out


def test_mossy_fibres_are_narrowest(widths):
    mfb = np.median(widths["MFB"])
    assert 0.2 <= mfb <= 0.6
    for cell_type in CELL_TYPES:
        if cell_type != "MFB":
            assert mfb < np.median(widths[cell_type]), cell_type


def test_golgi_cells_are_broader_than_interneurons(widths):
    assert widths["GoC"].mean() > widths["MLI"].mean()
    assert 0.7 <= np.median(widths["GoC"]) <= 1.6


def test_preprocessed_templates_are_c4_shaped():
    rng = np.random.default_rng(0)
    for cell_type in CELL_TYPES:
        for p in drawn(cell_type, 1, 10):
            w = preprocess_waveform(wf.template(rng, ct.WAVEFORM_OF_TYPE[cell_type], p["waveform"], p["template"]))
            assert w.shape == (90,) and np.all(np.isfinite(w)) and w[30] == -1


def secondary_troughs(w: np.ndarray) -> int:
    """Sharp troughs after the main one (spikelets)."""
    i = int(np.argmin(w))
    peaks, _ = find_peaks(-w[i + 1 :], prominence=TROUGH_PROMINENCE, width=(None, SPIKELET_MAX_WIDTH_SAMPLES))
    return peaks.size


def test_complex_spikes_carry_spikelets_and_simple_spikes_do_not():
    cs = [secondary_troughs(wf.acquired_spike("complex", p["waveform"], p["template"])) for p in drawn("PkC_cs", 2)]
    assert np.mean(np.array(cs) > 0) > 0.85
    for cell_type in ("PkC_ss", "MLI", "GoC"):
        for p in drawn(cell_type, 3, 20):
            assert secondary_troughs(wf.acquired_spike("somatic", p["waveform"], p["template"])) == 0


def test_complex_spike_spikelets_show_in_c4_window_when_they_come_early():
    """With spikelets less than ~1.9 ms apart, the 90-sample preprocessed complex spike (2 ms after
    the trough) holds a second trough more often than a simple spike does."""

    def share(cell_type, seed):
        hits = []
        rng = np.random.default_rng(seed)
        for p in drawn(cell_type, seed, 40):
            if cell_type == "PkC_cs" and p["waveform"]["spikelet_interval_ms"] > 1.8:
                continue
            q = p["template"] | {"length_samples": 121.0, "trough_fraction": 0.3}
            w = preprocess_waveform(wf.template(rng, ct.WAVEFORM_OF_TYPE[cell_type], p["waveform"], q))
            hits.append(secondary_troughs(w) > 0)
        return np.mean(hits)

    assert share("PkC_cs", 4) > share("PkC_ss", 5) + 0.3


def test_axonal_spike_is_triphasic_and_somatic_spike_is_not():
    p = drawn("MFB", 6, 1)[0]
    w = wf.acquired_spike("axonal", p["waveform"], p["template"])
    i = int(np.argmin(w))
    assert w[:i].max() > 0.1 and w[i:].max() > 0.1
    p = drawn("GoC", 7, 1)[0]
    w = wf.acquired_spike("somatic", p["waveform"], p["template"])
    assert w[: int(np.argmin(w))].max() < 0.1


def test_acquisition_is_causal():
    """Nothing before the spike's onset (sosfilt, not a zero-phase filter)."""
    p = drawn("GoC", 8, 1)[0]
    w = wf.acquired_spike("somatic", p["waveform"], p["template"])
    onset = int(wf.PRE_MS / 1e3 * wf.SAMPLE_RATE_HZ)
    assert np.all(w[:onset] == 0)


def test_template_length_trough_position_and_sign():
    p = drawn("MLI", 9, 1)[0]
    rng = np.random.default_rng(0)
    for length in ct.TEMPLATE_LENGTHS:
        for fraction in (0.3, 0.5):
            tp = p["template"] | {
                "length_samples": float(length),
                "trough_fraction": fraction,
                "n_averaged": 1e12,
                "offset_frac": 0.0,
                "slope_frac": 0.0,
                "flipped": 0.0,
            }
            w = wf.template(rng, "somatic", p["waveform"], tp)
            assert w.size == length
            assert int(np.argmin(w)) == round(fraction * length)
            assert np.isclose(w.min(), -tp["amplitude_uv"], rtol=1e-6)
            flipped = wf.template(rng, "somatic", p["waveform"], tp | {"flipped": 1.0})
            assert int(np.argmax(flipped)) == round(fraction * length)


def test_templates_vary_across_units():
    rng = np.random.default_rng(1)
    params = drawn("PkC_ss", 10, 200)
    lengths = {int(p["template"]["length_samples"]) for p in params}
    assert lengths == set(ct.TEMPLATE_LENGTHS)
    amps = [np.abs(wf.template(rng, "somatic", p["waveform"], p["template"])).max() for p in params]
    assert np.max(amps) / np.min(amps) > 5
    assert 0 < sum(p["template"]["flipped"] for p in params) < 30


def test_residual_noise_is_pink_not_white():
    sos = wf.acquisition_filter(300.0, 1, 9000.0, wf.SAMPLE_RATE_HZ)
    x = wf.pink_noise(np.random.default_rng(0), 1 << 14, 1.0, sos)
    assert np.isclose(x.std(), 1.0)
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / wf.SAMPLE_RATE_HZ)
    low, high = power[(f > 500) & (f < 1500)].mean(), power[(f > 4000) & (f < 6000)].mean()
    assert low > 3 * high


def test_templates_are_reproducible_for_a_seed():
    p = drawn("PkC_cs", 11, 1)[0]
    a = wf.template(np.random.default_rng(5), "complex", p["waveform"], p["template"])
    b = wf.template(np.random.default_rng(5), "complex", p["waveform"], p["template"])
    np.testing.assert_array_equal(a, b)


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown waveform model"):
        wf.clean_spike("dendritic", {})
