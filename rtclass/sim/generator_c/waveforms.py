"""Peak-channel templates: a spike shape anchored at extracellular waveform features, what the
probe and the sorter do to it, and the template as the average of jittered noisy spikes.

**Shape.** A shape-preserving cubic (PCHIP) through anchor points set by features drawn per unit:
onset, pre-trough positivity (size, time), the half-depth points (half-width, and how much of it
falls before the trough), the trough (-1), the zero crossing, the after-peak (peak/trough ratio,
trough-to-peak time), its half-recovery and return to baseline, and, for triphasic spikes, a late
negativity. PCHIP never overshoots its anchors, so the features are the ones drawn (before
filtering).

**Complex spikes.** Each complex spike in the average has its own spikelets: decrementing
copies of the spike (broader), 1-3 ms apart with jittered timing, and a slow (dendritic)
component of either sign; their counts follow the cell's spike train.

**Probe and sorter.** The average of jittered, amplitude-varying copies (plus a fraction of
another unit's spikes: contamination) is band-passed as a Neuropixels 1.0 channel is (first-order
300 Hz high-pass, 10 kHz low-pass, causal), then by the sorter's zero-phase software high-pass;
band-passed background noise (over the square root of the spike count) is added, the sign flipped
for positive-going units, a baseline offset added, and a template of 61, 82 or 90 samples cut with
the trough at a sorter-dependent position.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.signal import butter, lfilter, sosfiltfilt

from rtclass.sim.generator_c import celltypes as ct

SAMPLE_RATE_HZ = 30000.0
SAMPLES_PER_MS = SAMPLE_RATE_HZ / 1000.0
#: the simulated window around the trough before cutting the template (ms): long enough for the
#: slow complex-spike component and the filters' transients
WINDOW_BEFORE_MS = 4.0
WINDOW_AFTER_MS = 14.0
#: spike copies evaluated for the template's shape (the noise is that of the full average)
SHAPE_COPIES = 96
#: anchor geometry, as fractions of the drawn features: the zero crossing before the trough sits
#: this far out relative to the descending half-depth point; the pre-trough positivity is at least
#: this far out; the positivity starts this much of its lead time before itself; and the
#: spike's baseline start when there is no positivity
PRE_ZERO_CROSSING_FACTOR = 1.8
MIN_PRE_PEAK_FACTOR = 2.6
PRE_ONSET_FACTOR = 1.0
NO_POSITIVITY_ONSET_FACTOR = 3.0
#: a pre-trough positivity below this size is left out (trough units)
MIN_POSITIVITY = 0.01
#: the after-peak is at least this many ascending half-widths after the trough
MIN_PEAK_FACTOR = 1.5
#: for triphasic spikes the half-recovery is at most this fraction of the late-trough delay
TRIPHASIC_HALF_RECOVERY_FRACTION = 0.4
#: the slow complex-spike component: a gamma-like bump x^2 exp(-x), x = t / tau, tau = duration /
#: this; it peaks at x = 2
SLOW_DURATION_PER_TAU = 5.0
SLOW_PEAK_X = 2.0
#: the trough and the half-depth points the half-width is measured at (trough units)
TROUGH = -1.0
HALF_DEPTH = 0.5
#: per complex spike, the slow component's size varies by this fraction (sd)
SLOW_AMPLITUDE_CV = 0.2
#: the first-order probe filters
PROBE_FILTER_ORDER = 1


@dataclass(frozen=True)
class SpikeShape:
    """The anchored features of one unit's wideband spike (trough units, ms from the trough)."""

    pre_peak: float
    pre_peak_ms: float
    half_width_ms: float
    descent_fraction: float
    trough_to_peak_ms: float
    peak_ratio: float
    recovery_half_ms: float
    recovery_tail_ms: float
    late_trough: float
    late_trough_delay_ms: float


