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
after it), learnt from its assigned spikes in the filtered data less the long templates of the
other assigned spikes around them (``learn_long``). Before a
peak is matched, the long templates of the spikes assigned before it that reach into its window
are subtracted from its snippet (``_subtract_recent``), so a spike that starts while another is
still decaying is matched on what that one leaves (and a complex spike's spikelets go with it).
Two spikes closer than a match window are one peak that no single template explains well: a
peak whose best match leaves more than ``PAIR_FROM_RESIDUAL`` (or fails) is also fitted as the sum
of two units' spikes up to ``pair_offset`` samples apart (``_pair``); if that leaves less than
``PAIR_GAIN`` of the single fit's residual, the peak goes to the unit deeper at its sample and
the other one is reported as a spike of its own. The updates a decision sees depend only on the
spikes before it in sample order, so results stay chunk invariant.

With adaptation on, the winning template moves (on its own support) towards ``x / a`` and its
typical amplitude towards ``a``, with weight ``1 / min(n, adapt_spikes)``: a running mean that
becomes an exponential average, so templates follow slow drift. A template's shape follows only
its unit's first ``shape_spikes`` matched spikes; after them only the typical amplitude is learnt,
so a shape does not wander onto a neighbour's over a long run (templates given from a prior sort
are fixed, discovered ones settle after a few hundred spikes). Decisions and updates happen in
peak order, so the result does not depend on how the stream was chunked.
"""

from __future__ import annotations

from collections import namedtuple

import numba
import numpy as np

# Named state of the matching kernels (namedtuples: Numba passes them as one typed argument and
# unpacks them at no cost). The arrays are the TemplateBank's and the TemplateMatcher's own.

#: the template bank's arrays: candidate templates per channel [C, V], channels around each
#: channel [C, K], templates [U, C, W], their supports [U, K'], squared norms, typical amplitudes and
#: their observation counts, matched spikes per unit, long templates [U, C, L] and their learning
#: counts, which units' supports overlap [U, U]
BankArrays = namedtuple(
    "BankArrays",
    [
        "candidates",
        "local",
        "waves",
        "channels",
        "norm2",
        "amp",
        "amp_n",
        "matched",
        "long_waves",
        "long_n",
        "overlap",
        "late",
    ],
)
#: the matcher's settings, in samples and residual units (see ``MatchingConfig``)
MatchSettings = namedtuple(
    "MatchSettings",
    [
        "pre",
        "max_shift",
        "max_residual",
        "min_explained",
        "min_fit_explained",
        "truncated",
        "pair_offset",
        "tolerance",
        "adapt_spikes",
        "shape_spikes",
        "late_len",
        "late_wait",
        "late_evidence",
        "late_margin",
    ],
    defaults=(0, 0, 0.0, 0.0),  # late decisions off
)
#: channel weights (inverse noise variance) for peaks from sample ``epoch`` on, and before it
ChannelWeights = namedtuple("ChannelWeights", ["prev_inv_var", "inv_var", "epoch"])
#: the overlap state: a ring of recently decided spikes (anchor sample, bank index or -1,
#: amplitude), a FIFO ring of queued long-template updates (anchor, bank index, amplitude), and
#: ``counters`` indexed by DECIDED, QUEUE_HEAD, QUEUE_TAIL
RecentSpikes = namedtuple("RecentSpikes", ["rec_s", "rec_u", "rec_a", "q_s", "q_u", "q_a", "counters"])
#: ``RecentSpikes.counters``: spikes decided so far, and the head and tail of the update queue
DECIDED, QUEUE_HEAD, QUEUE_TAIL = 0, 1, 2
N_COUNTERS = 3
#: what ``match_peaks`` decides per peak: bank index (-1: none), amplitude, explained fraction,
#: shift, and for a peak fitted as a pair the other spike's bank index, amplitude and shift
PeakDecisions = namedtuple(
    "PeakDecisions", ["index", "amp", "score", "shift", "partner", "partner_amp", "partner_shift", "held"]
)
#: spikes held for a late decision (a FIFO ring in peak order, from ``counters[LATE_HEAD]`` to
#: ``counters[LATE_TAIL]``): the peak's sample, channel and detected trough depth, the won match
#: (shift, bank index, amplitude, score), where its overlap entry sits (``RecentSpikes``'
#: DECIDED count at the time), and once decided the final bank index and amplitude and the peak
#: (of the same ``match_peaks`` call) it was decided before (-1: after the call's last)
LateSpikes = namedtuple(
    "LateSpikes",
    [
        "peak",
        "channel",
        "depth",
        "shift",
        "index",
        "fit",
        "score",
        "rec",
        "final",
        "final_fit",
        "before",
        "counters",
    ],
)
#: ``LateSpikes.counters``: FIFO head and tail, spikes held so far, held spikes moved to another
#: unit, spikes that could not be held (the FIFO was full: decided on the match window alone)
LATE_HEAD, LATE_TAIL, LATE_HELD, LATE_MOVED, LATE_OVERFLOW = 0, 1, 2, 3, 4
N_LATE_COUNTERS = 5

#: amplitude observations before a unit's amplitude bounds its fits
MIN_AMPLITUDE_OBSERVATIONS = 20
#: the amplitude gate's allowance for the noise of a single fit, in standard deviations
AMPLITUDE_NOISE_SDS = 3.0
#: weight of each candidate's prior in the ranking, ``2 ln(its spikes so far)`` in residual units
#: (1: the maximum a posteriori choice). Templates alike within the match window (a complex spike
#: and its cell's simple spikes) would split a near tie at chance; the prior gives it to the unit
#: that fires more
RATE_PRIOR = 1.0
#: units that explain a snippet best alone, each tried as one of a pair of overlapping spikes
PAIR_FIRSTS = 2
#: an accepted match that leaves more than this (residual ratio) is tried as a pair as well ...
PAIR_FROM_RESIDUAL = 2.5
#: ... and replaced if the pair leaves less than this fraction of its residual
PAIR_GAIN = 0.5


#: ``_without_others``' bound when every other spike counts
NO_LIMIT = np.iinfo(np.int64).max
#: a unit decides late only once its long template stands for this many spikes (learnt, or given
#: with a template that covers the late window)
LATE_MIN_LEARNT = 10


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
    if amp_n[u] >= MIN_AMPLITUDE_OBSERVATIONS and _outside_gate(a, amp[u], tolerance, tt):
        return np.inf, a, 0.0
    left = energy - 2.0 * a * dot + a * a * tt
    return left / n, a, 1.0 - left / energy


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE)
def _outside_gate(a, typical, tolerance, tt):
    """True if a fit of amplitude ``a`` is not this unit's size (neighbouring units often share a
    shape): it differs from the unit's ``typical`` amplitude by more than ``tolerance`` of it plus
    the fit's own noise, whose sd is 1 / sqrt(<T, T>) = 1 / sqrt(``tt``) with channels weighted by
    inverse noise variance."""
    return abs(a - typical) > tolerance * typical + AMPLITUDE_NOISE_SDS / np.sqrt(tt)


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
def _subtract_recent(
    xs, first_sample, home, near, n_used, long_waves, channels, overlap, pre, rec_s, rec_u, rec_a, n_rec
):
    """Take from the snippet ``xs`` (row 0 at ``first_sample``, the channels ``near`` around
    ``home``) the long templates of the recently assigned spikes (ring ``rec_*`` of ``n_rec``
    entries so far: anchor sample, bank index, amplitude) that reach into it; units whose
    support cannot reach these channels (``overlap``) are skipped."""
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
        if u < 0 or not overlap[home, channels[u, 0]]:
            continue
        a = rec_a[p]
        for t in range(max(start, first_sample), min(start + length, end)):
            r = t - first_sample
            col = t - start  # the long template's column at sample t
            for k in range(n_used):
                xs[r, k] -= a * long_waves[u, near[k], col]


@numba.jit(nopython=True, nogil=True, cache=True)
def _without_others(
    work, r0, start, u, channels, overlap, long_waves, pre, anchor, rec_s, rec_u, rec_a, n_rec, seg, until
):
    """The filtered data around a spike of unit ``u`` (``seg`` [K, span], rows of ``work`` from
    ``r0``, sample ``start``, on u's support; span at most a long template's length) less the long
    templates of the other assigned spikes (ring ``rec_*``) that reach into it (those of units whose
    support can reach u's: ``overlap``) and whose anchor lies before ``until``. False if the ring no
    longer reaches back far enough to know them all."""
    ring = rec_s.shape[0]
    length = long_waves.shape[2]
    span = seg.shape[1]
    if n_rec > ring and rec_s[n_rec % ring] > start - length + pre:
        return False  # the oldest spike kept is too recent: earlier neighbours were forgotten
    for k in range(channels.shape[1]):
        c = channels[u, k]
        if c < 0:
            break
        for col in range(span):
            seg[k, col] = work[r0 + col, c]
    itself = False
    for j in range(n_rec - 1, max(-1, n_rec - ring - 1), -1):
        p = j % ring
        other = rec_u[p]
        if other < 0 or not overlap[channels[u, 0], channels[other, 0]]:
            continue
        if not itself and other == u and rec_s[p] == anchor:
            itself = True
            continue
        if rec_s[p] >= until:
            continue
        lag = rec_s[p] - anchor  # its template's first value is at seg column ``lag``
        if lag <= -length or lag >= span:
            continue
        a = rec_a[p]
        for k in range(channels.shape[1]):
            c = channels[u, k]
            if c < 0:
                break
            trace = long_waves[other, c]
            for col in range(max(0, lag), min(span, length + lag)):
                seg[k, col] -= a * trace[col - lag]
    return True


@numba.jit(nopython=True, nogil=True, cache=True)
def learn_long(work, work_first, up_to, bank, pre, adapt_spikes, recent):
    """Apply the queued long-template updates (FIFO ring ``q_*`` from ``counters[QUEUE_HEAD]`` to
    ``counters[QUEUE_TAIL]``) whose anchor is at least a template length before sample ``up_to``
    (every spike before that sample is decided and in the ring ``rec_*``): each moves its unit's long template (on its
    support) towards the filtered data around its anchor, less the long templates of the other
    assigned spikes there, over its amplitude (what is left of an overlap is the unit's own
    waveform, plus any spikes no unit explains: these average out unless they follow the unit's
    spikes, as a complex spike's spikelets do). ``bank``: BankArrays; ``recent``: RecentSpikes."""
    long_waves, long_n, channels, overlap = bank.long_waves, bank.long_n, bank.channels, bank.overlap
    rec_s, rec_u, rec_a, q_s, q_u, q_a, counters = recent
    ring = q_s.shape[0]
    length = long_waves.shape[2]
    if counters[QUEUE_HEAD] == counters[QUEUE_TAIL] or q_s[counters[QUEUE_HEAD] % ring] + length > up_to:
        return  # nothing ready (most calls: one is made before every peak)
    seg = np.empty((channels.shape[1], length), np.float32)
    while counters[QUEUE_HEAD] < counters[QUEUE_TAIL]:
        p = counters[QUEUE_HEAD] % ring
        start = q_s[p] - pre
        if q_s[p] + length > up_to:  # every spike near enough to matter must be decided first
            break
        counters[QUEUE_HEAD] += 1
        r0 = start - work_first
        if r0 < 0 or r0 + length > work.shape[0]:
            continue  # not in the data kept (cannot happen with the matcher's history)
        u = q_u[p]
        if not _without_others(
            work,
            r0,
            start,
            u,
            channels,
            overlap,
            long_waves,
            pre,
            q_s[p],
            rec_s,
            rec_u,
            rec_a,
            counters[DECIDED],
            seg,
            NO_LIMIT,
        ):
            continue
        a = q_a[p]
        long_n[u] += 1
        rate = 1.0 / min(long_n[u], max(adapt_spikes, 1))
        for k in range(channels.shape[1]):
            c = channels[u, k]
            if c < 0:
                break
            for col in range(length):
                v = long_waves[u, c, col]
                long_waves[u, c, col] = v + rate * (seg[k, col] / a - v)


@numba.jit(nopython=True, nogil=True, cache=True)
def _template(waves, u, near, n_used, out):
    """Template u on the channels ``near`` into ``out`` [W, K]."""
    for k in range(n_used):
        trace = waves[u, near[k]]
        for w in range(out.shape[0]):
            out[w, k] = trace[w]


@numba.jit(nopython=True, nogil=True, cache=True)
def _choose(
    cand,
    channels,
    local,
    waves,
    xs,
    wgt,
    energy,
    view_channel,
    view_used,
    n_view,
    width,
    max_shift,
    amp,
    amp_n,
    tolerance,
    min_fit_explained,
    tmpl,
    matched,
):
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
        score, a, explained = _fit(
            xs[v], max_shift, energy[v, max_shift], tmpl, width, wgt[v], n_used, u, amp, amp_n, tolerance
        )
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
def _busier_margin(
    cand,
    channels,
    local,
    waves,
    xs,
    wgt,
    energy,
    view_channel,
    view_used,
    n_view,
    width,
    max_shift,
    min_fit_explained,
    tmpl,
    matched,
    u,
    shift,
    score,
):
    """How much more energy (noise variances, less the priors) the best fit of a unit with more
    spikes so far than ``u`` leaves than u's match (``shift``, residual ratio ``score``, as
    ``_choose`` ranked it over ``width`` samples of ``energy``), at u's shift and its amplitude
    gate aside; inf if no such unit resembles the spike."""
    s = shift + max_shift
    n_best = width * view_used[_view_of(channels[u, 0], view_channel, n_view)]
    best_rank = score - _log_prior(matched[u], n_best)
    margin = np.inf
    for j in range(cand.shape[0]):
        c = cand[j]
        if c < 0:
            break
        if matched[c] <= matched[u]:
            continue
        v = _view_of(channels[c, 0], view_channel, n_view)
        n_used = view_used[v]
        _template(waves, c, local[channels[c, 0]], n_used, tmpl)
        left = _residual(xs[v], s, energy[v, s], tmpl, width, wgt[v], n_used)
        if left > (1.0 - min_fit_explained) * energy[v, s]:
            continue  # it does not resemble the spike
        rank = (left - 2.0 * RATE_PRIOR * np.log(max(matched[c], 1))) / (width * n_used)
        margin = min(margin, (rank - best_rank) * n_best)
    return margin


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE)
def _residual(xs, s, energy, tmpl, width, wgt, n_used):
    """The energy template ``tmpl`` leaves at shift index ``s`` of ``xs`` with its amplitude
    fitted freely (``_fit`` without the amplitude gate); ``energy`` if it does not fit."""
    dot, tt = _dots(xs, s, tmpl, tmpl, 0, width, wgt, n_used)
    if dot <= 0.0 or tt <= 0.0:
        return energy
    return energy - dot * dot / tt


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE)
def _pair(
    cand,
    channels,
    local,
    waves,
    xs,
    wgt,
    view_channel,
    view_used,
    n_view,
    width,
    pre,
    max_shift,
    pair_offset,
    amp,
    amp_n,
    tolerance,
    peak_channel,
    tu,
    tw,
):
    """The best explanation of a snippet as the sum of two units' spikes (for a peak no single
    template explains: two spikes closer than a match window). Each of the ``PAIR_FIRSTS``
    candidates that fit the snippet best alone is placed at its best shift; every other
    candidate is placed up to ``pair_offset`` samples from it, and both amplitudes are fitted
    together (least squares on the first one's view, over the whole gathered window). Only units
    whose typical amplitude is known take part, and both fits must fall in their amplitude gates.
    Returns (the unit the peak belongs to: of the two, the deeper at the peak's sample on its
    channel, or -1; residual ratio; its amplitude; its shift; the other unit, its amplitude and
    shift)."""
    rows = xs.shape[1]
    firsts = np.full(PAIR_FIRSTS, -1, np.int64)
    first_shift = np.zeros(PAIR_FIRSTS, np.int64)
    first_gain = np.full(PAIR_FIRSTS, -np.inf)
    for j in range(cand.shape[0]):  # the candidates that explain most of the snippet alone
        u = cand[j]
        if u < 0:
            break
        if amp_n[u] < MIN_AMPLITUDE_OBSERVATIONS:
            continue
        v = _view_of(channels[u, 0], view_channel, n_view)
        n_used = view_used[v]
        _template(waves, u, local[channels[u, 0]], n_used, tu)
        gain, shift = -np.inf, 0
        for s in range(2 * max_shift + 1):
            xu, uu = _dots(xs[v], s, tu, tu, 0, width, wgt[v], n_used)
            if xu > 0.0 and uu > 0.0 and xu * xu / uu > gain:
                gain, shift = xu * xu / uu, s  # the energy the fit removes, at its best shift
        worst = 0
        for f in range(1, PAIR_FIRSTS):
            if first_gain[f] < first_gain[worst]:
                worst = f
        if gain > first_gain[worst]:
            firsts[worst], first_shift[worst], first_gain[worst] = u, shift, gain
    best_u, best_ratio, best_a, best_s = -1, np.inf, 0.0, 0
    other_u, other_a, other_s = -1, 0.0, 0
    for f in range(PAIR_FIRSTS):
        u = firsts[f]
        if u < 0:
            continue
        su = first_shift[f]
        v = _view_of(channels[u, 0], view_channel, n_view)
        n_used = view_used[v]
        near = local[channels[u, 0]]
        x = xs[v]
        g = wgt[v]
        energy = 0.0
        for r in range(rows):
            for k in range(n_used):
                energy += g[k] * x[r, k] * x[r, k]
        _template(waves, u, near, n_used, tu)
        xu, uu = _dots(x, su, tu, tu, 0, width, g, n_used)
        at = -1  # the peak's channel in this view
        for k in range(n_used):
            if near[k] == peak_channel:
                at = k
        for j in range(cand.shape[0]):
            w = cand[j]
            if w < 0:
                break
            if w == u or amp_n[w] < MIN_AMPLITUDE_OBSERVATIONS:
                continue
            _template(waves, w, near, n_used, tw)
            for d in range(-pair_offset, pair_offset + 1):
                sw = su + d  # the partner's first row in the window (it may reach beyond it)
                lo = max(0, -sw)
                hi = min(width, rows - sw)
                if hi - lo <= 0:
                    continue
                xw, ww = _dots(x, sw, tw, tw, lo, hi, g, n_used)
                if ww <= 0.0:
                    continue
                # <T_u, T_w> where both are placed
                uw = 0.0
                for r in range(max(su, sw + lo), min(su + width, sw + hi)):
                    for k in range(n_used):
                        uw += g[k] * tu[r - su, k] * tw[r - sw, k]
                det = uu * ww - uw * uw
                if det <= 1e-6 * uu * ww:
                    continue  # the two placed templates are (nearly) the same shape
                au = (xu * ww - xw * uw) / det
                aw = (xw * uu - xu * uw) / det
                if au <= 0.0 or aw <= 0.0:
                    continue
                if _outside_gate(au, amp[u], tolerance, uu) or _outside_gate(aw, amp[w], tolerance, ww):
                    continue
                left = energy - 2.0 * au * xu - 2.0 * aw * xw + au * au * uu + aw * aw * ww + 2.0 * au * aw * uw
                ratio = left / (rows * n_used)
                if ratio >= best_ratio:
                    continue
                best_ratio = ratio
                # the peak is the spike deeper at its own sample and channel
                mine, theirs = au, aw
                if at >= 0:
                    r0 = max_shift + pre  # the detected sample's row
                    mine = -au * tu[r0 - su, at] if 0 <= r0 - su < width else 0.0
                    theirs = -aw * tw[r0 - sw, at] if 0 <= r0 - sw < width else 0.0
                if mine >= theirs:
                    best_u, best_a, best_s = u, au, su - max_shift
                    other_u, other_a, other_s = w, aw, sw - max_shift
                else:
                    best_u, best_a, best_s = w, aw, sw - max_shift
                    other_u, other_a, other_s = u, au, su - max_shift
    return best_u, best_ratio, best_a, best_s, other_u, other_a, other_s


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE)
def _dots(x, s, a, b, lo, hi, g, n_used):
    """(<x, a>, <a, b>) with ``a`` and ``b`` placed at row ``s`` of ``x``, over their rows
    ``lo`` .. ``hi``, channels weighted by ``g``."""
    xa = 0.0
    ab = 0.0
    for w in range(lo, hi):
        row = x[s + w]
        for k in range(n_used):
            ga = g[k] * a[w, k]
            xa += ga * row[k]
            ab += ga * b[w, k]
    return xa, ab


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
    work, work_first, peak_t, peak_c, peak_depth, bank, weights_by_epoch, settings, decisions, recent, late
):
    """work: float32 [L, C] filtered samples, ``work[0]`` at global index ``work_first``; every
    peak's window (with shifts) must lie inside. local: int32 [C, K] channels around each
    channel (-1 padded); waves: [U, C, W] dense templates (channel-major); channels: [U, K'] their
    supports; inv_var: channel weights for peaks from sample ``epoch`` on, prev_inv_var before it.
    Writes the bank index (-1: none), amplitude, explained fraction and shift of each peak; updates
    matched counts, templates, amplitudes. ``bank``: BankArrays; ``weights_by_epoch``:
    ChannelWeights; ``settings``: MatchSettings; ``decisions``: PeakDecisions (written);
    ``recent``: RecentSpikes (read and updated); ``late``: LateSpikes (spikes held for a late
    decision are added, and those due are decided, before each peak; ``peak_depth``: each peak's
    detected trough depth, kept with a held spike)."""
    candidates, local, waves, channels, norm2, amp, amp_n, matched, long_waves, long_n, overlap, late_flag = bank
    prev_inv_var, inv_var, epoch = weights_by_epoch
    pre, max_shift, max_residual, min_explained, min_fit_explained = settings[:5]
    truncated, pair_offset, tolerance, adapt_spikes, shape_spikes = settings[5:10]
    late_len, late_evidence = settings.late_len, settings.late_evidence
    late_counters = late.counters
    out_index, out_amp, out_score, out_shift, out_partner, out_partner_amp, out_partner_shift, out_held = decisions
    rec_s, rec_u, rec_a, q_s, q_u, q_a, counters = recent
    width = waves.shape[2]
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
    tmpl2 = np.empty((width, k_near), np.float32)
    seg = np.empty((channels.shape[1], late_len), np.float32)  # a held spike's late window
    for i in range(peak_t.shape[0]):
        t0 = peak_t[i] - work_first - pre
        cand = candidates[peak_c[i]]  # TemplateBank: nearby templates whose support holds this channel
        weights = inv_var if peak_t[i] >= epoch else prev_inv_var
        if late_counters[LATE_HEAD] < late_counters[LATE_TAIL]:
            _resolve_due(peak_t[i], i, work, work_first, bank, weights_by_epoch, settings, recent, late, seg)
        if long_waves.shape[2] > 0:
            # the long templates learnt from spikes before this one (taken away in each view)
            learn_long(work, work_first, peak_t[i], bank, pre, adapt_spikes, recent)
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
                    _subtract_recent(
                        xs[v],
                        peak_t[i] - pre - max_shift,
                        home,
                        near,
                        n_used,
                        long_waves,
                        channels,
                        overlap,
                        pre,
                        rec_s,
                        rec_u,
                        rec_a,
                        counters[DECIDED],
                    )
                _energies(xs[v], n_used, wgt[v], max_shift, width, energy[v])
                view_channel[v], view_used[v] = home, n_used
                n_view += 1
        best_i, best_score, best_a, best_s, best_explained = _choose(
            cand,
            channels,
            local,
            waves,
            xs,
            wgt,
            energy,
            view_channel,
            view_used,
            n_view,
            width,
            max_shift,
            amp,
            amp_n,
            tolerance,
            min_fit_explained,
            tmpl,
            matched,
        )
        chosen_energy, chosen_width = energy, width  # what the winner was judged on
        # accepted if it leaves little beyond noise, or (an overlap of two spikes) if it explains
        # most of the snippet anyway (and, by the ranking, it removes at least min_fit_explained)
        rejected = best_i < 0 or (best_score > max_residual and best_explained < min_explained)
        # some template explains a good part of it (noise peaks and unknown units' spikes, which
        # none does, are not tried as pairs: each trial costs tens of microseconds)
        resembles = best_i >= 0
        if rejected and truncated < width:
            # a spike that a later one overlaps: judged again on its window up to a little after
            # its trough, before most of the later spike arrives
            for v in range(n_view):
                _energies(xs[v], view_used[v], wgt[v], max_shift, truncated, energy_cut[v])
            cut = _choose(
                cand,
                channels,
                local,
                waves,
                xs,
                wgt,
                energy_cut,
                view_channel,
                view_used,
                n_view,
                truncated,
                max_shift,
                amp,
                amp_n,
                tolerance,
                min_fit_explained,
                tmpl,
                matched,
            )
            if cut[0] >= 0 and cut[1] <= max_residual:
                best_i, best_score, best_a, best_s, best_explained = cut
                chosen_energy, chosen_width = energy_cut, truncated
                rejected = False
        paired = False
        partner, partner_a, partner_s = -1, 0.0, 0
        if pair_offset > 0 and resembles and (rejected or best_score > PAIR_FROM_RESIDUAL):
            # two spikes closer than a match window (none fits alone, or one was accepted for
            # explaining most of the snippet): explained together, the peak goes to the one deeper
            # at its sample and the other is a spike of its own (often not detected apart);
            # neither teaches its template (each is mixed with the other)
            pu, ratio, pa, ps, partner, partner_a, partner_s = _pair(
                cand,
                channels,
                local,
                waves,
                xs,
                wgt,
                view_channel,
                view_used,
                n_view,
                width,
                pre,
                max_shift,
                pair_offset,
                amp,
                amp_n,
                tolerance,
                peak_c[i],
                tmpl,
                tmpl2,
            )
            if pu >= 0 and ratio <= max_residual and (rejected or ratio < PAIR_GAIN * best_score):
                best_i, best_score, best_a, best_s, best_explained = pu, ratio, pa, ps, 0.0
                rejected = False
                paired = True
            else:
                partner = -1
        if rejected:
            best_i = -1
        if long_waves.shape[2] > 0:  # every decided spike is remembered; an assigned one is subtracted from now on
            p = counters[DECIDED] % rec_s.shape[0]
            if best_i >= 0:
                rec_s[p], rec_u[p], rec_a[p] = peak_t[i] + best_s, best_i, best_a
            else:
                rec_s[p], rec_u[p], rec_a[p] = peak_t[i], -1, 0.0
            counters[DECIDED] += 1
            if partner >= 0:  # subtracted from later peaks too (its own, if it was detected apart)
                p = counters[DECIDED] % rec_s.shape[0]
                rec_s[p], rec_u[p], rec_a[p] = peak_t[i] + partner_s, partner, partner_a
                counters[DECIDED] += 1
        out_index[i] = best_i
        out_amp[i] = best_a
        out_score[i] = best_score if best_i >= 0 else np.inf
        out_shift[i] = best_s
        out_partner[i], out_partner_amp[i], out_partner_shift[i] = partner, partner_a, partner_s
        out_held[i] = False
        if best_i < 0:
            continue
        u = best_i
        hold = False
        unsure = False  # a late unit's spike that another unit may have fired
        if late_len > 0 and not paired:
            eligible = _decides_late(u, bank, weights, width, late_len, late_evidence)
            late_flag[u] = eligible
            # a busier unit fits the spike almost as well (or better, but for its amplitude gate):
            # the match window may have mistaken its spike, or two overlapping ones, for this unit's
            unsure = (
                eligible
                and _busier_margin(
                    cand,
                    channels,
                    local,
                    waves,
                    xs,
                    wgt,
                    chosen_energy,
                    view_channel,
                    view_used,
                    n_view,
                    chosen_width,
                    max_shift,
                    min_fit_explained,
                    tmpl,
                    matched,
                    u,
                    best_s,
                    best_score,
                )
                < settings.late_margin
            )
            hold = unsure
            if hold and late_counters[LATE_TAIL] - late_counters[LATE_HEAD] >= late.peak.shape[0]:
                hold = False
                late_counters[LATE_OVERFLOW] += 1
        if (
            long_waves.shape[2] > 0
            and not unsure  # (learnt from once decided late: a late unit's template must stay its own)
            and counters[QUEUE_TAIL] - counters[QUEUE_HEAD] < q_s.shape[0]
        ):  # queued to learn from
            p = counters[QUEUE_TAIL] % q_s.shape[0]
            q_s[p], q_u[p], q_a[p] = peak_t[i] + best_s, u, best_a
            counters[QUEUE_TAIL] += 1
        if hold:  # decided again once its late window has arrived (``_resolve_due``)
            e = late_counters[LATE_TAIL] % late.peak.shape[0]
            late.peak[e], late.channel[e], late.depth[e] = peak_t[i], peak_c[i], peak_depth[i]
            late.shift[e], late.index[e], late.fit[e], late.score[e] = best_s, u, best_a, best_score
            late.rec[e] = counters[DECIDED] - 1
            late_counters[LATE_TAIL] += 1
            late_counters[LATE_HELD] += 1
            out_held[i] = True
            continue
        matched[u] += 1
        if partner >= 0:
            matched[partner] += 1
        if adapt_spikes <= 0 or paired:
            continue
        _adapt(work, t0 + best_s, best_a, u, bank, settings)


