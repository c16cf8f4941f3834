"""Every range of generator C is sourced and well-formed."""

import dataclasses

import numpy as np

from rtclass.cell_types import CELL_TYPES
from rtclass.sim.generator_c import celltypes as ct


def _all_spans():
    found = []
    for name in dir(ct):
        value = getattr(ct, name)
        if isinstance(value, ct.Span | ct.Chance):
            found.append((name, value))
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for field in dataclasses.fields(value):
                found.append((f"{name}.{field.name}", getattr(value, field.name)))
    return found


def test_every_range_has_a_source_and_is_ordered():
    spans = _all_spans()
    assert len(spans) > 100
    for name, value in spans:
        assert value.source.strip(), name
        if isinstance(value, ct.Span):
            assert value.low <= value.high, name
            if value.log:
                assert value.low > 0, name
        else:
            assert 0.0 <= value.p <= 1.0, name


def test_draws_stay_in_range_and_log_ranges_are_log_uniform():
    rng = np.random.default_rng(0)
    span = ct.Span(1.0, 100.0, "test", log=True)
    draws = np.array([span.draw(rng) for _ in range(4000)])
    assert draws.min() >= 1.0 and draws.max() <= 100.0
    assert 8.0 < np.median(draws) < 12.5  # geometric middle 10


def test_every_type_has_shapes_and_a_layer():
    assert set(ct.SHAPES) == set(CELL_TYPES) == set(ct.LAYERS)
    assert set(ct.FIRING) == {"PkC_ss", "MLI", "GoC", "MFB"}
    assert ct.LAYERS["MLI"] == "ML" and ct.LAYERS["PkC_cs"] == "PCL" and ct.LAYERS["MFB"] == "GCL"
