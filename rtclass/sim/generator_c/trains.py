"""True spike trains of simulated cerebellar cells, from the adapting LIF of ``neuron.py``.

Every cell has its own parameters (``celltypes.py``), a preparation (awake or anaesthetised), a
behavioural signal that slowly modulates its drive, and, if responsive, brief strong input
pulses that evoke bursts (Golgi cells: followed by an adaptation pause; mossy fibres: 300-1000 Hz).
A Purkinje cell is two coupled neurons: an inferior-olive neuron (slow, long AHP, subthreshold
oscillation) whose spikes are the complex spikes, and the simple-spike neuron, which each complex
spike resets, hyperpolarises and holds silent for a pause graded with its spikelet count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtclass.sim.generator_c import celltypes as ct
from rtclass.sim.generator_c.drive import add_pulses, behaviour_signal, oscillation, poisson_onsets_ms, telegraph
from rtclass.sim.generator_c.neuron import drive_for_rate, drive_per_log_rate, lif_spike_times

MS_PER_S = 1000.0
#: integration step of the simple-spike, MLI, GoC and MFB neurons, and of the (slow) olive neuron
STEP_MS = 0.1
OLIVE_STEP_MS = 0.5
#: drive during a Purkinje cell's down-state (threshold units): far below threshold
DOWN_STATE_DRIVE = -1.0
#: a wanted rate is kept below this fraction of 1 / refractory period
MAX_RATE_FRACTION_OF_REFRACTORY = 0.8
#: corrections of the olive neuron's drive, from its simulated rate (its oscillation and AHP are
#: outside the rate formula)
OLIVE_CALIBRATION_ROUNDS = 3
#: a complex spike has at least this many and at most this many spikelets; per spike the count
#: varies by up to this much around the cell's mean
MIN_SPIKELETS = 1
MAX_SPIKELETS = 6
SPIKELET_COUNT_SPREAD = 1.0
NO_STEPS = np.zeros(0, np.int64)


@dataclass(frozen=True)
class Neuron:
    tau_m_ms: float
    noise_sd: float
    noise_tau_ms: float
    adapt_tau_ms: float
    adapt_jump: float
    refractory_ms: float
    reset: float

    def rate_parameters(self) -> dict[str, float]:
        return {
            "noise_sd": self.noise_sd,
            "tau_m_ms": self.tau_m_ms,
            "tau_noise_ms": self.noise_tau_ms,
            "refractory_ms": self.refractory_ms,
            "reset": self.reset,
            "tau_adapt_ms": self.adapt_tau_ms,
            "adapt_jump": self.adapt_jump,
        }

    def max_rate_hz(self) -> float:
        return MAX_RATE_FRACTION_OF_REFRACTORY * MS_PER_S / self.refractory_ms


@dataclass(frozen=True)
class TonicCell:
    """A cell's true spike times (s) and what it was drawn with."""

    cell_type: str
    spike_s: np.ndarray
    target_rate_hz: float
    anaesthetised: bool


@dataclass(frozen=True)
class PurkinjeCell:
    simple_s: np.ndarray
    complex_s: np.ndarray
    #: spikelets of each complex spike
    spikelets: np.ndarray
    #: the simple-spike pause imposed after each complex spike (ms)
    pause_ms: np.ndarray
    target_simple_rate_hz: float
    target_complex_rate_hz: float
    anaesthetised: bool


def run_neuron(
    rng: np.random.Generator,
    neuron: Neuron,
    drive_per_ms: np.ndarray,
    step_ms: float,
    forced_reset_steps: np.ndarray = NO_STEPS,
    forced_hold_steps: np.ndarray = NO_STEPS,
    forced_hyperpolarisation: float = 0.0,
    noise_normals: np.ndarray | None = None,
) -> np.ndarray:
    """Spike times (s) of ``neuron`` over the length of ``drive_per_ms``."""
    if noise_normals is None:
        noise_normals = rng.standard_normal(int(round(drive_per_ms.size / step_ms)), dtype=np.float32)
    spike_ms = lif_spike_times(
        drive_per_ms,
        noise_normals,
        step_ms,
        neuron.tau_m_ms,
        neuron.noise_tau_ms,
        neuron.noise_sd,
        neuron.adapt_tau_ms,
        neuron.adapt_jump,
        neuron.refractory_ms,
        neuron.reset,
        forced_reset_steps,
        forced_hold_steps,
        forced_hyperpolarisation,
    )
    return spike_ms / MS_PER_S