@numba.jit(nopython=True, nogil=True, cache=True)
def _adapt(work, row, a, u, bank, settings):
    """Move unit ``u``'s typical amplitude towards ``a`` and, while it still learns its shape
    (its first ``shape_spikes`` spikes), its template towards the data from row ``row`` of
    ``work`` over ``a`` (with weight ``1 / min(matched, adapt_spikes)``; ``matched`` already
    counts this spike)."""
    waves, channels, norm2, amp, amp_n, matched = (
        bank.waves,
        bank.channels,
        bank.norm2,
        bank.amp,
        bank.amp_n,
        bank.matched,
    )
    pre, adapt_spikes, shape_spikes = settings.pre, settings.adapt_spikes, settings.shape_spikes
    width = waves.shape[2]
    k_max = channels.shape[1]
    amp_n[u] += 1
    amp[u] += (a - amp[u]) / min(amp_n[u], adapt_spikes)
    if matched[u] > shape_spikes:  # the shape is learnt from the unit's first shape_spikes spikes only
        return
    rate = 1.0 / min(matched[u], adapt_spikes)
    new_norm = 0.0
    for k in range(k_max):
        c = channels[u, k]
        if c < 0:
            break
        for w in range(width):
            target = work[row + w, c] / a
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
def _decides_late(u, bank, weights, width, late_len, late_evidence):
    """Does unit ``u``'s waveform go on past the match window (a complex spike's spikelets, a
    broad waveform)? Its long template, learnt from (or given for) at least ``LATE_MIN_LEARNT``
    spikes, holds beyond the window's ``width`` samples, up to ``late_len``, at the unit's typical
    amplitude, at least ``late_evidence`` of energy over the noise on its peak channel."""
    if bank.long_n[u] < LATE_MIN_LEARNT or bank.amp_n[u] < MIN_AMPLITUDE_OBSERVATIONS:
        return False
    c = bank.channels[u, 0]
    trace = bank.long_waves[u, c]
    tail = 0.0
    for col in range(width, late_len):
        tail += trace[col] * trace[col]
    return bank.amp[u] * bank.amp[u] * tail * weights[c] >= late_evidence


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE)
def _late_choice(seg, u, cand, bank, weights, width, late_len, late_margin):
    """The unit a held spike of unit ``u`` belongs to, judged on its late window ``seg`` [K, late_len]
    (u's support, the other decided spikes taken away). Each candidate's long template is fitted
    with a free amplitude over the whole window; the contenders are u and the units with more
    spikes so far whose fit leaves at most ``late_margin`` more energy than u's on the match
    window (``width`` columns). They are ranked on the energy they leave over the whole window
    (beyond the match window: the spikelets of a complex spike, a broad waveform's tail, which the
    match window did not see), less their prior (``2 ln n``). Returns (bank index, amplitude)."""
    channels, long_waves, matched = bank.channels, bank.long_waves, bank.matched
    u_main, u_tail, u_a = _window_fit(seg, u, u, channels, long_waves, weights, width, late_len)
    best, best_rank, best_a = u, u_main + u_tail - _log_prior(matched[u], 1), u_a
    for j in range(cand.shape[0]):
        c = cand[j]
        if c < 0:
            break
        if c == u or matched[c] <= matched[u]:
            continue
        main, tail, a = _window_fit(seg, u, c, channels, long_waves, weights, width, late_len)
        if a <= 0.0 or main > u_main + late_margin:
            continue
        rank = main + tail - _log_prior(matched[c], 1)
        if rank < best_rank:
            best, best_rank, best_a = c, rank, a
    return best, best_a


