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
alignment; the two best are then re-scored over shifts of up to ``max_shift`` samples. The one
leaving the least wins if its ratio is at most ``max_residual`` (unlike a fraction of the
snippet's energy, this does not demand more of small units than of large ones), or if it removes
at least ``min_explained`` of the snippet's energy (two overlapping spikes: the larger one is
explained, the other is left); otherwise the peak stays unassigned (unit -1).

With adaptation on, the winning template moves (on its own support) towards ``x / a`` and its
typical amplitude
towards ``a``, with weight ``1 / min(n, adapt_spikes)``: a running mean that becomes an
exponential average, so templates follow slow drift. Decisions and updates happen in peak order,
so the result does not depend on how the stream was chunked.
"""

from __future__ import annotations

import numba
import numpy as np

#: amplitude observations before a unit's amplitude bounds its fits
MIN_AMPLITUDE_OBSERVATIONS = 20
#: the amplitude gate's allowance for the noise of a single fit, in standard deviations
AMPLITUDE_NOISE_SDS = 3.0


@numba.jit(nopython=True, nogil=True, cache=True)
def _fit(work, t0, u, s, waves, local, inv_var, amp, amp_n, tolerance):
    """(residual ratio, amplitude, explained fraction) of template u at shift s on the channels
    ``local``: the snippet's energy left after subtracting ``a * T``, over what noise alone would
    leave (each channel weighted by 1 / its noise variance; ~1 for a spike the template explains),
    and the fraction of the snippet's energy the fit removed."""
    width = waves.shape[1]
    dot = 0.0
    energy = 0.0
    tt = 0.0
    n = 0
    for k in range(local.shape[0]):
        c = local[k]
        if c < 0:
            break
        wgt = inv_var[c]
        for w in range(width):
            x = work[t0 + s + w, c]
            v = waves[u, w, c]
            dot += wgt * x * v
            energy += wgt * x * x
            tt += wgt * v * v
        n += width
    if dot <= 0.0 or tt <= 0.0 or n == 0:
        return np.inf, 0.0, 0.0
    a = dot / tt
    # not this unit's size (neighbouring units often share a shape): the gate widens by the fit's
    # own noise, whose sd is 1 / sqrt(<T, T>) with channels weighted by inverse noise variance
    if amp_n[u] >= MIN_AMPLITUDE_OBSERVATIONS and abs(a - amp[u]) > tolerance * amp[u] + AMPLITUDE_NOISE_SDS / np.sqrt(tt):
        return np.inf, a, 0.0
    left = energy - 2.0 * a * dot + a * a * tt
    return left / n, a, 1.0 - left / energy


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
    tolerance,
    adapt_spikes,
    out_index,
    out_amp,
    out_score,
    out_shift,
):
    """work: float32 [L, C] filtered samples, ``work[0]`` at global index ``work_first``; every
    peak's window (with shifts) must lie inside. local: int32 [C, K] channels around each
    channel (-1 padded); waves: [U, W, C] dense templates; channels: [U, K'] their supports;
    inv_var: channel weights for peaks from sample ``epoch`` on, prev_inv_var before it. Writes the bank index (-1: none), amplitude,
    explained fraction and shift of each peak; updates matched counts, templates, amplitudes."""
    width = waves.shape[1]
    k_max = channels.shape[1]
    for i in range(peak_t.shape[0]):
        t0 = peak_t[i] - work_first - pre
        cand = candidates[peak_c[i]]
        near = local[peak_c[i]]
        weights = inv_var if peak_t[i] >= epoch else prev_inv_var
        first, second = -1, -1
        first_score, second_score = np.inf, np.inf
        for j in range(cand.shape[0]):
            u = cand[j]
            if u < 0:
                break
            score, _, _ = _fit(work, t0, u, 0, waves, near, weights, amp, amp_n, tolerance)
            if score < first_score:
                second, second_score = first, first_score
                first, first_score = u, score
            elif score < second_score:
                second, second_score = u, score
        best_i = -1
        best_score = np.inf
        best_a = 0.0
        best_s = 0
        best_explained = 0.0
        for u in (first, second):
            if u < 0:
                continue
            for s in range(-max_shift, max_shift + 1):
                score, a, explained = _fit(work, t0, u, s, waves, near, weights, amp, amp_n, tolerance)
                if score < best_score:
                    best_score, best_i, best_a, best_s, best_explained = score, u, a, s, explained
        # accepted if it leaves little beyond noise, or (an overlap of two spikes) if it explains
        # most of the snippet anyway
        if best_i >= 0 and best_score > max_residual and best_explained < min_explained:
            best_i = -1
        out_index[i] = best_i
        out_amp[i] = best_a
        out_score[i] = best_score if best_i >= 0 else np.inf
        out_shift[i] = best_s
        if best_i < 0:
            continue
        u = best_i
        matched[u] += 1
        if adapt_spikes <= 0:
            continue
        amp_n[u] += 1
        amp[u] += (best_a - amp[u]) / min(amp_n[u], adapt_spikes)
        rate = 1.0 / min(matched[u], adapt_spikes)
        new_norm = 0.0
        for k in range(k_max):
            c = channels[u, k]
            if c < 0:
                break
            for w in range(width):
                target = work[t0 + best_s + w, c] / best_a
                v = waves[u, w, c] + rate * (target - waves[u, w, c])
                waves[u, w, c] = v
                new_norm += v * v
        norm2[u] = new_norm
