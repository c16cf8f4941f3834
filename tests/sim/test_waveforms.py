"""Simulated waveforms (``rtclass.sim.waveforms``): each unit's time course has its trough of depth 1
where it says, widths and after-positivities drawn from its type's ranges, and a footprint that
fades and broadens with distance from the unit."""

import numpy as np
import pytest

from rtclass.sim.celltypes import SPECS
from rtclass.sim.waveforms import (
    FOOTPRINT_CUTOFF,
    PRE_MS,
    contact_gain_mix,
    draw,
    draw_log,
    footprint,
    footprint_channels,
    smoothed,
    time_course,
)

FS = 30000.0


def _fwhm_ms(w, trough):
    """Full width at half depth of the trough, by linear interpolation."""
    half = w[trough] / 2
    left = trough
    while w[left - 1] < half:
        left -= 1
    right = trough
    while w[right + 1] < half:
        right += 1
    lo = left - 1 + (w[left - 1] - half) / (w[left - 1] - w[left])
    hi = right + (w[right] - half) / (w[right] - w[right + 1])
    return (hi - lo) / FS * 1000


@pytest.mark.parametrize("name", list(SPECS))
def test_time_course_has_its_trough_at_minus_one_with_the_types_width(name):
    spec = SPECS[name].shape
    rng = np.random.default_rng(0)
    for _ in range(5):
        w, trough = time_course(spec, rng, FS)
        assert w.dtype == np.float32 and w[trough] == pytest.approx(-1.0)
        assert trough == round(PRE_MS * FS / 1000)  # 1 ms before the trough kept
        lo, hi = spec.trough_halfwidth_ms
        assert lo * 0.8 <= _fwhm_ms(w.astype(np.float64), trough) <= hi * 1.25  # other phases overlap a little
        after = w[trough : trough + int(3 * FS / 1000)]
        assert after.max() > 0.5 * spec.post_ratio[0]  # an after-positivity


def test_complex_spikes_have_spikelets_and_last_longer():
    ss, _ = time_course(SPECS["PkC_ss"].shape, np.random.default_rng(1), FS)
    cs, trough = time_course(SPECS["PkC_cs"].shape, np.random.default_rng(1), FS)
    assert cs.size > ss.size
    later = cs[trough + int(1.2 * FS / 1000) :]
    assert later.min() < -0.1  # further troughs after the first


def test_the_same_generator_state_gives_the_same_waveform():
    a, _ = time_course(SPECS["GoC"].shape, np.random.default_rng(9), FS)
    b, _ = time_course(SPECS["GoC"].shape, np.random.default_rng(9), FS)
    assert np.array_equal(a, b)


def test_amplitude_falls_with_distance_and_far_contacts_see_a_broader_shape():
    gain, mix = contact_gain_mix(np.array([0.0, 0.0, 20.0, 0.0]), np.array([0.0, 20.0, 0.0, 200.0]), 20.0)
    assert gain[0] == pytest.approx(1.0) and mix[0] == 0.0  # right under the unit
    assert gain[1] == pytest.approx(gain[2]) and gain[0] > gain[1] > gain[3]  # by distance, any direction
    assert gain[1] == pytest.approx((20 / np.sqrt(800)) ** 2.5)
    assert mix[3] > mix[1] > 0
    course, _ = time_course(SPECS["MFB"].shape, np.random.default_rng(2), FS)
    smooth = smoothed(course, FS)
    assert smooth.dtype == np.float32 and smooth.min() > course.min()  # high frequencies faded
    assert smooth.sum() == pytest.approx(course.sum(), abs=1e-3)


def test_footprint_covers_the_contacts_it_reaches():
    contacts = np.stack([np.zeros(40), 20.0 * np.arange(40)], 1)
    unit = np.array([0.0, 400.0, 15.0])
    chans = footprint_channels(unit, contacts, 0.0)
    gain, _ = contact_gain_mix(contacts[:, 0] - unit[0], contacts[:, 1] - unit[1], unit[2])
    assert np.array_equal(chans, np.flatnonzero(gain >= FOOTPRINT_CUTOFF)) and 20 in chans
    assert np.all(np.diff(chans) == 1)  # one contiguous stretch around the unit
    drifting = footprint_channels(unit, contacts, 60.0)
    assert set(chans) < set(drifting.tolist())  # drift reaches further
    course, trough = time_course(SPECS["MLI"].shape, np.random.default_rng(3), 30000.0)
    waves = footprint(course, smoothed(course, 30000.0), unit, contacts, chans)
    assert waves.shape == (course.size, chans.size)
    depth = -waves[trough]
    assert chans[int(depth.argmax())] == 20 and depth.max() == pytest.approx(1.0, rel=1e-4)
    moved = footprint(course, smoothed(course, 30000.0), unit, contacts, drifting, drift_um=40.0)
    assert drifting[int((-moved[trough]).argmax())] == 22  # 40 um up the probe: two contacts on


def test_draws_stay_in_their_ranges():
    rng = np.random.default_rng(4)
    xs = [draw(rng, (2.0, 5.0)) for _ in range(200)]
    logs = [draw_log(rng, (1.0, 100.0)) for _ in range(2000)]
    assert 2.0 <= min(xs) and max(xs) <= 5.0
    assert 1.0 <= min(logs) and max(logs) <= 100.0
    assert np.median(logs) == pytest.approx(10.0, rel=0.2)  # log-uniform: the geometric middle
    assert draw(rng, (3.0, 3.0)) == 3.0 and draw_log(rng, (7.0, 7.0)) == 7.0
