"""Spike-train processes of the independent generator.

Three point processes, none of them a gamma renewal process:

- **Inverse-Gaussian renewal with a dead time, in rescaled time** (Purkinje simple spikes, Golgi
  cells, the tonic firing of mossy fibres). The inverse Gaussian is the first-passage time of a
  drifting random walk to a threshold - an integrate-and-fire neuron driven by noisy input. A
  time-varying rate is obtained by time rescaling: intervals of mean 1 are drawn in "operational
  time" and mapped through the inverse of the integrated free rate; an absolute dead time follows
  every spike in real time (the free rate is raised so that the train keeps the target rate).
  Silent windows (after a complex spike, a long pause, a Golgi cell's post-burst pause, a mossy
  fibre burst) suppress spikes and restart the process at a random phase when they end.
- **Escape-noise hazard with exponential refractory recovery** (complex spikes, molecular layer
  interneurons): after each spike the hazard is zero for an absolute refractory period, then
  recovers as ``rate * (1 - exp(-(s - refractory) / recovery))``; drawn by thinning a Poisson
  process. The free rate that gives a target mean rate is found from the exact mean interval.
- **Two-state (down/up) bursting** (mossy fibre boutons): in the down state the bouton fires the
  tonic renewal train; transitions to the up state occur as a rate-modulated Poisson process and
  the up state is a burst of 2+ spikes at 500-1000 Hz (geometric count, slowing intervals),
  followed by a short silence before the down state resumes.

Slow rate changes are behavioural epochs (piecewise-constant log-normal gains with smooth ramps,
exponential epoch durations) times a sinusoid (stride, licking, whisking rhythms). A Purkinje
cell's simple and complex spikes are generated together: each complex spike silences the simple
spikes for a drawn pause.

Times are seconds inside this module; ``to_samples`` gives sorted unique int64 samples at 30 kHz
(and where each came from).
"""

from __future__ import annotations

import numba
import numpy as np

from rtclass.features.c4 import C4_SAMPLE_RATE_HZ

SAMPLE_RATE_HZ = C4_SAMPLE_RATE_HZ
#: resolution of the rate profiles
RATE_BIN_S = 1e-3
MS_PER_S = 1e3
#: a time before any spike (s)
NEVER_S = -1e30
#: epochs drawn per expected epoch (their summed length must cover the recording)
EPOCH_DRAW_FACTOR = 3
EPOCH_DRAW_EXTRA = 10
#: lowest rate of a profile, as a fraction of its mean (keeps rescaled time strictly increasing)
RATE_FLOOR_FRAC = 0.05
#: a renewal process with dead time d keeps its rate below this fraction of 1/d
MAX_DEAD_TIME_DUTY = 0.8
#: a hazard process with absolute refractoriness a keeps its rate below this fraction of 1/a
MAX_REFRACTORY_DUTY = 0.9
#: the largest CV of the inverse-Gaussian part (very high rates close to 1/dead time)
IG_MAX_CV = 2.0
#: spare random draws beyond the expected spike count
DRAW_MARGIN = 1.25
DRAW_EXTRA = 100
#: free rates tabulated for the hazard process (Hz)
HAZARD_TABLE_MIN_HZ = 1e-2
HAZARD_TABLE_MAX_HZ = 1e5
HAZARD_TABLE_SIZE = 200
HAZARD_INTEGRATION_POINTS = 2000
#: first point of the (log-spaced) integration grid, as a fraction of its span
HAZARD_INTEGRATION_START = 1e-9
#: a hazard interval's survival is integrated out to this many mean free intervals
HAZARD_SURVIVAL_SPAN = 60.0
#: log-sd of the duration of a long Purkinje pause around its drawn median
LONG_PAUSE_LOG_SD = 0.5
#: relative scatter of a Golgi burst's intra-burst interval
GOC_BURST_ISI_JITTER = 0.1
#: relative scatter of a mossy fibre burst's first interval
MFB_BURST_ISI_JITTER = 0.12
#: the shortest interval inside a mossy fibre burst (axonal refractoriness), ms
MFB_MIN_BURST_ISI_MS = 0.7
#: longest mossy fibre burst, spikes
MFB_MAX_BURST_SPIKES = 20
#: the down state keeps at least this fraction of the time
MFB_MIN_DOWN_FRAC = 0.2


