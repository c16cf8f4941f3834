"""Numba kernel for template matching of detected peaks, with online template adaptation.

For each peak (in sample order) the candidate templates are those whose peak channel lies near
the peak's channel. The snippet ``x`` (``width`` samples on the channels around the peak's
channel, the same channels for every candidate) is fitted as
``a * T``: ``a = <x, T> / <T, T>`` (with T's trough at -1, ``a`` is the trough depth in uV); once the
unit's typical amplitude ``amp`` is known, a fit outside ``amp * (1 +- tolerance)`` (widened by
the fit's own noise) rules the unit out. The
snippet's energy left unexplained, ``||x - a T||^2``, is compared with what noise alone would
leave (channels weighted by their inverse noise variance, so the ratio is ~1 for a spike the
template explains and grows with what it leaves out). Every candidate is scored at the detected
alignment; the two best are then re-scored over shifts of up to ``max_shift`` samples. They are
ranked by that residual less a prior, ``2 ln n`` for a unit with ``n`` spikes so far (per value),
so a near tie goes to the unit that fires more (``RATE_PRIOR``). The first wins if its ratio is at
most ``max_residual`` (unlike a fraction of the
snippet's energy, this does not demand more of small units than of large ones), or if it removes
at least ``min_explained`` of the snippet's energy (two overlapping spikes: the larger one is
explained, the other is left); otherwise the peak stays unassigned (unit -1). Either way it must
remove at least ``min_fit_explained`` of that energy: a spike much smaller than the template
leaves little energy beyond noise whichever template it is fitted with.

Overlaps: every unit also has a long template (``pre`` samples before the trough to ``long_post``
after it), learnt from its isolated assigned spikes in the filtered data (``learn_long``). Before a
peak is matched, the long templates of the spikes assigned before it that reach into its window
are subtracted from its snippet (``_subtract_recent``), so a spike that starts while another is
still decaying is matched on what that one leaves. The updates a decision sees depend only on the
spikes before it in sample order, so results stay chunk invariant.

With adaptation on, the winning template moves (on its own support) towards ``x / a`` and its
typical amplitude
towards ``a``, with weight ``1 / min(n, adapt_spikes)``: a running mean that becomes an
exponential average, so templates follow slow drift. A template's shape follows only its unit's
first ``shape_spikes`` matched spikes; after them only the typical amplitude is learnt (shapes that
kept adapting drifted onto neighbours over minutes: templates given from a prior sort are fixed,
discovered ones settle after a few hundred spikes). Decisions and updates happen in peak order, so the result does not depend
on how the stream was chunked.
"""

from __future__ import annotations

import numba
import numpy as np

#: amplitude observations before a unit's amplitude bounds its fits
MIN_AMPLITUDE_OBSERVATIONS = 20
#: the amplitude gate's allowance for the noise of a single fit, in standard deviations
AMPLITUDE_NOISE_SDS = 3.0
#: weight of each candidate's prior in the ranking, ``2 ln(its spikes so far)`` in residual units
#: (1: the maximum a posteriori choice). Templates alike within the match window (a complex spike
#: and its cell's simple spikes) otherwise split a near tie at chance: on a held-out 300 s seed, a
#: complex-spike template took 22 % of its cell's 160 Hz simple spikes (true templates 0.921 of
#: spikes right -> 0.951 with the prior)
RATE_PRIOR = 1.0