def burst_drive(neuron: Neuron, rate_hz: float, duration_ms: float) -> float:
    """The drive at which the noiseless LIF fires at ``rate_hz`` (1/f = t_ref + tau ln((mu - reset)
    / (mu - 1))), plus the adaptation it builds over half the pulse."""
    rate_hz = min(rate_hz, neuron.max_rate_hz())
    growth = np.exp((MS_PER_S / rate_hz - neuron.refractory_ms) / neuron.tau_m_ms)
    free = (growth - neuron.reset) / (growth - 1.0)
    built = 1.0 - np.exp(-duration_ms / (2.0 * neuron.adapt_tau_ms))
    return free + neuron.adapt_jump * rate_hz / MS_PER_S * neuron.adapt_tau_ms * built


def _draw_neuron(rng: np.random.Generator, ranges: ct.FiringRanges | ct.ClimbingFibreRanges, reset: float) -> Neuron:
    return Neuron(
        tau_m_ms=ranges.membrane_tau_ms.draw(rng),
        noise_sd=ranges.noise_sd.draw(rng),
        noise_tau_ms=ranges.noise_tau_ms.draw(rng),
        adapt_tau_ms=ranges.adapt_tau_ms.draw(rng),
        adapt_jump=ranges.adapt_jump.draw(rng),
        refractory_ms=ranges.refractory_ms.draw(rng),
        reset=reset,
    )


def _draw_behaviour(rng: np.random.Generator, n_ms: int) -> np.ndarray:
    return behaviour_signal(
        rng, n_ms, ct.BEHAVIOUR_TAU_S.draw(rng), ct.MOVEMENT_DWELL_S.draw(rng), ct.MOVEMENT_WEIGHT.draw(rng)
    )


def _firing_drive(
    rng: np.random.Generator,
    ranges: ct.FiringRanges,
    neuron: Neuron,
    rate_hz: float,
    behaviour: np.ndarray,
    modulation_depth: float,
) -> np.ndarray:
    """Drive per ms: the level for ``rate_hz``, behaviour modulation (sd ``modulation_depth`` in
    ln rate), event pulses if the cell is responsive, down-states if it has them."""
    level = drive_for_rate(rate_hz, **neuron.rate_parameters())
    per_log_rate = drive_per_log_rate(rate_hz, **neuron.rate_parameters())
    drive = level + per_log_rate * modulation_depth * behaviour
    if ranges.responsive.happens(rng):
        duration_ms = ranges.event_duration_ms.draw(rng)
        pulse = burst_drive(neuron, ranges.event_rate_target_hz.draw(rng), duration_ms) - level
        onsets = poisson_onsets_ms(rng, behaviour.size, ranges.event_rate_hz.draw(rng))
        drive = add_pulses(drive, onsets, duration_ms, max(pulse, 0.0))
    if ranges.has_down_states.happens(rng):
        down = telegraph(rng, behaviour.size, ranges.up_state_s.draw(rng), ranges.down_state_s.draw(rng)) > 0
        drive = np.where(down, DOWN_STATE_DRIVE, drive)
    return drive


def _draw_preparation(
    rng: np.random.Generator, ranges: ct.FiringRanges, rate_scale: float
) -> tuple[bool, float, float]:
    """(anaesthetised, rate, modulation depth); the drawn rate times ``rate_scale``."""
    anaesthetised = ct.ANAESTHETISED.happens(rng)
    rate_range = ranges.rate_anaesthetised_hz if anaesthetised else ranges.rate_awake_hz
    rate_hz = rate_range.draw(rng) * rate_scale
    depth = ranges.modulation_depth.draw(rng)
    if anaesthetised:
        depth *= ct.ANAESTHETISED_MODULATION_FACTOR.draw(rng)
    return anaesthetised, rate_hz, depth