@dataclass(frozen=True)
class ComplexSpikeShape:
    first_spikelet_ms: float
    spikelet_interval_ms: float
    spikelet_timing_jitter_ms: float
    first_spikelet_amplitude: float
    spikelet_decrement: float
    spikelet_width_factor: float
    slow_amplitude: float
    slow_onset_ms: float
    slow_duration_ms: float


@dataclass(frozen=True)
class Recording:
    """What the probe and the sorter add to a unit's template."""

    amplitude_uv: float
    noise_uv: float
    averaged_spikes: int
    jitter_ms: float
    amplitude_cv: float
    software_highpass_hz: float | None
    template_length: int
    trough_index: int
    baseline_offset_uv: float
    positive_going: bool
    contamination: float


def draw_shape(rng: np.random.Generator, ranges: ct.ShapeRanges) -> SpikeShape:
    triphasic = ranges.triphasic.happens(rng)
    return SpikeShape(
        pre_peak=ranges.pre_peak.draw(rng),
        pre_peak_ms=ranges.pre_peak_ms.draw(rng),
        half_width_ms=ranges.half_width_ms.draw(rng),
        descent_fraction=ranges.descent_fraction.draw(rng),
        trough_to_peak_ms=ranges.trough_to_peak_ms.draw(rng),
        peak_ratio=ranges.peak_ratio.draw(rng),
        recovery_half_ms=ranges.recovery_half_ms.draw(rng),
        recovery_tail_ms=ranges.recovery_tail_ms.draw(rng),
        late_trough=ranges.late_trough.draw(rng) if triphasic else 0.0,
        late_trough_delay_ms=ranges.late_trough_delay_ms.draw(rng),
    )


def scaled_in_time(shape: SpikeShape | ComplexSpikeShape, width_scale: float) -> SpikeShape | ComplexSpikeShape:
    """``shape`` with every time (``*_ms``) times ``width_scale`` (a held-out regime)."""
    times = {f.name: getattr(shape, f.name) * width_scale for f in fields(shape) if f.name.endswith("_ms")}
    return replace(shape, **times)


def draw_complex_spike_shape(rng: np.random.Generator) -> ComplexSpikeShape:
    r = ct.COMPLEX_SPIKE_SHAPE
    sign = 1.0 if r.slow_positive.happens(rng) else -1.0
    return ComplexSpikeShape(
        first_spikelet_ms=r.first_spikelet_ms.draw(rng),
        spikelet_interval_ms=r.spikelet_interval_ms.draw(rng),
        spikelet_timing_jitter_ms=r.spikelet_timing_jitter_ms.draw(rng),
        first_spikelet_amplitude=r.first_spikelet_amplitude.draw(rng),
        spikelet_decrement=r.spikelet_decrement.draw(rng),
        spikelet_width_factor=r.spikelet_width_factor.draw(rng),
        slow_amplitude=sign * r.slow_amplitude.draw(rng),
        slow_onset_ms=r.slow_onset_ms.draw(rng),
        slow_duration_ms=r.slow_duration_ms.draw(rng),
    )


def draw_recording(rng: np.random.Generator, cell_type: str) -> Recording:
    length = int(rng.choice(ct.TEMPLATE_LENGTHS))
    return Recording(
        amplitude_uv=ct.SHAPES[cell_type].amplitude_uv.draw(rng),
        noise_uv=ct.NOISE_UV.draw(rng),
        averaged_spikes=int(ct.AVERAGED_SPIKES.draw(rng)),
        jitter_ms=ct.ALIGNMENT_JITTER_MS.draw(rng),
        amplitude_cv=ct.SPIKE_AMPLITUDE_CV.draw(rng),
        software_highpass_hz=ct.SOFTWARE_HIGHPASS_HZ[int(rng.integers(len(ct.SOFTWARE_HIGHPASS_HZ)))],
        template_length=length,
        trough_index=int(round(ct.TROUGH_POSITION_FRACTION.draw(rng) * length)),
        baseline_offset_uv=ct.BASELINE_OFFSET_UV.draw(rng),
        positive_going=ct.SHAPES[cell_type].positive_going.happens(rng),
        contamination=ct.TEMPLATE_CONTAMINATION.draw(rng),
    )