#: fast-math flags that let the fit's sums vectorise (no 'nnan'/'ninf': a non-finite value must
#: still compare as such). The order of additions is fixed by the compiled code and the inputs
#: are the same whatever the chunking, so results stay chunk invariant.
REASSOCIATE = {"reassoc", "nsz", "arcp", "contract", "afn"}


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE)
def _fit(xs, s, energy, tmpl, width, wgt, n_used, u, amp, amp_n, tolerance):
    """(residual ratio, amplitude, explained fraction) of template ``tmpl`` [W, K] at shift index
    ``s`` of the gathered snippet ``xs`` [W + 2 max_shift, K]: the snippet's energy left after
    subtracting ``a * T``, over what noise alone would leave (each channel weighted by 1 / its
    noise variance ``wgt``; ~1 for a spike the template explains), and the fraction of the
    snippet's energy (``energy``, precomputed per shift) the fit removed. Only the first
    ``width`` samples of the window count."""
    dot = 0.0
    tt = 0.0
    for w in range(width):
        x = xs[s + w]
        v = tmpl[w]
        for k in range(n_used):
            wv = wgt[k] * v[k]
            dot += wv * x[k]
            tt += wv * v[k]
    n = width * n_used
    if dot <= 0.0 or tt <= 0.0 or n == 0:
        return np.inf, 0.0, 0.0
    a = dot / tt
    # not this unit's size (neighbouring units often share a shape): the gate widens by the fit's
    # own noise, whose sd is 1 / sqrt(<T, T>) with channels weighted by inverse noise variance
    if amp_n[u] >= MIN_AMPLITUDE_OBSERVATIONS and abs(a - amp[u]) > tolerance * amp[u] + AMPLITUDE_NOISE_SDS / np.sqrt(tt):
        return np.inf, a, 0.0
    left = energy - 2.0 * a * dot + a * a * tt
    return left / n, a, 1.0 - left / energy


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE)
def _gather(work, t0, near, n_used, weights, max_shift, xs, wgt):
    """Copy the snippet around a peak (rows ``t0 - max_shift`` .. ``t0 + W + max_shift``, the
    channels ``near``) into ``xs`` and its channel weights into ``wgt``."""
    for k in range(n_used):
        wgt[k] = weights[near[k]]
    for r in range(xs.shape[0]):
        row = work[t0 - max_shift + r]
        for k in range(n_used):
            xs[r, k] = row[near[k]]


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE)
def _energies(xs, n_used, wgt, max_shift, width, energy):
    """``energy[s]``: the weighted energy of the window's first ``width`` samples at shift
    index s."""
    for s in range(2 * max_shift + 1):
        e = 0.0
        for w in range(width):
            x = xs[s + w]
            for k in range(n_used):
                e += wgt[k] * x[k] * x[k]
        energy[s] = e


@numba.jit(nopython=True, nogil=True, cache=True)
def _subtract_recent(xs, first_sample, near, n_used, long_waves, pre, rec_s, rec_u, rec_a, n_rec):
    """Take from the snippet ``xs`` (row 0 at ``first_sample``) the long templates of the
    recently assigned spikes (ring ``rec_*`` of ``n_rec`` entries so far: anchor sample, bank
    index, amplitude) that reach into it."""
    ring = rec_s.shape[0]
    length = long_waves.shape[2]
    end = first_sample + xs.shape[0]
    for j in range(n_rec - 1, max(-1, n_rec - ring - 1), -1):
        p = j % ring
        start = rec_s[p] - pre  # sample of the long template's first value
        if start + length <= first_sample:
            continue
        if start >= end:
            continue
        u = rec_u[p]
        if u < 0:
            continue
        a = rec_a[p]
        for t in range(max(start, first_sample), min(start + length, end)):
            r = t - first_sample
            l = t - start
            for k in range(n_used):
                xs[r, k] -= a * long_waves[u, near[k], l]


@numba.jit(nopython=True, nogil=True, cache=True)
def _isolated(anchor, pre, length, rec_s, n_rec):
    """True if no other decided spike (ring ``rec_s`` of ``n_rec`` entries so far) lies close
    enough to ``anchor`` for either one's long template to reach into the other's."""
    ring = rec_s.shape[0]
    others = 0
    for j in range(n_rec - 1, max(-1, n_rec - ring - 1), -1):
        t = rec_s[j % ring]
        if anchor - length < t < anchor + length:
            others += 1
    return others <= 1  # itself


@numba.jit(nopython=True, nogil=True, cache=True)
def learn_long(work, work_first, up_to, long_waves, long_n, channels, pre, adapt_spikes, q_s, q_u, q_a, counters,
               rec_s):
    """Apply the queued long-template updates (FIFO ring ``q_*``, head/tail in ``counters[1:3]``)
    whose anchor is at least a template length before sample ``up_to`` (every spike before that
    sample is decided and in the ring ``rec_s``): an isolated spike moves its unit's long template
    (on its support) towards the filtered data around its anchor over its amplitude; a spike with
    another one nearby would teach the template that neighbour, and is skipped."""
    ring = q_s.shape[0]
    length = long_waves.shape[2]
    while counters[1] < counters[2]:
        p = counters[1] % ring
        start = q_s[p] - pre
        if q_s[p] + length > up_to:  # every spike near enough to matter must be decided first
            break
        counters[1] += 1
        r0 = start - work_first
        if r0 < 0 or r0 + length > work.shape[0]:
            continue  # not in the data kept (cannot happen with the matcher's history)
        if not _isolated(q_s[p], pre, length, rec_s, counters[0]):
            continue
        u = q_u[p]
        a = q_a[p]
        long_n[u] += 1
        rate = 1.0 / min(long_n[u], max(adapt_spikes, 1))
        for k in range(channels.shape[1]):
            c = channels[u, k]
            if c < 0:
                break
            for l in range(length):
                v = long_waves[u, c, l]
                long_waves[u, c, l] = v + rate * (work[r0 + l, c] / a - v)


