"""Merging units that online discovery found twice.

A unit can be created from a cluster that is not yet a clean unit (a few tens of spikes, some
overlapped by another unit's); its template then follows the spikes it is given (adaptation) and
may converge on a unit that already exists. From then on the two share that unit's spikes, and
neither is well detected. So, in each discovery round, the templates of active units peaking on
the same channel are compared pairwise; if one explains the other in the sense of
``splitting.explains`` (fitted with its amplitude within tolerance, it leaves less than a
quarter of a noise variance per value, or 3 % of the energy), the unit with fewer matched spikes
is retired into the other (``TemplateBank.retire``): its past spikes keep its id, its future ones
go to the other. Units that one split check parted are never merged again.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from rtclass.units.splitting import explains, mismatch
from rtclass.units.templates import TemplateBank


def duplicates(bank: TemplateBank, inv_var: np.ndarray, max_shift: int, tolerance: float,
               parted: set[frozenset[int]]) -> list[tuple[int, int]]:
    """(retired unit id, kept unit id) for each pair of active units on one peak channel whose
    templates explain each other, each unit in one pair at most; ``parted``: unit-id pairs a split
    separated."""
    on_channel: dict[int, list[int]] = {}
    for i in np.flatnonzero(bank.active[: bank.n]).tolist():
        on_channel.setdefault(int(bank.peak_channel[i]), []).append(i)
    out, taken = [], set()
    for channel, members in on_channel.items():
        if len(members) < 2:
            continue
        local = bank.local_channels(channel)
        for i, j in combinations(members, 2):
            a, b = int(bank.ids[i]), int(bank.ids[j])
            if a == b or a in taken or b in taken or frozenset((a, b)) in parted:
                continue
            if bank.amp[i] <= 0 or bank.amp[j] <= 0:
                continue  # an arbitrary-scale template whose amplitude is not learnt yet
            keep, drop = (i, j) if bank.matched[i] >= bank.matched[j] else (j, i)
            x = bank.waves[drop][local].T * bank.amp[drop]
            found = mismatch(x, local, bank.waves[keep][local].T, local, inv_var, max_shift, float(bank.amp[keep]),
                             tolerance)
            if explains(found):
                out.append((int(bank.ids[drop]), int(bank.ids[keep])))
                taken.update((a, b))
    return out