@numba.jit(nopython=True, nogil=True, cache=True, fastmath=REASSOCIATE)
def _window_fit(seg, u, c, channels, long_waves, weights, width, late_len):
    """Unit ``c``'s long template fitted (free amplitude, channels weighted) to ``seg`` on u's
    support over ``late_len`` columns: (energy left on the first ``width`` columns, energy left
    on the rest, amplitude; inf, inf, 0 if it does not fit)."""
    e_main = e_tail = d_main = d_tail = t_main = t_tail = 0.0
    for k in range(channels.shape[1]):
        ch = channels[u, k]
        if ch < 0:
            break
        g = weights[ch]
        trace = long_waves[c, ch]
        row = seg[k]
        for col in range(width):
            v = trace[col]
            x = row[col]
            e_main += g * x * x
            d_main += g * v * x
            t_main += g * v * v
        for col in range(width, late_len):
            v = trace[col]
            x = row[col]
            e_tail += g * x * x
            d_tail += g * v * x
            t_tail += g * v * v
    dot, tt = d_main + d_tail, t_main + t_tail
    if dot <= 0.0 or tt <= 0.0:
        return np.inf, np.inf, 0.0
    a = dot / tt
    return e_main - 2.0 * a * d_main + a * a * t_main, e_tail - 2.0 * a * d_tail + a * a * t_tail, a