@numba.jit(nopython=True, nogil=True, cache=True)
def _template(waves, u, near, n_used, out):
    """Template u on the channels ``near`` into ``out`` [W, K]."""
    for k in range(n_used):
        trace = waves[u, near[k]]
        for w in range(out.shape[0]):
            out[w, k] = trace[w]


@numba.jit(nopython=True, nogil=True, cache=True)
def _choose(cand, channels, local, waves, xs, wgt, energy, view_channel, view_used, n_view, width, max_shift, amp,
            amp_n, tolerance, min_fit_explained, tmpl, matched):
    """The best candidate for a peak, each fitted on its view (the snippet on the channels
    around its peak channel) over the first ``width`` samples of the window: every candidate is
    scored at the detected alignment, the two best again over shifts. Ranked by what the fit
    leaves (noise units per value); a fit that removes less than ``min_fit_explained`` of its
    view's energy (a view that barely holds the spike leaves ~1 whatever the template) does not
    compete. Returns (bank index or -1, residual ratio, amplitude, shift, explained fraction)."""
    n_shift = 2 * max_shift + 1
    first, second = -1, -1
    first_score, second_score = np.inf, np.inf
    for j in range(cand.shape[0]):
        u = cand[j]
        if u < 0:
            break
        v = _view_of(channels[u, 0], view_channel, n_view)
        n_used = view_used[v]
        _template(waves, u, local[channels[u, 0]], n_used, tmpl)
        score, _, explained = _fit(xs[v], max_shift, energy[v, max_shift], tmpl, width, wgt[v], n_used, u, amp, amp_n,
                                   tolerance)
        if explained < min_fit_explained:
            continue
        score -= _log_prior(matched[u], width * n_used)
        if score < first_score:
            second, second_score = first, first_score
            first, first_score = u, score
        elif score < second_score:
            second, second_score = u, score
    best_i, best_score, best_a, best_s, best_explained = -1, np.inf, 0.0, 0, 0.0
    best_rank = np.inf
    for u in (first, second):
        if u < 0:
            continue
        v = _view_of(channels[u, 0], view_channel, n_view)
        n_used = view_used[v]
        _template(waves, u, local[channels[u, 0]], n_used, tmpl)
        prior = _log_prior(matched[u], width * n_used)
        for s in range(n_shift):
            score, a, explained = _fit(xs[v], s, energy[v, s], tmpl, width, wgt[v], n_used, u, amp, amp_n, tolerance)
            if explained >= min_fit_explained and score - prior < best_rank:
                best_rank = score - prior
                best_score, best_i, best_a, best_s, best_explained = score, u, a, s - max_shift, explained
    return best_i, best_score, best_a, best_s, best_explained


@numba.jit(nopython=True, nogil=True, cache=True)
def _log_prior(n_matched, n_values):
    """A candidate's prior in the ranking's units (residual per value): ``2 ln n`` for a unit with
    ``n`` spikes so far (the log-odds of the next spike being its, as in a Dirichlet-process mixture),
    over the fit's ``n_values``."""
    return RATE_PRIOR * 2.0 * np.log(max(n_matched, 1)) / max(n_values, 1)


@numba.jit(nopython=True, nogil=True, cache=True)
def _view_of(channel, view_channel, n_view):
    v = 0
    while v < n_view and view_channel[v] != channel:
        v += 1
    return v


