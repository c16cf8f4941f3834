"""Merging units that online discovery found twice.

A unit can be created from a cluster that is not yet a clean unit (a few tens of spikes, some
overlapped by another unit's); its template then follows the spikes it is given (adaptation) and
may converge on a unit that already exists. From then on the two share that unit's spikes, and
neither is well detected. So, in each discovery round, the templates of active units peaking on
the same channel are compared pairwise; if one explains the other in the sense of
``splitting.explains`` (fitted with its amplitude within tolerance, it leaves less than a
quarter of a noise variance per value, or 3 % of the energy), the unit with fewer matched spikes
is retired into the other (``TemplateBank.retire``): its past spikes keep its id, its future ones
go to the other. Units that one split check parted are not merged on their templates again.

A split check, or a cluster of a unit's own poorly fitted spikes promoted as a new unit, can also
cut one neuron in two; then the two units share its spikes for good (over 300 s runs, a 95 Hz
simple-spike unit fell from 0.86 to 0.48 of its spikes right). A neuron does not fire again
within its refractory period, while two neurons' spikes fall that close at chance. So units on
nearby channels with similar shapes (a looser test than the above) whose recent spikes have almost
no pairs ``REFRACTORY_FROM_MS`` to ``REFRACTORY_MS`` apart - far fewer than chance predicts over
the time both trains cover - are merged, parted or not (the cross-correlogram test of offline
curation). Shorter lags are left out: there, any two units on nearby channels lose pairs, as
overlapping spikes are detected and assigned less often (with them, two mossy fibre units were
merged). A Purkinje cell's complex spikes pause its simple spikes and, within the match window,
look much like them; the smaller unit must have ``MIN_SPIKE_RATIO`` of the other's spikes, which
~1 Hz complex spikes against 50-160 Hz simple spikes do not.
"""

from __future__ import annotations

from collections import deque
from itertools import combinations

import numpy as np

from rtclass.discovery.splitting import explains, mismatch
from rtclass.matching.templates import TemplateBank

#: lags (ms) at which two units that are one neuron have (almost) no spike pairs: its refractory
#: period. Pairs closer than REFRACTORY_FROM_MS are rare for any two units on nearby channels
#: (overlapping spikes are detected and assigned less often), so they tell nothing
REFRACTORY_FROM_MS = 0.8
REFRACTORY_MS = 2.0
#: one neuron: fewer pairs at those lags than this fraction of what chance predicts ...
REFRACTORY_FRACTION = 0.2
#: ... when chance predicts at least this many (else the test cannot tell)
MIN_EXPECTED_PAIRS = 20.0
#: ... and when the smaller unit fired at least this fraction of the larger's spikes: a Purkinje
#: cell's complex spikes (~1 Hz) are followed by a pause of its simple spikes (~50-160 Hz), which
#: the test would take for one neuron
MIN_SPIKE_RATIO = 0.05
#: similar shapes for the refractory test: the smaller unit's template, fitted by the larger's,
#: leaves less than this fraction of its energy (``explains`` asks for 3 %)
SIMILAR_RELATIVE_MISMATCH = 0.25
#: recent spikes kept per unit for the test (20 s of a 100 Hz unit)
TRAIN_SPIKES = 2000
#: discovery rounds between two refractory tests: comparing the shapes of every nearby pair took
#: ~6 ms a round with 32 units (9 % of a discovery run's time), and the test needs seconds of
#: spikes anyway
REFRACTORY_TEST_ROUNDS = 10


class RecentTrains:
    """Each unit's latest ``TRAIN_SPIKES`` spike samples, in time order, for the refractory
    test. ``add`` runs on the hot path (a few spikes per chunk); ``train`` may be called from
    another thread (a deque's copy is atomic)."""

    def __init__(self, capacity: int = TRAIN_SPIKES):
        self.capacity = capacity
        self._trains: dict[int, deque] = {}

    def add(self, samples: np.ndarray, units: np.ndarray) -> None:
        """Decided spikes in sample order (unit -1: unassigned, skipped)."""
        trains = self._trains
        for sample, uid in zip(samples.tolist(), units.tolist()):
            if uid < 0:
                continue
            train = trains.get(uid)
            if train is None:
                train = trains[uid] = deque(maxlen=self.capacity)
            train.append(sample)

    def train(self, uid: int) -> np.ndarray:
        kept = self._trains.get(uid)
        return np.array(kept.copy() if kept is not None else (), np.int64)

    def forget(self, uid: int) -> None:
        self._trains.pop(uid, None)


