"""The simulator's cell types (``rtclass.sim.celltypes``): every range is a usable range, the types
live in their layers, and ``regime_specs`` widens and scales them as training sets and held-out
regimes need."""

from dataclasses import fields

import pytest

from rtclass.cell_types import CELL_TYPES
from rtclass.sim.celltypes import CS_PAUSE_MS, LAYERS, MAX_SPIKELET_DECAY, SPECS, _widen, regime_specs


def _ranges(spec):
    for part in (spec.firing, spec.shape):
        for f in fields(part):
            yield f"{spec.name}.{f.name}", getattr(part, f.name)


def test_every_type_has_ordered_non_negative_ranges_and_a_layer():
    assert set(SPECS) == set(CELL_TYPES) and LAYERS == ("ML", "PCL", "GCL", "WM")
    for spec in SPECS.values():
        assert spec.layer in LAYERS and spec.density_per_um >= 0
        for name, (lo, hi) in _ranges(spec):
            assert 0 <= lo <= hi, name
        assert spec.firing.rate_hz[0] > 0 and spec.shape.amplitude_uv[0] > 0
        # the dead time fits in the mean interval even at the highest rate
        assert spec.firing.dead_time_ms[1] / 1000 < 1 / spec.firing.rate_hz[1]
    assert 0 < CS_PAUSE_MS[0] <= CS_PAUSE_MS[1]


def test_types_follow_the_published_cerebellar_facts():
    assert SPECS["PkC_ss"].layer == SPECS["PkC_cs"].layer == "PCL"
    assert SPECS["MLI"].layer == "ML" and SPECS["GoC"].layer == SPECS["MFB"].layer == "GCL"
    assert SPECS["PkC_ss"].firing.rate_hz[0] > SPECS["PkC_cs"].firing.rate_hz[1] * 10  # simple >> complex spikes
    assert SPECS["PkC_cs"].shape.spikelets[0] >= 1 and SPECS["MFB"].firing.burst_rate_hz[1] > 0
    assert SPECS["MFB"].shape.trough_halfwidth_ms[1] <= min(
        s.shape.trough_halfwidth_ms[0] for n, s in SPECS.items() if n != "MFB"
    )  # the narrowest spikes
    assert SPECS["PkC_cs"].density_per_um == 0  # one per Purkinje cell, placed with its simple spikes


def test_the_default_regime_is_the_specs():
    default = regime_specs()
    for name, spec in SPECS.items():
        for (key, want), (_, got) in zip(_ranges(spec), _ranges(default[name])):
            assert got == pytest.approx(want, rel=1e-12), key


def test_spread_widens_every_range_about_its_centre():
    wide = regime_specs(spread=0.5)
    for name in SPECS:
        for (key, (lo, hi)), (_, (wlo, whi)) in zip(_ranges(SPECS[name]), _ranges(wide[name])):
            if hi <= 0 or key.endswith(("modulation_tau_s", "dead_time_ms", "burst_spikes", "burst_isi_ms")):
                continue  # off, or not randomised
            if key.endswith(("spikelets", "spikelet_interval_ms", "density_per_um")):
                continue
            assert wlo <= lo and whi >= hi and (whi - wlo) > (hi - lo), key
            assert wlo >= 0, key
    assert all(s.shape.spikelet_decay[1] <= MAX_SPIKELET_DECAY for s in regime_specs(spread=5.0).values())


def test_rate_and_width_scales_multiply():
    scaled = regime_specs(rate_scale=2.0, width_scale=1.5)
    for name, spec in SPECS.items():
        assert scaled[name].firing.rate_hz == pytest.approx(tuple(2 * v for v in spec.firing.rate_hz))
        assert scaled[name].shape.trough_halfwidth_ms == pytest.approx(
            tuple(1.5 * v for v in spec.shape.trough_halfwidth_ms)
        )
        assert scaled[name].shape.amplitude_uv == pytest.approx(
            spec.shape.amplitude_uv
        )  # amplitudes are not time constants


def test_widen_keeps_log_ranges_positive():
    lo, hi = _widen((1.0, 4.0), 1.0, log=True)
    assert 0 < lo < 1.0 and hi > 4.0 and lo * hi == pytest.approx(4.0)  # symmetric on a log scale
    assert _widen((0.0, 0.0), 1.0, log=False) == (0.0, 0.0)
    assert _widen((0.1, 0.2), 3.0, log=False)[0] == 0.0  # clipped at zero