@numba.jit(nopython=True, nogil=True, cache=True)
def match_peaks(
    work,
    work_first,
    peak_t,
    peak_c,
    candidates,
    local,
    waves,
    channels,
    norm2,
    amp,
    amp_n,
    matched,
    prev_inv_var,
    inv_var,
    epoch,
    pre,
    max_shift,
    max_residual,
    min_explained,
    min_fit_explained,
    truncated,
    tolerance,
    adapt_spikes,
    shape_spikes,
    out_index,
    out_amp,
    out_score,
    out_shift,
    long_waves,
    long_n,
    rec_s,
    rec_u,
    rec_a,
    q_s,
    q_u,
    q_a,
    counters,
):
    """work: float32 [L, C] filtered samples, ``work[0]`` at global index ``work_first``; every
    peak's window (with shifts) must lie inside. local: int32 [C, K] channels around each
    channel (-1 padded); waves: [U, C, W] dense templates (channel-major); channels: [U, K'] their supports;
    inv_var: channel weights for peaks from sample ``epoch`` on, prev_inv_var before it. Writes the bank index (-1: none), amplitude,
    explained fraction and shift of each peak; updates matched counts, templates, amplitudes."""
    width = waves.shape[2]
    k_max = channels.shape[1]
    k_near = local.shape[1]
    n_shift = 2 * max_shift + 1
    n_views = candidates.shape[1]
    # one view of the snippet per distinct peak channel among a spike's candidates: each template
    # is judged on its own channels (a spike detected on a neighbour of its unit's peak channel
    # would otherwise be fitted where the template has no support)
    xs = np.empty((n_views, width + 2 * max_shift, k_near), np.float32)
    wgt = np.empty((n_views, k_near), np.float32)
    energy = np.empty((n_views, n_shift), np.float64)
    energy_cut = np.empty((n_views, n_shift), np.float64)
    view_channel = np.empty(n_views, np.int64)
    view_used = np.empty(n_views, np.int64)
    tmpl = np.empty((width, k_near), np.float32)
    for i in range(peak_t.shape[0]):
        t0 = peak_t[i] - work_first - pre
        cand = candidates[peak_c[i]]  # TemplateBank: nearby templates whose support holds this channel
        weights = inv_var if peak_t[i] >= epoch else prev_inv_var
        if long_waves.shape[2] > 0:
            # the long templates learnt from spikes before this one (taken away in each view)
            learn_long(work, work_first, peak_t[i], long_waves, long_n, channels, pre, adapt_spikes, q_s, q_u, q_a,
                       counters, rec_s)
        n_view = 0
        for j in range(cand.shape[0]):
            u = cand[j]
            if u < 0:
                break
            home = channels[u, 0]
            v = _view_of(home, view_channel, n_view)
            if v == n_view:
                near = local[home]
                n_used = 0
                while n_used < k_near and near[n_used] >= 0:
                    n_used += 1
                _gather(work, t0, near, n_used, weights, max_shift, xs[v], wgt[v])
                if long_waves.shape[2] > 0:
                    _subtract_recent(xs[v], peak_t[i] - pre - max_shift, near, n_used, long_waves, pre, rec_s, rec_u,
                                     rec_a, counters[0])
                _energies(xs[v], n_used, wgt[v], max_shift, width, energy[v])
                view_channel[v], view_used[v] = home, n_used
                n_view += 1
        best_i, best_score, best_a, best_s, best_explained = _choose(
            cand, channels, local, waves, xs, wgt, energy, view_channel, view_used, n_view, width, max_shift, amp, amp_n,
            tolerance, min_fit_explained, tmpl, matched)
        # accepted if it leaves little beyond noise, or (an overlap of two spikes) if it explains
        # most of the snippet anyway (and, by the ranking, it removes at least min_fit_explained)
        rejected = best_i < 0 or (best_score > max_residual and best_explained < min_explained)
        if rejected and truncated < width:
            # a spike that a later one overlaps: judged again on its window up to a little after
            # its trough, before most of the later spike arrives
            for v in range(n_view):
                _energies(xs[v], view_used[v], wgt[v], max_shift, truncated, energy_cut[v])
            cut = _choose(cand, channels, local, waves, xs, wgt, energy_cut, view_channel, view_used, n_view, truncated,
                          max_shift, amp, amp_n, tolerance, min_fit_explained, tmpl, matched)
            if cut[0] >= 0 and cut[1] <= max_residual:
                best_i, best_score, best_a, best_s, best_explained = cut
                rejected = False
        if rejected:
            best_i = -1
        if long_waves.shape[2] > 0:  # every decided spike is remembered; an assigned one is subtracted from now on
            p = counters[0] % rec_s.shape[0]
            if best_i >= 0:
                rec_s[p], rec_u[p], rec_a[p] = peak_t[i] + best_s, best_i, best_a
            else:
                rec_s[p], rec_u[p], rec_a[p] = peak_t[i], -1, 0.0
            counters[0] += 1
        out_index[i] = best_i
        out_amp[i] = best_a
        out_score[i] = best_score if best_i >= 0 else np.inf
        out_shift[i] = best_s
        if best_i < 0:
            continue
        u = best_i
        matched[u] += 1
        if long_waves.shape[2] > 0 and counters[2] - counters[1] < q_s.shape[0]:  # queued to learn from
            p = counters[2] % q_s.shape[0]
            q_s[p], q_u[p], q_a[p] = peak_t[i] + best_s, u, best_a
            counters[2] += 1
        if adapt_spikes <= 0:
            continue
        amp_n[u] += 1
        amp[u] += (best_a - amp[u]) / min(amp_n[u], adapt_spikes)
        if matched[u] > shape_spikes:  # the shape is learnt from the unit's first shape_spikes spikes only
            continue
        rate = 1.0 / min(matched[u], adapt_spikes)
        new_norm = 0.0
        for k in range(k_max):
            c = channels[u, k]
            if c < 0:
                break
            for w in range(width):
                target = work[t0 + best_s + w, c] / best_a
                v = waves[u, c, w] + rate * (target - waves[u, c, w])
                waves[u, c, w] = v
                new_norm += v * v
        # keep the trough at -1 on the peak channel: the mean of x / a fixes T only up to a scale,
        # which would otherwise drift (and amp, the unit's trough depth in uV, with it)
        depth = -waves[u, channels[u, 0], pre]
        if depth > 0.0:
            for k in range(k_max):
                c = channels[u, k]
                if c < 0:
                    break
                for w in range(width):
                    waves[u, c, w] /= depth
            new_norm /= depth * depth
            amp[u] *= depth
        norm2[u] = new_norm


