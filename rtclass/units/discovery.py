"""Online template discovery, for runs without a prior sort.

Snippets of the detected spikes that no template explains are kept per *zone* (the channel the
spike peaked on), the most recent ``discovery_max_snippets`` of each. Every
``discovery_interval_s`` of data, the zones with the most new snippets (at most
``discovery_zones_per_round``) are clustered: the snippets (``width`` samples on the zone's
channels) are reduced by PCA and split by ISO-SPLIT (``isosplit6``, the clustering of
MountainSort 5: it needs no cluster count and no density parameter). Each cluster with at least
``discovery_min_spikes`` members whose median waveform has its trough on the zone channel becomes
a template, unless it resembles an existing template (normalised correlation >=
``merge_similarity`` over small shifts): then it is the same unit seen from a neighbouring
channel, and nothing is added. The members leave the zone's store. From then on the matcher
assigns that unit's spikes; a unit id, once given, never changes.

What a user gives up against a full offline sort: units are found only after tens of their
spikes were seen (seconds for most, longer for sparse units such as complex spikes); no
re-splitting or merging of units once created; overlapping spikes within the exclusion window are
seen as one; clusters are formed per zone, so a unit whose spikes peak on several channels is
found once per zone and deduplicated by template similarity, not by a global model.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from rtclass.config import UnitsConfig
from rtclass.units.templates import TemplateBank


class OnlineDiscovery:
    def __init__(self, cfg: UnitsConfig, bank: TemplateBank, sample_rate_hz: float):
        self.cfg = cfg
        self.bank = bank
        self.interval = max(1, int(round(cfg.discovery_interval_s * sample_rate_hz)))
        self.store: dict[int, deque] = {}
        self.new: dict[int, int] = {}
        self.next_round: int | None = None
        self.rounds = 0
        self.promoted = 0

    def add(self, snippets: list[tuple[int, int, np.ndarray]]) -> None:
        for sample, channel, snip in snippets:
            zone = self.store.get(channel)
            if zone is None:
                zone = self.store[channel] = deque(maxlen=self.cfg.discovery_max_snippets)
            zone.append(snip)
            self.new[channel] = self.new.get(channel, 0) + 1

    def maybe_run(self, end_sample: int) -> list[int]:
        """Cluster if a round is due at ``end_sample`` (data time); returns new unit ids."""
        if self.next_round is None:
            self.next_round = end_sample + self.interval
            return []
        if end_sample < self.next_round:
            return []
        self.next_round += self.interval * max(1, (end_sample - self.next_round) // self.interval + 1)
        return self.run_round()

    def run_round(self) -> list[int]:
        self.rounds += 1
        due = sorted((n, c) for c, n in self.new.items() if n >= self.cfg.discovery_min_spikes)
        added = []
        for _, channel in reversed(due[-self.cfg.discovery_zones_per_round :]):
            added += self._cluster_zone(channel)
            self.new[channel] = 0
        return added

    def _same_amplitude(self, a: float, b: float) -> bool:
        """Two similar shapes are one unit only if their amplitudes agree within the matcher's
        tolerance (neighbouring units often share a shape but not a size)."""
        tol = self.cfg.amplitude_tolerance
        return b > 0 and (1 - tol) * b <= a <= (1 + tol) * b

    def _cluster_zone(self, channel: int) -> list[int]:
        from isosplit6 import isosplit6

        zone = self.store[channel]
        snips = np.stack(list(zone))  # [n, W, K]
        n = snips.shape[0]
        flat = snips.reshape(n, -1).astype(np.float64)
        centred = flat - flat.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        features = centred @ vt[: self.cfg.pca_components].T
        labels = isosplit6(np.ascontiguousarray(features))
        added, used = [], np.zeros(n, bool)
        bank = self.bank
        for label in np.unique(labels):
            members = labels == label
            if members.sum() < self.cfg.discovery_min_spikes:
                continue
            template = np.median(snips[members], axis=0)  # [W, K], channel 0 = the zone channel
            trough = template[bank.pre]
            if trough[0] >= 0 or trough[0] > trough.min():
                continue  # its trough is elsewhere: another zone will find it
            used |= members
            sim, other = bank.similarity(template, channel, self.cfg.max_shift_samples)
            depth = -float(trough[0])
            if sim >= self.cfg.merge_similarity and self._same_amplitude(depth, float(bank.amp[other])):
                continue
            added.append(bank.add(template, channel, weight=int(members.sum())))
            self.promoted += 1
        if used.any():
            self.store[channel] = deque((s for s, u in zip(zone, used) if not u), maxlen=zone.maxlen)
        return added