@numba.jit(nopython=True, nogil=True, cache=True)
def _resolve_due(up_to, before, work, work_first, bank, weights_by_epoch, settings, recent, late, seg):
    """Decide the held spikes whose late window ends by ``up_to`` (every peak before it is
    decided), in the order they were held: each sees the long templates as learnt from the
    spikes up to its window's end, whatever the chunking. A spike moved to another unit moves its
    overlap entry with it; the unit it ends with counts it, and its long-template update is queued
    for that unit (the unit that won it also adapts to it, as to any match). ``before``: the peak of this
    ``match_peaks`` call the decisions come before (-1: after them all)."""
    rec_s, rec_u, rec_a, q_s, q_u, q_a, counters = recent
    lc = late.counters
    ring = late.peak.shape[0]
    pre, late_len, late_wait = settings.pre, settings.late_len, settings.late_wait
    width = bank.waves.shape[2]
    prev_inv_var, inv_var, epoch = weights_by_epoch
    while lc[LATE_HEAD] < lc[LATE_TAIL]:
        e = lc[LATE_HEAD] % ring
        due = late.peak[e] + late_wait
        if due > up_to:
            break
        learn_long(work, work_first, due, bank, pre, settings.adapt_spikes, recent)
        u = late.index[e]
        anchor = late.peak[e] + late.shift[e]
        start = anchor - pre
        r0 = start - work_first
        final, final_a = u, late.fit[e]
        in_data = r0 >= 0 and r0 + late_len <= work.shape[0]  # (not after a gap in the stream)
        if in_data:
            # (the other spikes subtracted: those of the peaks decided whatever the chunking, every
            # peak before ``due``; a peak after it may be decided already or not)
            if _without_others(
                work,
                r0,
                start,
                u,
                bank.channels,
                bank.overlap,
                bank.long_waves,
                pre,
                anchor,
                rec_s,
                rec_u,
                rec_a,
                counters[DECIDED],
                seg,
                due - settings.max_shift,
            ):
                weights = inv_var if late.peak[e] >= epoch else prev_inv_var
                c, a = _late_choice(
                    seg, u, bank.candidates[late.channel[e]], bank, weights, width, late_len, settings.late_margin
                )
                if c != u and a > 0.0:
                    final, final_a = c, a
        if final != u:
            lc[LATE_MOVED] += 1
            if counters[DECIDED] - late.rec[e] <= rec_s.shape[0]:  # still subtracted from later peaks
                p = late.rec[e] % rec_s.shape[0]
                rec_u[p], rec_a[p] = final, final_a
        if counters[QUEUE_TAIL] - counters[QUEUE_HEAD] < q_s.shape[0]:
            # the unit it ends with learns from it: its update goes into the queue in anchor order,
            # before those of the spikes decided meanwhile (none of which is applied yet: each
            # waits for a long template's length of data), so it is applied while its data is kept
            n_q = q_s.shape[0]
            j = counters[QUEUE_TAIL]
            while j > counters[QUEUE_HEAD] and q_s[(j - 1) % n_q] > anchor:
                q_s[j % n_q], q_u[j % n_q], q_a[j % n_q] = q_s[(j - 1) % n_q], q_u[(j - 1) % n_q], q_a[(j - 1) % n_q]
                j -= 1
            q_s[j % n_q], q_u[j % n_q], q_a[j % n_q] = anchor, final, final_a
            counters[QUEUE_TAIL] += 1
        bank.matched[final] += 1
        if final == u and settings.adapt_spikes > 0 and in_data:
            _adapt(work, r0, final_a, u, bank, settings)
        late.final[e], late.final_fit[e], late.before[e] = final, final_a, before
        lc[LATE_HEAD] += 1