@numba.jit(nopython=True, nogil=True, cache=True)
def match_step(pending, n_pending, peaks, work, work_first, latest_ready, earliest, n_units, candidates, local, waves,
               channels, norm2, amp, amp_n, matched, ids, prev_inv_var, inv_var, epoch, pre, max_shift, max_residual,
               min_explained, min_fit_explained, truncated, tolerance, adapt_spikes, shape_spikes, out, long_waves, long_n, rec_s,
               rec_u, rec_a, q_s, q_u, q_a, counters):
    """One matcher call in one compiled step: append ``peaks`` to the ``n_pending`` records of
    ``pending`` (PEAK_DTYPE, in sample order), match those whose window has arrived (sample <=
    ``latest_ready``; those before ``earliest`` have no full window and are dropped) with
    ``match_peaks``, write them to ``out`` (ASSIGNED_DTYPE; unit = ``ids`` of the winner or -1)
    and keep the rest at the front of ``pending``. With ``n_units`` = 0 every decided peak is
    unassigned. ``pending`` and ``out`` must have room for
    ``n_pending + len(peaks)``. Returns (decided, still pending, the oldest pending one's
    sample or -1, decided but unassigned)."""
    n_all = n_pending + peaks.shape[0]
    for i in range(peaks.shape[0]):
        pending[n_pending + i] = peaks[i]
    n_ready = 0
    while n_ready < n_all and pending[n_ready].sample <= latest_ready:
        n_ready += 1
    n = 0
    for i in range(n_ready):
        if pending[i].sample >= earliest:
            pending[n] = pending[i]  # compact in place (n <= i)
            n += 1
    peak_t = np.empty(n, np.int64)
    peak_c = np.empty(n, np.int64)
    for i in range(n):
        peak_t[i] = pending[i].sample
        peak_c[i] = pending[i].channel
    idx = np.full(n, -1, np.int32)
    fit = np.zeros(n, np.float32)
    score = np.zeros(n, np.float32)
    shift = np.zeros(n, np.int32)
    if n > 0 and n_units > 0:
        match_peaks(work, work_first, peak_t, peak_c, candidates, local, waves, channels, norm2, amp, amp_n, matched,
                    prev_inv_var, inv_var, epoch, pre, max_shift, max_residual, min_explained, min_fit_explained, truncated, tolerance,
                    adapt_spikes, shape_spikes, idx, fit, score, shift, long_waves, long_n, rec_s, rec_u, rec_a, q_s, q_u, q_a,
                    counters)
    n_unassigned = 0
    for i in range(n):
        out[i].sample = pending[i].sample
        out[i].channel = pending[i].channel
        out[i].amplitude = -pending[i].amplitude
        out[i].unit = ids[idx[i]] if idx[i] >= 0 else -1
        out[i].fit = fit[i]
        out[i].score = score[i]
        n_unassigned += idx[i] < 0
    for i in range(n_ready, n_all):
        pending[i - n_ready] = pending[i]
    oldest = pending[0].sample if n_all > n_ready else -1
    return n, n_all - n_ready, oldest, n_unassigned
