"""Online template discovery, for runs without a prior sort.

Snippets of the detected spikes that no template explains are kept per *zone* (the channel the
spike peaked on), the most recent ``discovery_max_snippets`` of each. Every
``discovery_interval_s`` of data, the zones with the most new snippets (at least
``discovery_min_new``; at most ``discovery_zones_per_round`` zones) are clustered: the snippets
(``width`` samples on the zone's channels) are reduced by PCA and split by ISO-SPLIT (``isosplit6``,
the clustering of MountainSort 5: it needs no cluster count and no density parameter). Each cluster
with at least ``discovery_min_spikes`` members (``discovery_min_spikes_large`` if its trough is
``discovery_large_snr`` noise SDs deep: large units are found sooner) whose median waveform has its
trough on the zone channel becomes a template, unless a known template explains it
(``TemplateBank.same_unit``: the same shape on the channels both cover and the same fitted
amplitude; a template merged into another unit counts too, as the unit it went into): then it
is that unit seen again, and nothing is added. The members leave the zone's
store. From then on the matcher assigns that unit's spikes; a unit id, once given, never changes.
In the same rounds, one unit at a time has its recent assigned spikes clustered again, and any
other unit hidden in it is split off (``splitting``); and units whose templates have converged on
one unit, or of similar shapes whose spikes respect one refractory period, are merged
(``merging``: the one with fewer spikes is retired, its id not reused). A discovered unit's
template shape follows its first ``discovery_shape_spikes`` spikes, then only its amplitude is
learnt.

What a user gives up against a full offline sort: units are found only after tens of their
spikes were seen (seconds for most, longer for sparse units such as complex spikes), and the
spikes before are unassigned; a unit that held two is split only once both have tens of spikes,
and a unit found twice is merged only once both templates have converged; overlapping spikes
within the exclusion window are seen as one; clusters are formed per zone and per unit, not by a
global model.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from rtclass.config import DiscoveryConfig, MatchingConfig
from rtclass.discovery.clustering import cluster_snippets
from rtclass.discovery.merging import (
    REFRACTORY_FROM_MS,
    REFRACTORY_MS,
    REFRACTORY_TEST_ROUNDS,
    RecentTrains,
    duplicates,
    refractory_merges,
    similar_pairs,
)
from rtclass.discovery.splitting import plan_split
from rtclass.discovery.worker import ClusteringFailed, ClusteringProcess
from rtclass.matching.matcher import AssignedSnippet, MatchResult, UnexplainedSnippet, channel_weights
from rtclass.matching.templates import TemplateBank, same_shape_and_size
from rtclass.stage import Stage, ms_to_samples

log = logging.getLogger("rtclass.discovery")


def centred_on_zone(template: np.ndarray, pre: int) -> bool:
    """A zone's cluster (channel 0 = the zone channel) is the zone's to promote only if its
    trough is there; otherwise another zone will find it."""
    trough = template[pre]
    return bool(trough[0] < 0 and trough[0] <= trough.min())


def _similar(
    a: np.ndarray, ca: int, b: np.ndarray, cb: int, bank: TemplateBank, cfg: DiscoveryConfig, matching: MatchingConfig
) -> bool:
    """Two new clusters (medians on their zones' channels, uV) are one unit: close zones, and ``b``
    seen as a template explains ``a`` as ``TemplateBank.same_unit`` would (same shape on the
    channels both cover, ``a`` fitted on ``b``'s zone channel as deep as ``b``)."""
    if ca != cb and bank.distance_um(ca, cb) > matching.candidate_radius_um:
        return False
    depth_b = -float(b[bank.pre, 0])
    chans_b = bank.local_channels(cb)
    dense = np.zeros((bank.probe.n_channels, bank.width), np.float32)
    dense[chans_b] = (b / depth_b).T
    return same_shape_and_size(
        a,
        bank.local_channels(ca),
        dense,
        chans_b,
        depth_b,
        matching.max_shift_samples,
        cfg.merge_similarity,
        matching.amplitude_tolerance,
    )


#: a unit's recent assigned snippets kept for its split check (enough for ISO-SPLIT to part two
#: units of 0.97 shape correlation; the check's cost grows with it)
SPLIT_SNIPPETS = 500


@dataclass(frozen=True)
class DiscoveryResult:
    """What one ``OnlineDiscovery.process`` call changed."""

    #: ids of the units that became known (promoted or split off) in this call
    new_unit_ids: list[int]


#: a promoted unit's earlier spikes, published unassigned: (unit id, the zone channel they peaked
#: on, their samples)
EarlierSpikes = tuple[int, int, np.ndarray]


def with_earlier_spikes(spikes: np.ndarray, earlier: list[EarlierSpikes]) -> np.ndarray:
    """``spikes`` (records with sample, channel and unit) with the unassigned ones that a unit was
    later found from given that unit: the output files' view (the live stream published them
    unassigned). Returns a copy if any changed."""
    if not earlier or spikes.size == 0:
        return spikes
    out = spikes.copy()
    for uid, channel, samples in earlier:
        hit = (out["unit"] < 0) & (out["channel"] == channel) & np.isin(out["sample"], samples)
        out["unit"][hit] = uid
    return out


class OnlineDiscovery(Stage):
    """Keeps unexplained snippets and turns clusters of them into units.

    With ``threaded`` (live runs), a round hands the due zones' snippets to a background thread
    and goes on; its clusters are turned into units at a later block, so the hot path never waits
    for a clustering (tens to hundreds of ms). The thread has PCA + ISO-SPLIT run in a separate,
    lower-priority process (``clustering_process``, started at the first round): ISO-SPLIT holds
    the GIL, and in a thread it stalled the hot path by up to tens of ms. Without ``threaded``
    (offline, tests), rounds run in place and the result depends only on the data.
    """

    def __init__(
        self,
        cfg: DiscoveryConfig,
        matching: MatchingConfig,
        bank: TemplateBank,
        sample_rate_hz: float,
        threaded: bool = False,
    ):
        self.cfg = cfg
        self.matching = matching
        self.bank = bank
        self.interval = max(1, int(round(cfg.interval_s * sample_rate_hz)))
        self.store: dict[int, deque] = {}  # zone channel -> (serial, snippet, sample) of unexplained spikes
        #: each promoted unit's earlier spikes (the cluster it was found from), published unassigned:
        #: the output files give them the unit (``with_earlier_spikes``)
        self.earlier: list[EarlierSpikes] = []
        self.new: dict[int, int] = {}
        # each unit's recently assigned snippets (on its wide channels), for split checks
        self.unit_store: dict[int, deque] = {}
        self.unit_new: dict[int, int] = {}
        self.unit_checked: dict[int, int] = {}  # round of the unit's last split check
        #: unit id -> snippets its next split check still wants (the matcher copies only those);
        #: shared with the matcher, updated here on the hot path's thread
        self.wanted: dict[int, int] = {}
        self.next_round: int | None = None
        self.rounds = 0
        self.promoted = 0
        self.splits = 0  # units created by splitting another
        self.merges = 0  # units retired into another (``merging``)
        self._parted: set[frozenset[int]] = set()  # unit-id pairs a split separated: never merged
        self._serial = 0
        self._inv_var = np.ones(bank.probe.n_channels, np.float32)
        self._split_snippets = min(cfg.max_snippets, SPLIT_SNIPPETS)
        #: each unit's latest spikes, for the refractory test of units with similar shapes
        self.trains = RecentTrains()
        self._refractory_lags = (
            ms_to_samples(REFRACTORY_FROM_MS, sample_rate_hz),
            ms_to_samples(REFRACTORY_MS, sample_rate_hz),
        )
        #: the fewest members any cluster may have (large units' clusters)
        self._min_members = min(cfg.min_spikes, cfg.min_spikes_large)
        self.threaded = threaded
        self._job: threading.Thread | None = None
        self._results: list | None = None
        self._process: ClusteringProcess | None = ClusteringProcess(cfg.clustering_niceness) if threaded else None
        self.failed_rounds = 0  # rounds lost to a failed clustering process (live runs)
        #: rounds that came due while the previous one was still clustering (live runs): discovery
        #: is falling behind the data (a loaded machine)
        self.skipped_rounds = 0
        self.last_error = ""

    @property
    def clustering_cpu_s(self) -> float:
        """CPU seconds the clustering process(es) have used (live runs; 0 in place)."""
        return self._process.cpu_s if self._process is not None else 0.0

    def process(self, match: MatchResult, end_sample: int, noise_sd: np.ndarray | None) -> DiscoveryResult:
        """One block's matching result in: its unexplained snippets join their zones' stores, its
        assigned snippets their units' split stores, its decided spikes the refractory test's
        trains; then a round runs (or, threaded, starts) if one is due at ``end_sample``."""
        if match.unexplained:
            self.add(match.unexplained)
        if match.assigned:
            self.add_assigned(match.assigned)
        if match.spikes.size:
            self.add_spikes(match.spikes["sample"], match.spikes["unit"])
        return DiscoveryResult(self.maybe_run(end_sample, noise_sd))

    def next_round_sample(self, from_sample: int) -> int:
        """The data sample at which the next round is due. The schedule starts ``interval``
        samples after the first sample it is asked about (the stream's first): a chain that cuts
        its blocks there runs every round on the same spikes whatever the chunking."""
        if self.next_round is None:
            self.next_round = from_sample + self.interval
        return self.next_round

    def add(self, snippets: list[UnexplainedSnippet]) -> None:
        """Unexplained spikes: (sample, channel, snippet on ``local_channels(channel)``)."""
        for sample, channel, snip in snippets:
            zone = self.store.get(channel)
            if zone is None:
                zone = self.store[channel] = deque(maxlen=self.cfg.max_snippets)
            self._serial += 1
            zone.append((self._serial, snip, sample))
            self.new[channel] = self.new.get(channel, 0) + 1

    def add_spikes(self, samples: np.ndarray, units: np.ndarray) -> None:
        """Decided spikes, in sample order (unit -1: unassigned), for the refractory test."""
        self.trains.add(samples, units)

    def add_assigned(self, snippets: list[AssignedSnippet]) -> None:
        """Assigned spikes: (unit id, snippet on ``wide_channels`` of the unit's peak channel)."""
        for uid, snip in snippets:
            kept = self.unit_store.get(uid)
            if kept is None:
                kept = self.unit_store[uid] = deque(maxlen=self._split_snippets)
            kept.append(snip)
            self.unit_new[uid] = self.unit_new.get(uid, 0) + 1

    def maybe_run(self, end_sample: int, noise_sd: np.ndarray | None = None) -> list[int]:
        """Start (or, unthreaded, run) a round if one is due at ``end_sample`` (data time), and
        turn finished clusters into units; returns new unit ids. ``noise_sd``: the channels'
        noise levels (uV), which weigh the comparison of a split-off cluster with templates."""
        added = self._collect() if self.threaded else []
        if self.next_round is None:
            self.next_round = end_sample + self.interval
            return added
        if end_sample < self.next_round:
            return added
        self.next_round += self.interval * max(1, (end_sample - self.next_round) // self.interval + 1)
        if noise_sd is not None:
            self._inv_var = channel_weights(noise_sd)
        if self.threaded:
            if self._job is None:
                self._start_round()
            else:
                self.skipped_rounds += 1
                if self.skipped_rounds == 1:
                    log.warning(
                        "discovery is falling behind the data: a round came due while the last one was still "
                        "clustering (the machine's cores are busy); units will be found later"
                    )
            return added
        return self._promote(self._cluster(self._due()))

    def _due(self) -> list[tuple[str, int, list]]:
        """The round's jobs, as shallow copies (cheap on the hot path; the stacking happens in
        ``_cluster``): ("zone", channel, its (id, snippet) pairs) for the zones with the most new
        snippets, and ("unit", id, its snippets) for the units whose split checks are most overdue
        (``split_checks_per_round``, among those with ``discovery_min_spikes`` new spikes and twice
        that kept)."""
        self.rounds += 1
        c = self.cfg
        due = sorted(
            (n, ch) for ch, n in self.new.items() if n >= c.min_new and len(self.store[ch]) >= self._min_members
        )
        out = []
        for _, channel in reversed(due[-c.zones_per_round :]):
            out.append(("zone", channel, list(self.store[channel])))
            self.new[channel] = 0
        if c.split_units:
            ready = sorted(
                (self.unit_checked.get(uid, -1), uid)
                for uid, n in self.unit_new.items()
                if n >= c.min_spikes and len(self.unit_store[uid]) >= 2 * c.min_spikes
            )
            for _, uid in ready[: c.split_checks_per_round]:
                out.append(("unit", uid, list(self.unit_store[uid])))
                self.unit_new[uid] = 0
                self.unit_checked[uid] = self.rounds
                self.wanted[uid] = self._split_snippets  # a fresh store by its next check, at most
        return out

    def _cluster(self, due) -> list[tuple]:
        """Each job's outcome: for a zone, its clusters centred on it, each marked new or a
        duplicate of a known template (checked against the bank as it is now and against this
        round's earlier new clusters), with the ids of the snippets they used; for a unit, its
        split plan (``splitting.plan_split``)."""
        c, bank = self.cfg, self.bank
        stacks = [np.stack([item[1] if kind == "zone" else item for item in items]) for kind, _, items in due]
        if not stacks:
            found = []
        elif self._process is not None:
            found = self._process.run(stacks, c.pca_components, self._min_members, bank.pre)
        else:
            found = [cluster_snippets(z, c.pca_components, self._min_members, bank.pre) for z in stacks]
        out, accepted = [], []
        for (kind, key, items), job_clusters in zip(due, found):
            if kind == "unit":
                if key in bank.index and bank.active[bank.index[key]]:
                    job_clusters = [(t, m) for t, m in job_clusters if m.sum() >= c.min_spikes]
                    out.append(
                        (
                            "unit",
                            key,
                            plan_split(
                                job_clusters,
                                key,
                                bank,
                                self._inv_var,
                                self.matching.max_shift_samples,
                                self.matching.amplitude_tolerance,
                            ),
                        )
                    )
                continue
            ch, ids = key, [item[0] for item in items]
            samples = np.array([item[2] for item in items], np.int64)
            clusters, used = [], set()
            for template, members in job_clusters:
                if not centred_on_zone(template, bank.pre) or not self._enough(template, ch, int(members.sum())):
                    continue
                known = bank.same_unit(
                    template, ch, self.matching.max_shift_samples, c.merge_similarity, self.matching.amplitude_tolerance
                )
                known = known or any(_similar(template, ch, t, tc, bank, c, self.matching) for t, tc in accepted)
                if not known:
                    accepted.append((template, ch))
                clusters.append((template, int(members.sum()), not known, samples[members]))
                used.update(i for i, m in zip(ids, members.tolist()) if m)
            out.append(("zone", ch, (used, clusters)))
        merges = duplicates(
            bank, self._inv_var, self.matching.max_shift_samples, self.matching.amplitude_tolerance, set(self._parted)
        )
        out.extend(("merge", drop, keep) for drop, keep in merges)
        if self.rounds % REFRACTORY_TEST_ROUNDS == 1:  # the first round, and every REFRACTORY_TEST_ROUNDS
            # units of similar shapes whose spikes respect one refractory period are one neuron
            taken = {u for pair in merges for u in pair}
            similar = similar_pairs(
                bank,
                self._inv_var,
                self.matching.max_shift_samples,
                self.matching.amplitude_tolerance,
                self.matching.candidate_radius_um,
                taken,
            )
            out.extend(
                ("merge", drop, keep) for drop, keep in refractory_merges(similar, self.trains, *self._refractory_lags)
            )
        return out

    def _enough(self, template: np.ndarray, channel: int, n_members: int) -> bool:
        """A zone cluster has members enough to become a unit: ``discovery_min_spikes``, or
        ``discovery_min_spikes_large`` if its trough on the zone channel is at least
        ``discovery_large_snr`` noise SDs deep."""
        c = self.cfg
        if n_members >= c.min_spikes:
            return True
        snr = -float(template[self.bank.pre, 0]) * float(np.sqrt(self._inv_var[channel]))
        return n_members >= c.min_spikes_large and snr >= c.large_snr

    def _start_round(self) -> None:
        due = self._due()

        def work():
            try:
                self._results = self._cluster(due)
            except ClusteringFailed as exc:  # the process died: the next round starts a new one
                self.failed_rounds += 1
                self.last_error = str(exc)

        self._job = threading.Thread(target=work, name="rtclass-discovery", daemon=True)
        self._job.start()

    def _collect(self) -> list[int]:
        if self._job is None or self._job.is_alive():
            return []
        self._job = None
        results, self._results = self._results or [], None
        return self._promote(results)

    def _promote(self, results) -> list[int]:
        """Zone clusters -> units (unless a known template of the same size already explains
        them; their snippets leave the store); split plans -> the unit's template reset to the
        cluster it stands for, new units for the others (the unit's kept snippets are dropped:
        its next check sees spikes assigned after the split)."""
        bank, added = self.bank, []
        # a merge was judged on the templates before this batch's splits: not for units just split
        split_now = {key for kind, key, outcome in results if kind == "unit" and outcome[0] is not None}
        for kind, key, outcome in results:
            if kind == "merge":
                if (
                    key not in split_now
                    and outcome not in split_now
                    and bank.active[bank.index[key]]
                    and bank.active[bank.index[outcome]]
                ):
                    bank.retire(key, outcome)
                    self.merges += 1
                    # what key was parted from, the unit it went into is parted from too
                    self._parted.update(
                        frozenset((outcome, other))
                        for pair in list(self._parted)
                        if key in pair
                        for other in pair - {key}
                        if other != outcome
                    )
                    self.unit_store.pop(key, None)
                    self.unit_new.pop(key, None)
                    self.wanted.pop(key, None)
                    self.trains.forget(key)
                continue
            if kind == "unit":
                kept, n_kept, new = outcome
                if kept is None:
                    continue
                bank.replace(key, kept, n_kept)
                parted = [key]
                for template, channel, n_members in new:
                    parted.append(bank.add(template, channel, weight=n_members))
                    self.splits += 1
                added.extend(parted[1:])
                self._parted.update(frozenset((a, b)) for i, a in enumerate(parted) for b in parted[i + 1 :])
                self.wanted[key] = self._split_snippets
                self.unit_store[key].clear()
                continue
            used, clusters = outcome
            for template, n_members, new, member_samples in clusters:
                if new:
                    uid = bank.add(template, key, weight=n_members)
                    added.append(uid)
                    self.earlier.append((uid, key, member_samples))
                    self.promoted += 1
            if used:
                zone = self.store[key]
                self.store[key] = deque((item for item in zone if item[0] not in used), maxlen=zone.maxlen)
        for uid in added:
            self.wanted[uid] = self._split_snippets
        return added

    def close(self) -> None:
        if self._job is not None:
            self._job.join(timeout=10)
        if self._process is not None:
            self._process.close()