def pairs_at_lags(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> int:
    """Pairs of sorted spike samples, one of ``a`` and one of ``b``, ``lo`` to ``hi`` samples apart
    (either order)."""

    def within(d: int) -> np.ndarray:
        return np.searchsorted(b, a + d, "right") - np.searchsorted(b, a - d, "left")

    return int((within(hi) - within(lo - 1)).sum()) if lo > 0 else int(within(hi).sum())


def one_neuron(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> bool:
    """Spike trains ``a`` and ``b`` (sorted samples) are one neuron's: over the time both cover,
    they have far fewer pairs ``lo`` to ``hi`` samples apart than two independent trains would,
    and the smaller has at least ``MIN_SPIKE_RATIO`` of the larger's spikes."""
    if a.size == 0 or b.size == 0:
        return False
    first, last = max(a[0], b[0]), min(a[-1], b[-1])
    if last <= first:
        return False
    a = a[(a >= first) & (a <= last)]
    b = b[(b >= first) & (b <= last)]
    if min(a.size, b.size) < MIN_SPIKE_RATIO * max(a.size, b.size):
        return False
    expected = a.size * b.size * 2 * (hi - lo + 1) / (last - first + 1)
    return expected >= MIN_EXPECTED_PAIRS and pairs_at_lags(a, b, lo, hi) < REFRACTORY_FRACTION * expected


def smaller_fitted_by_larger(
    bank: TemplateBank, i: int, j: int, inv_var: np.ndarray, max_shift: int, tolerance: float
) -> tuple[int, int, tuple[float, float] | None]:
    """Of active units ``i`` and ``j`` (bank indices): (the one with fewer matched spikes, the
    other, what the other's template leaves of the first's ``splitting.mismatch``), each template
    on the channels around its own peak channel."""
    keep, drop = (i, j) if bank.matched[i] >= bank.matched[j] else (j, i)
    dc, kc = bank.local_channels(int(bank.peak_channel[drop])), bank.local_channels(int(bank.peak_channel[keep]))
    found = mismatch(
        bank.waves[drop][dc].T * bank.amp[drop],
        dc,
        bank.waves[keep][kc].T,
        kc,
        inv_var,
        max_shift,
        float(bank.amp[keep]),
        tolerance,
    )
    return drop, keep, found


def similar_pairs(
    bank: TemplateBank, inv_var: np.ndarray, max_shift: int, tolerance: float, reach_um: float, exclude: set[int]
) -> list[tuple[int, int]]:
    """(unit id with fewer matched spikes, the other) for pairs of active units peaking within
    ``reach_um`` of each other whose shapes are similar (the first's template, fitted by the
    other's, leaves less than ``SIMILAR_RELATIVE_MISMATCH`` of its energy): the candidates of the
    refractory test. Units in ``exclude`` are left out."""
    active = [
        i for i in np.flatnonzero(bank.active[: bank.n]).tolist() if bank.amp[i] > 0 and int(bank.ids[i]) not in exclude
    ]
    out = []
    for x, i in enumerate(active):
        for j in active[x + 1 :]:
            ci, cj = int(bank.peak_channel[i]), int(bank.peak_channel[j])
            if ci != cj and bank.distance_um(ci, cj) > reach_um:
                continue
            drop, keep, found = smaller_fitted_by_larger(bank, i, j, inv_var, max_shift, tolerance)
            if found is not None and found[1] < SIMILAR_RELATIVE_MISMATCH:
                out.append((int(bank.ids[drop]), int(bank.ids[keep])))
    return out


def refractory_merges(
    candidates: list[tuple[int, int]], trains: RecentTrains, lo: int, hi: int
) -> list[tuple[int, int]]:
    """The candidate pairs (drop, keep) whose recent spikes respect one refractory period
    (``one_neuron`` at lags ``lo`` .. ``hi`` samples), each unit in one pair at most."""
    out, taken = [], set()
    for drop, keep in candidates:
        if drop in taken or keep in taken:
            continue
        if one_neuron(trains.train(drop), trains.train(keep), lo, hi):
            out.append((drop, keep))
            taken.update((drop, keep))
    return out


def duplicates(
    bank: TemplateBank, inv_var: np.ndarray, max_shift: int, tolerance: float, parted: set[frozenset[int]]
) -> list[tuple[int, int]]:
    """(retired unit id, kept unit id) for each pair of active units on one peak channel whose
    templates explain each other, each unit in one pair at most; ``parted``: unit-id pairs a split
    separated."""
    on_channel: dict[int, list[int]] = {}
    for i in np.flatnonzero(bank.active[: bank.n]).tolist():
        on_channel.setdefault(int(bank.peak_channel[i]), []).append(i)
    out, taken = [], set()
    for _channel, members in on_channel.items():
        if len(members) < 2:
            continue
        for i, j in combinations(members, 2):
            a, b = int(bank.ids[i]), int(bank.ids[j])
            if a == b or a in taken or b in taken or frozenset((a, b)) in parted:
                continue
            if bank.amp[i] <= 0 or bank.amp[j] <= 0:
                continue  # an arbitrary-scale template whose amplitude is not learnt yet
            drop, keep, found = smaller_fitted_by_larger(bank, i, j, inv_var, max_shift, tolerance)
            if explains(found):
                out.append((int(bank.ids[drop]), int(bank.ids[keep])))
                taken.update((a, b))
    return out