def shape_anchors(shape: SpikeShape) -> tuple[np.ndarray, np.ndarray]:
    """(times ms, values) the PCHIP passes through, strictly increasing in time."""
    descend_ms = shape.half_width_ms * shape.descent_fraction
    ascend_ms = shape.half_width_ms - descend_ms
    pre_zero_ms = PRE_ZERO_CROSSING_FACTOR * descend_ms
    times, values = [], []
    if shape.pre_peak > MIN_POSITIVITY:
        pre_ms = max(shape.pre_peak_ms, MIN_PRE_PEAK_FACTOR * descend_ms)
        times += [-pre_ms * (1.0 + PRE_ONSET_FACTOR), -pre_ms]
        values += [0.0, shape.pre_peak]
    else:
        times.append(-NO_POSITIVITY_ONSET_FACTOR * descend_ms)
        values.append(0.0)
    peak_ms = max(shape.trough_to_peak_ms, MIN_PEAK_FACTOR * ascend_ms)
    # the zero crossing where a straight line from the ascending half-depth point to the peak crosses 0
    zero_ms = ascend_ms + (peak_ms - ascend_ms) * HALF_DEPTH / (HALF_DEPTH + shape.peak_ratio)
    times += [-pre_zero_ms, -descend_ms, 0.0, ascend_ms, zero_ms, peak_ms]
    values += [0.0, -HALF_DEPTH, TROUGH, -HALF_DEPTH, 0.0, shape.peak_ratio]
    if shape.late_trough > 0:
        half_ms = min(shape.recovery_half_ms, TRIPHASIC_HALF_RECOVERY_FRACTION * shape.late_trough_delay_ms)
        late_ms = peak_ms + shape.late_trough_delay_ms
        times += [peak_ms + half_ms, late_ms, late_ms + shape.recovery_tail_ms]
        values += [shape.peak_ratio * HALF_DEPTH, -shape.late_trough, 0.0]
    else:
        times += [peak_ms + shape.recovery_half_ms, peak_ms + shape.recovery_half_ms + shape.recovery_tail_ms]
        values += [shape.peak_ratio * HALF_DEPTH, 0.0]
    return np.array(times), np.array(values)


def shape_curve(shape: SpikeShape) -> PchipInterpolator:
    times, values = shape_anchors(shape)
    return PchipInterpolator(times, values, extrapolate=False)


def evaluate(curve: PchipInterpolator, t_ms: np.ndarray) -> np.ndarray:
    """The shape at ``t_ms`` (0 outside its anchors)."""
    return np.nan_to_num(curve(t_ms))


def window_times_ms() -> np.ndarray:
    n = int(round((WINDOW_BEFORE_MS + WINDOW_AFTER_MS) * SAMPLES_PER_MS))
    return np.arange(n) / SAMPLES_PER_MS - WINDOW_BEFORE_MS


def _slow_component(t_ms: np.ndarray, onset_ms: float, duration_ms: float) -> np.ndarray:
    tau = duration_ms / SLOW_DURATION_PER_TAU
    x = np.clip(t_ms - onset_ms, 0.0, None) / tau
    return x * x * np.exp(-x) / (SLOW_PEAK_X * SLOW_PEAK_X * np.exp(-SLOW_PEAK_X))  # peak 1


def complex_spike(
    rng: np.random.Generator,
    curve: PchipInterpolator,
    cs: ComplexSpikeShape,
    n_spikelets: int,
    t_ms: np.ndarray,
) -> np.ndarray:
    """One complex spike: the initial spike, ``n_spikelets`` decrementing, broader spikelets with
    jittered timing, and the slow component."""
    out = evaluate(curve, t_ms)
    at_ms = cs.first_spikelet_ms
    amplitude = cs.first_spikelet_amplitude
    for _ in range(n_spikelets):
        when = at_ms + rng.normal(0.0, cs.spikelet_timing_jitter_ms)
        out += amplitude * evaluate(curve, (t_ms - when) / cs.spikelet_width_factor)
        at_ms += cs.spikelet_interval_ms
        amplitude *= cs.spikelet_decrement
    slow = cs.slow_amplitude * (1.0 + SLOW_AMPLITUDE_CV * rng.standard_normal())
    return out + slow * _slow_component(t_ms, cs.slow_onset_ms, cs.slow_duration_ms)