def simulate_tonic_cell(
    rng: np.random.Generator, cell_type: str, duration_s: float, rate_scale: float = 1.0
) -> TonicCell:
    """An MLI, GoC or MFB (or a Purkinje cell's simple spikes alone); its drawn rate times
    ``rate_scale`` (a held-out regime)."""
    ranges = ct.FIRING[cell_type]
    n_ms = int(round(duration_s * MS_PER_S))
    anaesthetised, rate_hz, depth = _draw_preparation(rng, ranges, rate_scale)
    neuron = _draw_neuron(rng, ranges, ranges.reset.draw(rng))
    rate_hz = min(rate_hz, neuron.max_rate_hz())
    behaviour = _draw_behaviour(rng, n_ms)
    drive = _firing_drive(rng, ranges, neuron, rate_hz, behaviour, depth)
    return TonicCell(cell_type, run_neuron(rng, neuron, drive, STEP_MS), rate_hz, anaesthetised)


def _olive_spikes(
    rng: np.random.Generator, rate_hz: float, behaviour_drive: np.ndarray, duration_s: float
) -> np.ndarray:
    """Complex-spike times (s): the olive neuron, its drive corrected from its own simulated rate."""
    ranges = ct.CLIMBING_FIBRE
    neuron = _draw_neuron(rng, ranges, 0.0)
    n_ms = behaviour_drive.size
    oscillating = ranges.oscillation_amplitude.draw(rng) * oscillation(
        rng, n_ms, ranges.oscillation_hz.draw(rng), ranges.oscillation_phase_diffusion.draw(rng)
    )
    level = drive_for_rate(rate_hz, **neuron.rate_parameters())
    per_log_rate = drive_per_log_rate(rate_hz, **neuron.rate_parameters())
    normals = rng.standard_normal(int(round(n_ms / OLIVE_STEP_MS)), dtype=np.float32)
    gain = ranges.behaviour_gain.draw(rng)
    spike_s = np.zeros(0)
    for _ in range(OLIVE_CALIBRATION_ROUNDS):
        drive = level + per_log_rate * gain * behaviour_drive + oscillating
        spike_s = run_neuron(rng, neuron, drive, OLIVE_STEP_MS, noise_normals=normals)
        measured_hz = max(spike_s.size, 1) / duration_s
        level += per_log_rate * np.log(rate_hz / measured_hz)
    return spike_s


def simulate_purkinje_cell(rng: np.random.Generator, duration_s: float, rate_scale: float = 1.0) -> PurkinjeCell:
    """A Purkinje cell's complex spikes and the simple spikes they pause; both drawn rates times
    ``rate_scale`` (a held-out regime)."""
    ss_ranges, cf = ct.PKC_SIMPLE_SPIKES, ct.CLIMBING_FIBRE
    n_ms = int(round(duration_s * MS_PER_S))
    anaesthetised, ss_rate_hz, depth = _draw_preparation(rng, ss_ranges, rate_scale)
    cs_range = cf.rate_anaesthetised_hz if anaesthetised else cf.rate_awake_hz
    cs_rate_hz = cs_range.draw(rng) * rate_scale
    behaviour = _draw_behaviour(rng, n_ms)
    complex_s = _olive_spikes(rng, cs_rate_hz, depth * behaviour, duration_s)

    mean_spikelets = cf.mean_spikelets.draw(rng)
    spread = rng.uniform(-SPIKELET_COUNT_SPREAD, SPIKELET_COUNT_SPREAD, complex_s.size)
    spikelets = np.clip(np.round(mean_spikelets + spread), MIN_SPIKELETS, MAX_SPIKELETS).astype(np.int64)
    pause_ms = (
        cf.pause_base_ms.draw(rng)
        + cf.pause_per_spikelet_ms.draw(rng) * spikelets
        + np.abs(rng.normal(0.0, cf.pause_jitter_ms.draw(rng), complex_s.size))
    )

    neuron = _draw_neuron(rng, ss_ranges, ss_ranges.reset.draw(rng))
    ss_rate_hz = min(ss_rate_hz, neuron.max_rate_hz())
    drive = _firing_drive(rng, ss_ranges, neuron, ss_rate_hz, behaviour, depth)
    simple_s = run_neuron(
        rng,
        neuron,
        drive,
        STEP_MS,
        # the reset falls in the step holding the complex spike, and the hold covers the pause fully
        forced_reset_steps=np.floor(complex_s * MS_PER_S / STEP_MS).astype(np.int64),
        forced_hold_steps=np.ceil(pause_ms / STEP_MS).astype(np.int64) + 1,
        forced_hyperpolarisation=cf.pause_hyperpolarisation.draw(rng),
    )
    return PurkinjeCell(simple_s, complex_s, spikelets, pause_ms, ss_rate_hz, cs_rate_hz, anaesthetised)
