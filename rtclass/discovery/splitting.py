"""Splitting a unit that holds two.

Online discovery creates a unit from the first tight cluster of unexplained spikes on a channel.
If two neighbouring units of near-identical shape and size were both in that cluster, or the
second unit's spikes fit the first one's template within the matcher's bounds, the second unit's
spikes are never unexplained, so discovery never sees it. So each unit's recently assigned spikes
(on its wide neighbourhood, ``TemplateBank.wide_channels``) are clustered again from time to time,
by the same PCA + ISO-SPLIT as discovery. When they fall into several clusters, the one the unit's
template fits best stays the unit (its template is reset to that cluster's median: the unit keeps
its id), and each other cluster becomes a new unit if its trough lies within ``SPLIT_REACH_UM`` of
the unit's peak channel and no template explains it (``explains``): not the stayer's, not any
other unit's, not another cluster split off in the same check.
"""

from __future__ import annotations

import numpy as np

from rtclass.matching.templates import SPLIT_REACH_UM, TemplateBank, shifted_overlaps

#: a template explains a cluster if, fitted to the cluster's median with its amplitude within
#: tolerance, it leaves less than this many noise variances per value (the median of 25-40 spikes
#: alone leaves ~0.04-0.06; two MLIs 20 um apart with a 0.97 shape correlation leave ~0.7) ...
MIN_MISMATCH = 0.25
#: ... or less than this fraction of the median's energy (a large unit's median differs from its
#: template by a few per cent from alignment jitter, many noise variances in absolute terms)
MIN_RELATIVE_MISMATCH = 0.03


def mismatch(
    x: np.ndarray,
    x_chans: np.ndarray,
    t: np.ndarray,
    t_chans: np.ndarray,
    inv_var: np.ndarray,
    max_shift: int,
    amp_ref: float,
    tolerance: float,
) -> tuple[float, float] | None:
    """What template ``t`` ([W, Kt] on ``t_chans``, trough -1 on its peak channel) leaves of
    ``x`` ([W, Kx] on ``x_chans``, uV) when fitted as ``a * t`` on the channels both cover (at
    least half of x's), at the best of the shifts up to ``max_shift``: (noise variances per
    value, fraction of x's energy), channels weighted by ``inv_var``. None if they share too
    few channels or if no shift's ``a`` lies within ``tolerance`` of ``amp_ref`` (the unit's
    typical trough depth; <= 0: any)."""
    xi, ti = [], []
    for k, ch in enumerate(x_chans.tolist()):
        hit = np.flatnonzero(t_chans == ch)
        if hit.size:
            xi.append(k)
            ti.append(int(hit[0]))
    if 2 * len(xi) < x_chans.size:
        return None
    xs, ts, w = x[:, xi].astype(np.float64), t[:, ti].astype(np.float64), inv_var[x_chans[xi]].astype(np.float64)
    best = None
    for a_part, b_part in shifted_overlaps(xs, ts, max_shift):
        dot, tt, xx = (
            float((w * a_part * b_part).sum()),
            float((w * b_part * b_part).sum()),
            float((w * a_part * a_part).sum()),
        )
        if dot <= 0 or tt <= 0 or xx <= 0:
            continue
        a = dot / tt
        if amp_ref > 0 and abs(a - amp_ref) > tolerance * amp_ref:
            continue
        left = xx - a * dot
        found = (left / a_part.size, left / xx)
        if best is None or found[0] < best[0]:
            best = found
    return best


def explains(found: tuple[float, float] | None) -> bool:
    return found is not None and (found[0] < MIN_MISMATCH or found[1] < MIN_RELATIVE_MISMATCH)


def plan_split(
    clusters: list[tuple[np.ndarray, np.ndarray]],
    unit_id: int,
    bank: TemplateBank,
    inv_var: np.ndarray,
    max_shift: int,
    tolerance: float,
) -> tuple[np.ndarray | None, int, list[tuple[np.ndarray, int, int]]]:
    """From the clusters (median ``[W, K2]`` on the unit's wide channels, member mask) of one
    unit's recent spikes: (the unit's new template on its local channels, or None if nothing
    splits off; the members it stands for; [(new unit's template on ``local_channels(c)``, c,
    members)])."""
    if len(clusters) < 2:
        return None, 0, []
    i = bank.index[unit_id]
    home = int(bank.peak_channel[i])
    wide, local = bank.wide_channels(home), bank.local_channels(home)
    column = {ch: k for k, ch in enumerate(wide.tolist())}
    on_local = [m[:, [column[ch] for ch in local.tolist()]] for m, _ in clusters]
    current = bank.waves[i][local].T
    # the unit stays the cluster its template fits best (the one it was mostly made of)
    fits = [mismatch(m, local, current, local, inv_var, max_shift, 0.0, tolerance) for m in on_local]
    stay = int(np.argmin([f[0] if f is not None else np.inf for f in fits]))
    kept = on_local[stay]
    depth = -float(kept[bank.pre, 0])
    if depth <= 0:
        return None, 0, []
    kept_norm = kept / depth
    new: list[tuple[np.ndarray, int, int]] = []
    for n, (median, members) in enumerate(clusters):
        if n == stay:
            continue
        k = int(np.argmin(median[bank.pre]))
        channel = int(wide[k])
        if median[bank.pre, k] >= 0 or bank.distance_um(home, channel) > SPLIT_REACH_UM:
            continue  # its trough is elsewhere: discovery on that channel will find it
        if abs(int(np.argmin(median[:, k])) - bank.pre) > max_shift:
            continue  # not centred on its trough
        chans = bank.local_channels(channel)
        x = median[:, [column[ch] for ch in chans.tolist()]]
        if explains(mismatch(x, chans, kept_norm, local, inv_var, max_shift, depth, tolerance)):
            continue
        if any(
            explains(
                mismatch(
                    x,
                    chans,
                    t / -t[bank.pre, 0],
                    bank.local_channels(c),
                    inv_var,
                    max_shift,
                    -float(t[bank.pre, 0]),
                    tolerance,
                )
            )
            for t, c, _ in new
        ):
            continue
        if _explained_by_bank(x, channel, bank, i, inv_var, max_shift, tolerance):
            continue
        new.append((x, channel, int(members.sum())))
    if not new:
        return None, 0, []
    return kept, int(clusters[stay][1].sum()), new


def _explained_by_bank(
    x: np.ndarray, channel: int, bank: TemplateBank, skip: int, inv_var: np.ndarray, max_shift: int, tolerance: float
) -> bool:
    chans = bank.local_channels(channel)
    for j in range(bank.n):
        if (
            j == skip
            or not bank.active[j]
            or bank.distance_um(channel, int(bank.peak_channel[j])) > bank.candidate_radius_um
        ):
            continue
        theirs = bank.local_channels(int(bank.peak_channel[j]))
        if explains(
            mismatch(x, chans, bank.waves[j][theirs].T, theirs, inv_var, max_shift, float(bank.amp[j]), tolerance)
        ):
            return True
    return False
