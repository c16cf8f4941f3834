"""The independent generator's parameter table: every type covered, every range sourced, draws
inside their ranges and reproducible, layers as C4 names them, ranges wide where physiology is."""

import numpy as np
import pytest
from scipy.stats import norm

from rtclass.cell_types import CELL_TYPES
from rtclass.features.c4 import MIN_SPIKES
from rtclass.sim.independent import celltypes as ct

SPECS = {
    **{f"train/{t}": ct.TRAIN_PARAMS[t] for t in CELL_TYPES},
    **{f"waveform/{t}": ct.WAVEFORM_PARAMS[t] for t in CELL_TYPES},
    "template": ct.TEMPLATE_PARAMS,
    "sorting": ct.SORTING_PARAMS,
}
#: Poisson scatter of the spike count that the floor must leave room for
COUNT_MARGIN = 1.2


def test_every_type_has_a_layer_a_process_and_a_waveform_model():
    assert set(ct.LAYER_OF_TYPE) == set(CELL_TYPES)
    assert ct.LAYER_OF_TYPE == {"PkC_ss": "PCL", "PkC_cs": "PCL", "MLI": "ML", "GoC": "GCL", "MFB": "GCL"}
    assert set(ct.PROCESS_OF_TYPE) == set(CELL_TYPES) == set(ct.WAVEFORM_OF_TYPE)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_range_names_its_source(name):
    for param, p in SPECS[name].items():
        assert p.source.strip(), f"{name}.{param} has no source"
        if p.kind in ("uniform", "log", "int"):
            assert p.high >= p.low, f"{name}.{param}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_draws_stay_in_their_ranges(name):
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = ct.draw(SPECS[name], rng)
        for param, p in SPECS[name].items():
            v = values[param]
            if p.kind == "chance":
                assert v in (0.0, 1.0)
            elif v != 0.0 or p.absent_p == 0:
                assert p.low <= v <= p.high, f"{name}.{param} = {v}"
            if p.kind == "int":
                assert v == int(v)


def test_draws_are_reproducible_and_differ_between_seeds():
    a = ct.draw_unit_params("MFB", np.random.default_rng(3))
    b = ct.draw_unit_params("MFB", np.random.default_rng(3))
    c = ct.draw_unit_params("MFB", np.random.default_rng(4))
    assert a == b
    assert a != c
    assert a["template"]["length_samples"] in ct.TEMPLATE_LENGTHS


def test_absent_features_are_absent_in_about_their_share_of_units():
    rng = np.random.default_rng(1)
    p = ct.SORTING_PARAMS["drift_chunk_frac"]
    drawn = np.array([p.draw(rng) for _ in range(2000)])
    assert abs(np.mean(drawn == 0) - p.absent_p) < 0.05


def test_ranges_are_wide_where_the_literature_is():
    assert ct.TRAIN_PARAMS["PkC_ss"]["rate_hz"].low <= 20 and ct.TRAIN_PARAMS["PkC_ss"]["rate_hz"].high >= 200
    assert ct.TRAIN_PARAMS["MLI"]["rate_hz"].low <= 5 and ct.TRAIN_PARAMS["MLI"]["rate_hz"].high >= 80
    assert ct.TRAIN_PARAMS["GoC"]["rate_hz"].low <= 2 and ct.TRAIN_PARAMS["GoC"]["rate_hz"].high >= 40
    assert ct.TRAIN_PARAMS["MFB"]["rate_hz"].low <= 5 and ct.TRAIN_PARAMS["MFB"]["rate_hz"].high >= 200
    mfb = ct.TRAIN_PARAMS["MFB"]["intra_burst_hz"]
    assert mfb.low <= 500 and mfb.high >= 1000
    assert (
        ct.WAVEFORM_PARAMS["PkC_cs"]["n_spikelets"].low == 1 and ct.WAVEFORM_PARAMS["PkC_cs"]["n_spikelets"].high == 5
    )


def test_complex_spike_rates_give_c4_enough_spikes_at_the_default_duration():
    """The floor of the complex-spike rate is high enough that 300 s still hold MIN_SPIKES
    spikes after the worst sorting losses: the smallest detection margin with the largest
    amplitude scatter, and the longest drift chunk."""
    sp = ct.SORTING_PARAMS
    detected = 1 - norm.cdf(np.log(1 / sp["detection_margin"].low) / sp["amplitude_jitter"].high)
    kept = detected * (1 - sp["drift_chunk_frac"].high)
    floor = ct.TRAIN_PARAMS["PkC_cs"]["rate_hz"].low
    assert floor * 300.0 * kept >= COUNT_MARGIN * MIN_SPIKES


def test_unknown_type_is_refused():
    with pytest.raises(ValueError, match="unknown cell type"):
        ct.draw_unit_params("granule", np.random.default_rng(0))
