"""Generator C's templates: anchored shapes, complex-spike spikelets, filters, template cuts,
and the per-type trough-to-peak ordering after C4's preprocessing."""

import numpy as np
import pytest

from rtclass.features.c4 import WAVEFORM_PEAK, preprocess_waveform
from rtclass.sim.generator_c import celltypes as ct
from rtclass.sim.generator_c.waveforms import (
    SAMPLES_PER_MS,
    SpikeShape,
    band_pass,
    complex_spike,
    draw_complex_spike_shape,
    draw_recording,
    draw_shape,
    evaluate,
    shape_anchors,
    shape_curve,
    template_uv,
    window_times_ms,
)

UNITS = 40


def _preprocessed(rng, cell_type):
    shape = draw_shape(rng, ct.SHAPES[cell_type])
    cs = draw_complex_spike_shape(rng) if cell_type == "PkC_cs" else None
    template = template_uv(rng, shape, draw_recording(rng, cell_type), draw_shape(rng, ct.MLI_SHAPE), cs, np.array([2]))
    return preprocess_waveform(template)


def _trough_to_peak_ms(wave):
    return (int(np.argmax(wave[WAVEFORM_PEAK:]))) / SAMPLES_PER_MS


@pytest.fixture(scope="module")
def widths():
    rng = np.random.default_rng(4)
    return {t: np.array([_trough_to_peak_ms(_preprocessed(rng, t)) for _ in range(UNITS)]) for t in ct.SHAPES}


def test_trough_to_peak_ordering(widths):
    median = {t: np.median(w) for t, w in widths.items()}
    assert median["MFB"] < median["PkC_ss"] < median["GoC"]
    assert median["MFB"] < median["MLI"] < median["GoC"]
    assert median["MFB"] < 0.35 and median["GoC"] > 0.55
    assert np.mean(widths["MFB"] < 0.4) > 0.9


def test_shape_passes_through_its_anchors():
    shape = SpikeShape(0.2, 0.3, 0.2, 0.45, 0.5, 0.4, 0.3, 0.6, 0.0, 0.3)
    times, values = shape_anchors(shape)
    assert np.all(np.diff(times) > 0)
    curve = shape_curve(shape)
    assert evaluate(curve, np.array([0.0]))[0] == pytest.approx(-1.0)
    assert evaluate(curve, np.array([0.5]))[0] == pytest.approx(0.4)
    dense = evaluate(curve, np.linspace(-2, 3, 5001))
    assert dense.min() == pytest.approx(-1.0, abs=1e-9) and dense.max() == pytest.approx(0.4, abs=1e-9)
    assert evaluate(curve, np.array([-5.0, 5.0])).tolist() == [0.0, 0.0]


def test_mossy_fibre_shapes_are_often_triphasic():
    rng = np.random.default_rng(5)
    late = [draw_shape(rng, ct.MFB_SHAPE).late_trough > 0 for _ in range(200)]
    assert 0.55 < np.mean(late) < 0.85


def test_complex_spike_has_spikelets_after_the_initial_spike():
    rng = np.random.default_rng(6)
    shape = draw_shape(rng, ct.PKC_CS_SHAPE)
    cs = draw_complex_spike_shape(rng)
    t_ms = window_times_ms()
    plain = evaluate(shape_curve(shape), t_ms)
    full = complex_spike(rng, shape_curve(shape), cs, 3, t_ms)
    late = t_ms > cs.first_spikelet_ms - 0.5
    assert np.abs(full - plain)[late].max() > 0.1
    np.testing.assert_allclose(full[t_ms < -1.5], plain[t_ms < -1.5])


def test_band_pass_removes_a_slow_offset():
    trace = np.ones(3000)
    assert abs(band_pass(trace, None)[-100:]).max() < 0.05
    assert abs(band_pass(trace, 300.0)[1000:2000]).max() < 0.05


def test_templates_have_the_drawn_length_and_sign():
    rng = np.random.default_rng(7)
    for _ in range(20):
        recording = draw_recording(rng, "GoC")
        template = template_uv(rng, draw_shape(rng, ct.GOC_SHAPE), recording, draw_shape(rng, ct.MFB_SHAPE))
        assert template.size == recording.template_length in ct.TEMPLATE_LENGTHS
        extreme = template[np.argmax(np.abs(template - recording.baseline_offset_uv))] - recording.baseline_offset_uv
        assert (extreme > 0) == recording.positive_going
        wave = preprocess_waveform(template)
        assert wave.shape == (90,) and wave[WAVEFORM_PEAK] == pytest.approx(-1.0)


def test_templates_are_deterministic_per_seed():
    def make(seed):
        rng = np.random.default_rng(seed)
        return template_uv(
            rng, draw_shape(rng, ct.MLI_SHAPE), draw_recording(rng, "MLI"), draw_shape(rng, ct.MLI_SHAPE)
        )

    np.testing.assert_array_equal(make(1), make(1))
    assert not np.array_equal(make(1), make(2))