def mean_spike(
    rng: np.random.Generator,
    curve: PchipInterpolator,
    recording: Recording,
    t_ms: np.ndarray,
    cs: ComplexSpikeShape | None = None,
    spikelet_counts: np.ndarray | None = None,
) -> np.ndarray:
    """The average of ``SHAPE_COPIES`` jittered copies of the spike, amplitude-varying (trough units)."""
    total = np.zeros_like(t_ms)
    jitters = rng.normal(0.0, recording.jitter_ms, SHAPE_COPIES)
    scales = np.clip(1.0 + recording.amplitude_cv * rng.standard_normal(SHAPE_COPIES), 0.0, None)
    counts = spikelet_counts if spikelet_counts is not None and spikelet_counts.size else np.array([2])
    for jitter, scale in zip(jitters, scales):
        shifted = t_ms - jitter
        if cs is None:
            total += scale * evaluate(curve, shifted)
        else:
            total += scale * complex_spike(rng, curve, cs, int(rng.choice(counts)), shifted)
    return total / SHAPE_COPIES


def band_pass(trace: np.ndarray, software_highpass_hz: float | None) -> np.ndarray:
    """The probe's causal first-order 300 Hz - 10 kHz band, then the sorter's zero-phase high-pass."""
    nyquist = SAMPLE_RATE_HZ / 2.0
    b, a = butter(PROBE_FILTER_ORDER, ct.PROBE_HIGHPASS_HZ / nyquist, "highpass")
    out = lfilter(b, a, trace, axis=-1)
    b, a = butter(PROBE_FILTER_ORDER, ct.PROBE_LOWPASS_HZ / nyquist, "lowpass")
    out = lfilter(b, a, out, axis=-1)
    if software_highpass_hz is not None:
        sos = butter(ct.SOFTWARE_HIGHPASS_ORDER, software_highpass_hz / nyquist, "highpass", output="sos")
        out = sosfiltfilt(sos, out, axis=-1)
    return out


def background_noise(rng: np.random.Generator, n: int, recording: Recording) -> np.ndarray:
    """Band-passed noise of ``recording.noise_uv`` rms, averaged over the template's spikes."""
    raw = band_pass(rng.standard_normal(3 * n), recording.software_highpass_hz)[n : 2 * n]
    return raw / raw.std() * recording.noise_uv / np.sqrt(recording.averaged_spikes)


def template_uv(
    rng: np.random.Generator,
    shape: SpikeShape,
    recording: Recording,
    contaminant: SpikeShape,
    cs: ComplexSpikeShape | None = None,
    spikelet_counts: np.ndarray | None = None,
) -> np.ndarray:
    """The unit's peak-channel template (µV), ``recording.template_length`` samples."""
    t_ms = window_times_ms()
    own = mean_spike(rng, shape_curve(shape), recording, t_ms, cs, spikelet_counts)
    other = mean_spike(rng, shape_curve(contaminant), replace(recording, amplitude_cv=0.0), t_ms)
    wideband = recording.amplitude_uv * ((1.0 - recording.contamination) * own + recording.contamination * other)
    trace = band_pass(wideband, recording.software_highpass_hz) + background_noise(rng, t_ms.size, recording)
    if recording.positive_going:
        trace = -trace
    trace += recording.baseline_offset_uv
    trough_at = int(round(WINDOW_BEFORE_MS * SAMPLES_PER_MS))
    start = trough_at - recording.trough_index
    return trace[start : start + recording.template_length]