@numba.jit(nopython=True, nogil=True, cache=True)
def match_step(
    pending,
    n_pending,
    peaks,
    work,
    work_first,
    latest_ready,
    earliest,
    n_units,
    ids,
    bank,
    weights_by_epoch,
    settings,
    out,
    recent,
    late,
):
    """One matcher call in one compiled step: append ``peaks`` to the ``n_pending`` records of
    ``pending`` (PEAK_DTYPE, in sample order), match those whose window has arrived (sample <=
    ``latest_ready``; those before ``earliest`` have no full window and are dropped) with
    ``match_peaks``, write them to ``out`` (ASSIGNED_DTYPE; unit = ``ids`` of the winner or -1)
    and keep the rest at the front of ``pending``; a peak fitted as two overlapping spikes adds
    a record for the other one (its unit's peak channel, its fitted amplitude), in sample order.
    A peak held for a late decision (``late``: LateSpikes) is written once decided, where its
    decision fell among the peaks. With ``n_units`` = 0 every decided peak is unassigned.
    ``pending`` must have room for ``n_pending + len(peaks)``, ``out`` for twice that plus the
    spikes held. Returns (records written, still pending, the oldest pending one's sample or -1,
    decided but unassigned)."""
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
    peak_depth = np.empty(n, np.float32)
    for i in range(n):
        peak_t[i] = pending[i].sample
        peak_c[i] = pending[i].channel
        peak_depth[i] = -pending[i].amplitude
    idx = np.full(n, -1, np.int32)
    fit = np.zeros(n, np.float32)
    score = np.zeros(n, np.float32)
    shift = np.zeros(n, np.int32)
    partner = np.full(n, -1, np.int32)
    partner_amp = np.zeros(n, np.float32)
    partner_shift = np.zeros(n, np.int32)
    held = np.zeros(n, np.bool_)
    first_late = late.counters[LATE_HEAD]
    if n > 0 and n_units > 0:
        decisions = PeakDecisions(idx, fit, score, shift, partner, partner_amp, partner_shift, held)
        match_peaks(
            work, work_first, peak_t, peak_c, peak_depth, bank, weights_by_epoch, settings, decisions, recent, late
        )
    e, last_late = first_late, late.counters[LATE_HEAD]
    n_unassigned = 0
    n_out = 0
    for i in range(n):
        while e < last_late and late.before[e % late.peak.shape[0]] == i:  # decided before this peak
            _write_late(out[n_out], late, e % late.peak.shape[0], ids)
            n_out += 1
            e += 1
        if held[i]:
            continue
        o = out[n_out]
        o.sample = pending[i].sample
        o.channel = pending[i].channel
        o.amplitude = peak_depth[i]
        o.unit = ids[idx[i]] if idx[i] >= 0 else -1
        o.fit = fit[i]
        o.score = score[i]
        n_unassigned += idx[i] < 0
        n_out += 1
        w = partner[i]
        if w >= 0:
            t = pending[i].sample + partner_shift[i]
            j = n_out  # the other spike's place: records stay in sample order
            while j > 0 and out[j - 1].sample > t:
                out[j] = out[j - 1]
                j -= 1
            o = out[j]
            o.sample = t
            o.channel = bank.channels[w, 0]
            o.amplitude = partner_amp[i]
            o.unit = ids[w]
            o.fit = partner_amp[i]
            o.score = score[i]
            n_out += 1
    for i in range(n_ready, n_all):
        pending[i - n_ready] = pending[i]
    oldest = pending[0].sample if n_all > n_ready else -1
    return n_out, n_all - n_ready, oldest, n_unassigned