def to_samples(times_s: np.ndarray, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Spike times (s) -> (sorted unique int64 samples at 30 kHz inside the recording, for each the
    index in ``times_s`` of the first spike that fell in it)."""
    s = np.floor(np.asarray(times_s, np.float64) * SAMPLE_RATE_HZ).astype(np.int64)
    inside = np.flatnonzero((s >= 0) & (s < int(round(duration_s * SAMPLE_RATE_HZ))))
    samples, first = np.unique(s[inside], return_index=True)
    return samples, inside[first]


def _n_bins(duration_s: float) -> int:
    return max(int(np.ceil(duration_s / RATE_BIN_S)), 1)


def _smooth_boxcar(x: np.ndarray, width: int) -> np.ndarray:
    """Centred running mean over ``width`` bins (edges padded with the edge values), O(n)."""
    if width <= 1:
        return x.copy()
    half = width // 2
    padded = np.concatenate([np.full(half, x[0]), x, np.full(width - half, x[-1])])
    c = np.concatenate([[0.0], np.cumsum(padded)])
    return (c[width : width + x.size] - c[: x.size]) / width


def modulation_profile(rng: np.random.Generator, duration_s: float, p: dict[str, float]) -> np.ndarray:
    """A slow rate modulation with mean 1 on RATE_BIN_S bins: behavioural epochs x a sinusoid.

    Epoch durations are exponential (mean ``epoch_mean_s``), each epoch's gain log-normal
    (log-sd ``epoch_gain_sd``), the steps smoothed over ``epoch_ramp_ms``; the sinusoid has
    frequency ``sine_hz``, depth ``sine_depth`` and a random phase."""
    n = _n_bins(duration_s)
    mean_s = p["epoch_mean_s"]
    n_epochs = int(np.ceil(duration_s / mean_s * EPOCH_DRAW_FACTOR)) + EPOCH_DRAW_EXTRA
    lengths = rng.exponential(mean_s, n_epochs)
    gains = np.exp(p["epoch_gain_sd"] * rng.standard_normal(n_epochs))
    phase = rng.uniform(0, 2 * np.pi)
    bounds = np.cumsum(lengths)
    if bounds[-1] < duration_s:  # astronomically rare: one more long epoch
        bounds[-1] = duration_s
    centres = (np.arange(n) + 0.5) * RATE_BIN_S
    g = gains[np.minimum(np.searchsorted(bounds, centres), n_epochs - 1)]
    g = _smooth_boxcar(g, int(round(p["epoch_ramp_ms"] / MS_PER_S / RATE_BIN_S)))
    g = g * (1 + p["sine_depth"] * np.sin(2 * np.pi * p["sine_hz"] * centres + phase))
    return g / g.mean()


def rate_profile(
    rng: np.random.Generator, duration_s: float, mean_rate_hz: float, p: dict[str, float], ceiling_hz: float
) -> np.ndarray:
    """The rate (Hz) on RATE_BIN_S bins: ``mean_rate_hz`` x the modulation, floored at
    RATE_FLOOR_FRAC of the mean and capped at ``ceiling_hz`` (the cap wins)."""
    r = mean_rate_hz * modulation_profile(rng, duration_s, p)
    return np.minimum(np.maximum(r, RATE_FLOOR_FRAC * mean_rate_hz), ceiling_hz)


def _merge_windows(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of intervals [start, end) as sorted, disjoint intervals."""
    starts = np.asarray(starts, np.float64)
    ends = np.asarray(ends, np.float64)
    if starts.size == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.concatenate([[True], s[1:] > reach[:-1]])
    first = np.flatnonzero(new)
    return s[first], np.maximum.reduceat(e, first)


@numba.njit(cache=True, nogil=True)
def _integrated(cum, free_rate, bin_s, t):
    """Integrated free rate (operational time) at time ``t``."""
    n_bins = free_rate.shape[0]
    i = int(t / bin_s)
    if i >= n_bins:
        return cum[n_bins]
    return cum[i] + free_rate[i] * (t - i * bin_s)


@numba.njit(cache=True, nogil=True)
def _renewal_kernel(cum, free_rate, bin_s, x, u, dead_s, win_start, win_end, out):
    """Inverse-Gaussian intervals ``x`` (mean 1, operational time) mapped to real time, a dead
    time after each spike, spikes inside [win_start, win_end) suppressed and the process
    restarted at a random phase (``x * u``) at the window's end. Returns (spikes, finished):
    not finished when the draws ran out."""
    n_bins = free_rate.shape[0]
    total = cum[n_bins]
    duration = n_bins * bin_s
    n_win = win_start.shape[0]
    n = 0
    w = 0
    j = 0
    tau = x[0] * u[0]  # a stationary start: the first interval at a random phase
    k = 1
    while True:
        if tau >= total:
            return n, True
        while cum[j + 1] < tau:
            j += 1
        t = j * bin_s + (tau - cum[j]) / free_rate[j]
        while w < n_win and win_end[w] <= t:
            w += 1
        if k >= x.shape[0]:
            return n, False
        if w < n_win and win_start[w] <= t:
            restart = win_end[w]
            if restart >= duration:
                return n, True
            tau = _integrated(cum, free_rate, bin_s, restart) + x[k] * u[k]
            k += 1
            continue
        out[n] = t
        n += 1
        after = t + dead_s
        if after >= duration:
            return n, True
        tau = _integrated(cum, free_rate, bin_s, after) + x[k]
        k += 1


def inverse_gaussian_train(
    rng: np.random.Generator,
    rate_hz: np.ndarray,
    isi_cv: float,
    dead_time_s: float,
    win_start: np.ndarray | None = None,
    win_end: np.ndarray | None = None,
) -> np.ndarray:
    """Spike times (s) of a rate-modulated inverse-Gaussian renewal process with a dead time.

    ``rate_hz`` is the target rate on RATE_BIN_S bins (capped below 1/dead time). ``isi_cv`` is
    the CV of the train's intervals at its mean rate: the part beyond the dead time gets CV
    ``isi_cv / (1 - mean rate * dead time)`` (at most IG_MAX_CV). Spikes in the windows
    [win_start, win_end) are suppressed."""
    rate_hz = np.minimum(rate_hz, MAX_DEAD_TIME_DUTY / dead_time_s) if dead_time_s > 0 else rate_hz
    free = rate_hz / (1 - rate_hz * dead_time_s)
    ig_cv = min(isi_cv / (1 - float(rate_hz.mean()) * dead_time_s), IG_MAX_CV)
    cum = np.concatenate([[0.0], np.cumsum(free * RATE_BIN_S)])
    ws, we = _merge_windows(
        np.zeros(0) if win_start is None else win_start, np.zeros(0) if win_end is None else win_end
    )
    shape = 1.0 / ig_cv**2
    n_draw = int(cum[-1] * DRAW_MARGIN + ws.size + DRAW_EXTRA)
    while True:
        x = rng.wald(1.0, shape, n_draw)
        u = rng.random(n_draw)
        out = np.empty(n_draw)
        n, finished = _renewal_kernel(cum, free, RATE_BIN_S, x, u, dead_time_s, ws, we, out)
        if finished:
            return out[:n].copy()
        n_draw *= 2


@numba.njit(cache=True, nogil=True)
def _thinning_kernel(cand_t, cand_u, free_rate, bin_s, lam_max, abs_ref_s, recovery_s, out):
    """Accept Poisson candidates with probability hazard / lam_max, the hazard being the free
    rate times the refractory recovery since the last accepted spike."""
    n_bins = free_rate.shape[0]
    n = 0
    last = NEVER_S
    for k in range(cand_t.shape[0]):
        t = cand_t[k]
        s = t - last
        if s < abs_ref_s:
            continue
        i = min(int(t / bin_s), n_bins - 1)
        h = free_rate[i] * (1.0 - np.exp(-(s - abs_ref_s) / recovery_s))
        if cand_u[k] * lam_max < h:
            out[n] = t
            n += 1
            last = t
    return n


def hazard_rate_table(abs_refractory_s: float, recovery_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(free rates, the mean rates they give): the exact stationary rate of the hazard
    ``free * (1 - exp(-(s - a) / recovery))`` after an absolute refractoriness ``a``:
    1 / (a + integral of the survival)."""
    lam = np.geomspace(HAZARD_TABLE_MIN_HZ, HAZARD_TABLE_MAX_HZ, HAZARD_TABLE_SIZE)
    span = HAZARD_SURVIVAL_SPAN * (1.0 / lam + recovery_s)
    z = np.concatenate([[0.0], np.geomspace(HAZARD_INTEGRATION_START, 1.0, HAZARD_INTEGRATION_POINTS)])
    s = span[:, None] * z[None, :]
    survival = np.exp(-lam[:, None] * (s - recovery_s * -np.expm1(-s / recovery_s)))
    mean_isi = abs_refractory_s + np.trapezoid(survival, s, axis=1)
    return lam, 1.0 / mean_isi


def hazard_train(
    rng: np.random.Generator, rate_hz: np.ndarray, abs_refractory_s: float, recovery_s: float
) -> np.ndarray:
    """Spike times (s) of the escape-noise hazard process whose stationary rate follows
    ``rate_hz`` (RATE_BIN_S bins, quasi-static), drawn by thinning."""
    lam, achieved = hazard_rate_table(abs_refractory_s, recovery_s)
    target = np.minimum(rate_hz, min(MAX_REFRACTORY_DUTY / abs_refractory_s, float(achieved[-1])))
    free = np.interp(target, achieved, lam)
    duration = rate_hz.size * RATE_BIN_S
    lam_max = float(free.max())
    n_cand = int(rng.poisson(lam_max * duration))
    cand_t = np.sort(rng.uniform(0.0, duration, n_cand))
    cand_u = rng.random(n_cand)
    out = np.empty(n_cand)
    n = _thinning_kernel(cand_t, cand_u, free, RATE_BIN_S, lam_max, abs_refractory_s, recovery_s, out)
    return out[:n].copy()


def poisson_events(rng: np.random.Generator, rate_hz: float, duration_s: float) -> np.ndarray:
    """Sorted times (s) of a homogeneous Poisson process (none when the rate is 0)."""
    n = int(rng.poisson(max(rate_hz, 0.0) * duration_s))
    return np.sort(rng.uniform(0.0, duration_s, n))


def purkinje_pair(
    rng: np.random.Generator, duration_s: float, ss: dict[str, float], cs: dict[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Purkinje cell: (simple spikes, complex spikes, the silent pause after each complex
    spike), times in s. ``ss``/``cs``: the PkC_ss / PkC_cs train parameters."""
    cs_rate = rate_profile(
        rng, duration_s, cs["rate_hz"], cs, MAX_REFRACTORY_DUTY / (cs["abs_refractory_ms"] / MS_PER_S)
    )
    cs_t = hazard_train(rng, cs_rate, cs["abs_refractory_ms"] / MS_PER_S, cs["recovery_ms"] / MS_PER_S)
    jitter = ss["cs_pause_jitter"]
    pauses = ss["cs_pause_ms"] / MS_PER_S * np.exp(jitter * rng.standard_normal(cs_t.size) - jitter**2 / 2)
    long_t = poisson_events(rng, ss["long_pause_hz"], duration_s)
    long_d = ss["long_pause_ms"] / MS_PER_S * np.exp(LONG_PAUSE_LOG_SD * rng.standard_normal(long_t.size))
    dead = ss["dead_time_ms"] / MS_PER_S
    ss_rate = rate_profile(rng, duration_s, ss["rate_hz"], ss, MAX_DEAD_TIME_DUTY / dead)
    ss_t = inverse_gaussian_train(
        rng,
        ss_rate,
        ss["isi_cv"],
        dead,
        np.concatenate([cs_t, long_t]),
        np.concatenate([cs_t + pauses, long_t + long_d]),
    )
    return ss_t, cs_t, pauses


@numba.njit(cache=True, nogil=True)
def _separated(onsets, ends, gap_s):
    """Keep bursts that start at least ``gap_s`` after the previous kept burst ended."""
    keep = np.zeros(onsets.shape[0], np.bool_)
    last_end = NEVER_S
    for i in range(onsets.shape[0]):
        if onsets[i] >= last_end + gap_s:
            keep[i] = True
            last_end = ends[i]
    return keep


def golgi_train(rng: np.random.Generator, duration_s: float, p: dict[str, float]) -> np.ndarray:
    """Golgi cell: a regular-ish inverse-Gaussian train with sensory burst-pause events
    (``burst_spikes`` spikes ``burst_isi_ms`` apart, then a ``burst_pause_ms`` silence)."""
    dead = p["dead_time_ms"] / MS_PER_S
    rate = rate_profile(rng, duration_s, p["rate_hz"], p, MAX_DEAD_TIME_DUTY / dead)
    events = poisson_events(rng, p["burst_event_hz"], duration_s)
    n_b = int(p["burst_spikes"])
    isi = p["burst_isi_ms"] / MS_PER_S * (1 + GOC_BURST_ISI_JITTER * rng.standard_normal((events.size, 1)))
    isi = np.maximum(isi, dead)
    burst = events[:, None] + np.arange(n_b)[None, :] * isi
    pause_end = burst[:, -1] + p["burst_pause_ms"] / MS_PER_S
    keep = _separated(events, pause_end, dead)  # a new response only after the last one's pause
    events, burst, pause_end = events[keep], burst[keep], pause_end[keep]
    tonic = inverse_gaussian_train(rng, rate, p["isi_cv"], dead, events - dead, pause_end)
    return np.sort(np.concatenate([tonic, burst.ravel()]))


def mossy_fibre_train(rng: np.random.Generator, duration_s: float, p: dict[str, float]) -> np.ndarray:
    """Mossy fibre bouton: a two-state process. Down state: tonic inverse-Gaussian firing. Up
    state (entered at a rate-modulated Poisson rate): a burst of ``1 + geometric`` spikes at
    ``intra_burst_hz``, intervals slowing by ``burst_slowing`` per spike, then a silence."""
    dead = p["dead_time_ms"] / MS_PER_S
    g = modulation_profile(rng, duration_s, p)
    rate, b, m = p["rate_hz"], p["burst_fraction"], p["burst_spikes_mean"]
    onset_rate = b * rate / m  # bursts per s
    isi0 = 1.0 / p["intra_burst_hz"]
    slowing = p["burst_slowing"]
    silence = p["post_burst_silence_ms"] / MS_PER_S
    burst_dur = (m - 1) * isi0 * (1 + slowing * max(m - 2, 0) / 2)
    down_frac = max(1 - onset_rate * (burst_dur + silence + dead), MFB_MIN_DOWN_FRAC)
    # burst onsets: thinning of a Poisson process by the modulation
    g_max = float(g.max())
    cand = poisson_events(rng, onset_rate * g_max, duration_s)
    keep_u = rng.random(cand.size)
    onsets = cand[keep_u * g_max < g[np.minimum((cand / RATE_BIN_S).astype(np.int64), g.size - 1)]]
    n_spk = np.minimum(1 + rng.geometric(1.0 / (m - 1), onsets.size), MFB_MAX_BURST_SPIKES)
    first = isi0 * (1 + MFB_BURST_ISI_JITTER * rng.standard_normal(onsets.size))
    steps = np.arange(MFB_MAX_BURST_SPIKES - 1)
    isis = np.maximum(first[:, None] * (1 + slowing * steps[None, :]), MFB_MIN_BURST_ISI_MS / MS_PER_S)
    offsets = np.concatenate([np.zeros((onsets.size, 1)), np.cumsum(isis, axis=1)], axis=1)
    ends = onsets + offsets[np.arange(onsets.size), n_spk - 1]
    keep = _separated(onsets, ends, silence + dead)
    onsets, ends, n_spk, offsets = onsets[keep], ends[keep], n_spk[keep], offsets[keep]
    in_burst = np.arange(MFB_MAX_BURST_SPIKES)[None, :] < n_spk[:, None]
    burst = (onsets[:, None] + offsets)[in_burst]
    down_rate = np.minimum((1 - b) * rate / down_frac * g, MAX_DEAD_TIME_DUTY / dead)
    down_rate = np.maximum(down_rate, RATE_FLOOR_FRAC * (1 - b) * rate)
    tonic = inverse_gaussian_train(rng, down_rate, p["isi_cv"], dead, onsets - dead, ends + silence)
    return np.sort(np.concatenate([tonic, burst]))


def interneuron_train(rng: np.random.Generator, duration_s: float, p: dict[str, float]) -> np.ndarray:
    """Molecular layer interneuron: the irregular hazard process."""
    a = p["abs_refractory_ms"] / MS_PER_S
    rate = rate_profile(rng, duration_s, p["rate_hz"], p, MAX_REFRACTORY_DUTY / a)
    return hazard_train(rng, rate, a, p["recovery_ms"] / MS_PER_S)