@numba.jit(nopython=True, nogil=True, cache=True)
def _write_late(o, late, e, ids):
    """A decided held spike ``e`` as an ASSIGNED_DTYPE record."""
    o.sample = late.peak[e]
    o.channel = late.channel[e]
    o.amplitude = late.depth[e]
    o.unit = ids[late.final[e]]
    o.fit = late.final_fit[e]
    o.score = late.score[e]


@numba.jit(nopython=True, nogil=True, cache=True)
def resolve_late(work, work_first, up_to, ids, bank, weights_by_epoch, settings, recent, late, out):
    """Decide the held spikes whose late window ends by ``up_to`` (no peak before it is still to
    be decided) and write them to ``out`` (ASSIGNED_DTYPE) in the order they were held; returns
    how many."""
    lc = late.counters
    first = lc[LATE_HEAD]
    seg = np.empty((bank.channels.shape[1], settings.late_len), np.float32)
    _resolve_due(up_to, -1, work, work_first, bank, weights_by_epoch, settings, recent, late, seg)
    for e in range(first, lc[LATE_HEAD]):
        _write_late(out[e - first], late, e % late.peak.shape[0], ids)
    return lc[LATE_HEAD] - first


@numba.jit(nopython=True, nogil=True, cache=True)
def drop_repeats(spikes, last_sample, dead_samples, keep):
    """Mark in ``keep`` the decided spikes (ASSIGNED_DTYPE records) that are not a unit's repeat:
    a spike closer than ``dead_samples`` to the unit's previous one (``last_sample`` by unit id,
    -1: none; updated) is the same spike seen twice (no neuron fires twice within it). Spikes
    come in sample order but for a pair's second spike, so the distance is taken both ways.
    Returns the repeats."""
    repeats = 0
    for i in range(spikes.shape[0]):
        u = spikes[i].unit
        keep[i] = True
        if u < 0:
            continue
        s = spikes[i].sample
        prev = last_sample[u]
        if prev >= 0 and abs(s - prev) < dead_samples:
            keep[i] = False
            repeats += 1
        elif s > prev:
            last_sample[u] = s
    return repeats
