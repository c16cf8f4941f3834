"""Unit templates: what the matcher compares detected spikes against.

A ``TemplateBank`` holds, per unit, a short waveform (``pre`` samples before the trough,
``width`` in all) on every channel, non-zero on its *support* (the channels around its peak
channel), scaled so that the trough on the peak channel is -1 (a fitted amplitude is then the
spike's trough depth in uV). The matcher fits each candidate on its own support, whichever
channel the spike was detected on. Templates come from a
prior Kilosort/phy sort (``from_phy_folder``), from the simulator's ground truth, or from online
discovery; the bank grows, and a unit's id never changes.

Kilosort/phy facts used: ``templates.npy`` is ``(n_templates, n_time, n_channels)`` in whitened
space; ``whitening_mat_inv.npy`` (n_channels x n_channels) unwhitens it (``template @ W_inv``);
``channel_map.npy`` gives the stream channel of each template channel; templates map to cluster
ids through ``spike_templates.npy`` and ``spike_clusters.npy`` (the cluster most of a template's
spikes ended in, as phy curation may have merged or split them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import sosfilt

from rtclass.errors import InputError
from rtclass.matching.kernels import MIN_AMPLITUDE_OBSERVATIONS
from rtclass.probe import Probe

#: templates the bank reserves room for before it grows
INITIAL_CAPACITY = 64
#: a unit's *wide* neighbourhood reaches this far beyond its support: a unit split off it may
#: peak up to this far from its peak channel and still have its whole support in view
SPLIT_REACH_UM = 40.0
#: the largest unit id (the per-unit state is indexed through an array of this many entries at most)
MAX_UNIT_ID = (1 << 22) - 1


class TemplateBank:
    """Growable arrays of unit templates, plus per-channel candidate lists for the matcher."""

    def __init__(
        self, probe: Probe, width: int, pre: int, match_radius_um: float, candidate_radius_um: float, long_post: int = 0
    ):
        """``long_post``: samples after the trough of each unit's *long* template (0: none), which
        the matcher learns from the spikes it assigns and subtracts from later, overlapping ones."""
        self.probe = probe
        self.width = width
        self.pre = pre
        self.long_post = long_post
        self._dist = probe.distances_um()
        self.local = probe.neighbours(match_radius_um)  # [C, K] channels around each channel
        #: [C, C] channels whose neighbourhoods can share a channel: a unit peaking on one can have
        #: support among the channels around the other (the matcher skips the rest)
        self.overlap = self._dist <= 2.0 * match_radius_um
        self.k = self.local.shape[1]
        self._local_lists = [row[row >= 0] for row in self.local]
        wide = probe.neighbours(match_radius_um + SPLIT_REACH_UM)
        self._wide_lists = [row[row >= 0] for row in wide]
        for row in self._local_lists + self._wide_lists:
            row.flags.writeable = False
        self.index: dict[int, int] = {}  # unit id -> bank index
        self.candidate_radius_um = candidate_radius_um
        n_ch = probe.n_channels
        self.n = 0
        self.ids = np.zeros(INITIAL_CAPACITY, np.int32)
        self.peak_channel = np.zeros(INITIAL_CAPACITY, np.int32)
        self.channels = np.full((INITIAL_CAPACITY, self.k), -1, np.int32)  # support, peak channel first
        # channel-major [U, C, W]: a template's trace on each channel is contiguous, so the
        # matcher reads the channels around a spike as one short run of memory
        self.waves = np.zeros((INITIAL_CAPACITY, n_ch, width), np.float32)
        # long templates [U, C, pre + long_post] (trough at pre, -1 deep like waves) and the spikes
        # they were learnt from
        self.long_waves = np.zeros((INITIAL_CAPACITY, n_ch, pre + long_post if long_post else 0), np.float32)
        self.long_n = np.zeros(INITIAL_CAPACITY, np.int64)
        self.norm2 = np.zeros(INITIAL_CAPACITY, np.float32)
        self.amp = np.zeros(INITIAL_CAPACITY, np.float32)  # typical trough depth (uV) of the unit's spikes
        self.amp_n = np.zeros(INITIAL_CAPACITY, np.int64)  # observations behind amp
        self.matched = np.zeros(INITIAL_CAPACITY, np.int64)  # spikes matched so far (adaptation weight)
        self.active = np.zeros(INITIAL_CAPACITY, np.bool_)  # false: merged into another unit, matches nothing
        #: the unit's spikes can be decided late (its waveform goes on past the match window; set
        #: by the matcher at each of its matches)
        self.late = np.zeros(INITIAL_CAPACITY, np.bool_)
        #: unit id -> the unit it was merged into (its spikes so far keep their id)
        self.merged_into: dict[int, int] = {}
        self.candidates = np.full((n_ch, 1), -1, np.int32)
        self.next_id = 0

    def _grow(self) -> None:
        cap = 2 * self.ids.size
        for name in ("ids", "peak_channel", "norm2", "amp", "amp_n", "matched", "long_n", "active", "late"):
            old = getattr(self, name)
            new = np.zeros(cap, old.dtype)
            new[: old.size] = old
            setattr(self, name, new)
        ch = np.full((cap, self.k), -1, np.int32)
        ch[: self.channels.shape[0]] = self.channels
        self.channels = ch
        w = np.zeros((cap, self.waves.shape[1], self.width), np.float32)
        w[: self.waves.shape[0]] = self.waves
        self.waves = w
        lw = np.zeros((cap, *self.long_waves.shape[1:]), np.float32)
        lw[: self.long_waves.shape[0]] = self.long_waves
        self.long_waves = lw

    def channels_for(self, unit_id: int) -> np.ndarray:
        """The channels around the peak channel of a unit's (first) template."""
        i = self.index[unit_id]
        return self.local_channels(int(self.peak_channel[i]))

    def local_channels(self, peak_channel: int) -> np.ndarray:
        """The channels around a channel (read-only; the peak channel first)."""
        return self._local_lists[peak_channel]

    def wide_channels(self, peak_channel: int) -> np.ndarray:
        """The channels within ``SPLIT_REACH_UM`` beyond ``local_channels`` (read-only; nearest
        first)."""
        return self._wide_lists[peak_channel]

    def add(
        self, waves: np.ndarray, peak_channel: int, unit_id: int | None = None, weight: int = 0, in_uv: bool = True
    ) -> int:
        """Add a template given on ``local_channels(peak_channel)`` (``[width, K]``); returns its
        unit id (a new one unless given). ``weight``: how many spikes the template already
        stands for (adaptation moves it by 1 / (weight + matches)). ``in_uv``: the template is
        in uV, so its trough depth is the unit's typical amplitude (else it is learnt from the
        first matches)."""
        if self.n == self.ids.size:
            self._grow()
        i = self.n
        self._set(i, waves, peak_channel, weight, in_uv)
        uid = self.next_id if unit_id is None else int(unit_id)
        self.next_id = max(self.next_id, uid + 1)
        self.ids[i] = uid
        self.index[uid] = i
        self.active[i] = True
        self.n += 1
        self._update_candidates()
        return uid

    def retire(self, unit_id: int, into: int) -> None:
        """Unit ``unit_id`` turned out to be unit ``into`` (online discovery's duplicates): its
        templates match nothing from now on, so its spikes go to ``into``; the id is not reused."""
        self.active[: self.n][self.ids[: self.n] == unit_id] = False
        for merged, target in self.merged_into.items():  # units merged into this one: now into ``into``
            if target == unit_id:
                self.merged_into[merged] = into
        self.merged_into[unit_id] = into
        self._update_candidates()

    def replace(self, unit_id: int, waves: np.ndarray, weight: int) -> None:
        """Give a unit a new template (on the channels around its peak channel, in uV), standing
        for ``weight`` spikes: a unit that held two keeps the one its id stands for."""
        i = self.index[unit_id]
        self._set(i, waves, int(self.peak_channel[i]), weight, True)

    def _set(self, i: int, waves: np.ndarray, peak_channel: int, weight: int, in_uv: bool) -> None:
        chans = self.local_channels(peak_channel)
        if waves.shape != (self.width, chans.size):
            raise ValueError(f"template shape {waves.shape}, expected {(self.width, chans.size)}")
        depth = -waves[self.pre, 0]  # local channels start with the peak channel itself
        if not np.isfinite(waves).all() or depth <= 0:
            raise InputError(f"template for channel {peak_channel} has no negative trough at its centre")
        self.peak_channel[i] = peak_channel
        self.channels[i] = -1
        self.channels[i, : chans.size] = chans
        self.waves[i] = 0
        self.waves[i][chans] = (waves / depth).T
        self.norm2[i] = float((self.waves[i] ** 2).sum())
        if self.long_post:  # until learnt: the short template, zero beyond it
            self.long_waves[i] = 0
            n = min(self.width, self.long_waves.shape[2])
            self.long_waves[i][:, :n] = self.waves[i][:, :n]
            self.long_n[i] = 0
        self.amp[i] = depth if in_uv else 0.0
        # a template in uV knows its unit's size from the start: its fits are gated by it at once
        self.amp_n[i] = max(weight, MIN_AMPLITUDE_OBSERVATIONS) if in_uv else 0
        self.matched[i] = weight

    def distance_um(self, a: int, b: int) -> float:
        return float(self._dist[a, b])

    def _update_candidates(self) -> None:
        """Per channel, the active templates (in index order) that compete for a spike peaking
        there: those peaking within ``candidate_radius_um`` whose support holds the channel (a
        unit's spike peaks on its own channels; a template further off sees only the spike's far
        field). Rebuilt when templates change, so the matcher reads it as it is."""
        n = self.n
        rows = self.channels[:n]
        on = rows >= 0
        support = np.zeros((self._dist.shape[0], n), np.bool_)  # [C, n]: channel in template's support
        support[rows[on], np.broadcast_to(np.arange(n)[:, None], rows.shape)[on]] = True
        near = (self._dist[:, self.peak_channel[:n]] <= self.candidate_radius_um) & support & self.active[:n]  # [C, n]
        counts = near.sum(1)
        cand = np.full((near.shape[0], max(1, int(counts.max()))), -1, np.int32)
        rows, cols = np.nonzero(near)  # row-major: each channel's templates in index order
        slot = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
        cand[rows, slot] = cols
        self.candidates = cand

    def same_unit(
        self, waves: np.ndarray, peak_channel: int, max_shift: int, min_similarity: float, tolerance: float
    ) -> bool:
        """Is a candidate template (on ``local_channels(peak_channel)``, in uV) a unit the bank
        has? Some template peaking nearby has, on the channels both cover (at least half of the
        candidate's) and over shifts, a normalised correlation of at least ``min_similarity``
        with it, and a fitted amplitude within ``tolerance`` of that unit's typical amplitude
        (the fit is the candidate's trough depth on the unit's own peak channel, so units seen
        from a neighbouring channel compare like with like). Templates merged into another unit
        count too: what looked like a second unit and turned out to be that one (an overlap
        of two units' spikes, say) is that unit when it is found again, not a new one."""
        chans = self.local_channels(peak_channel)
        for i in range(self.n):
            known = self.active[i] or int(self.ids[i]) in self.merged_into
            if not known or self._dist[peak_channel, self.peak_channel[i]] > self.candidate_radius_um:
                continue
            if same_shape_and_size(
                waves, chans, self.waves[i], self.channels[i], float(self.amp[i]), max_shift, min_similarity, tolerance
            ):
                return True
        return False


def same_shape_and_size(
    waves: np.ndarray,
    chans: np.ndarray,
    template: np.ndarray,
    support: np.ndarray,
    typical: float,
    max_shift: int,
    min_similarity: float,
    tolerance: float,
) -> bool:
    """``waves`` (``[W, K]`` on ``chans``, uV) is the unit of ``template`` (``[C, W]``, trough -1
    on its peak channel, non-zero on ``support``; typical trough depth ``typical`` uV): on the
    channels both cover (at least half of ``chans``) and at some shift, their normalised
    correlation is at least ``min_similarity`` and the fitted amplitude is within ``tolerance``
    of ``typical``."""
    common = np.isin(chans, support)
    if 2 * common.sum() < chans.size or typical <= 0:
        return False
    for x, t in shifted_overlaps(waves[:, common], template[chans[common]].T, max_shift):
        xt, tt, xx = float((x * t).sum()), float((t * t).sum()), float((x * x).sum())
        if xt <= 0 or tt <= 0 or xt / np.sqrt(xx * tt) < min_similarity:
            continue
        if abs(xt / tt - typical) <= tolerance * typical:
            return True
    return False


def shifted_overlaps(x: np.ndarray, t: np.ndarray, max_shift: int):
    """The overlapping parts ``(x[...], t[...])`` of two ``[W, K]`` waveforms with ``t`` shifted
    by each of -max_shift .. max_shift samples against ``x``."""
    width = x.shape[0]
    for s in range(-max_shift, max_shift + 1):
        yield x[max(s, 0) : width + min(s, 0)], t[max(-s, 0) : width + min(-s, 0)]


def bandpassed_templates(templates_uv: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """Templates ``[U, T, C]`` passed through the pipeline's causal band-pass along time, so
    their shapes are the ones the matcher sees in filtered data."""
    return sosfilt(sos.astype(np.float64), templates_uv.astype(np.float64), axis=1).astype(np.float32)


def bank_from_dense(
    bank: TemplateBank,
    templates: np.ndarray,
    unit_ids: np.ndarray,
    trough_index: int,
    weight: int,
    in_uv: bool,
    prior_spikes: np.ndarray | None = None,
) -> None:
    """Fill ``bank`` from dense templates ``[U, T, C]`` (filtered), the trough of each on its
    deepest channel near ``trough_index``; each counts as ``weight`` spikes, or as its count in
    ``prior_spikes`` (a prior sort's spikes per template) where that is more: the matcher's rate
    prior then favours, from the first spike, the units that fired more in the sort."""
    counts = np.full(len(unit_ids), weight, np.int64) if prior_spikes is None else np.maximum(prior_spikes, weight)
    for tpl, uid, n_spikes in zip(templates, unit_ids, counts.tolist()):
        depth = -tpl.min(axis=0)
        peak = int(depth.argmax())
        t_min = int(tpl[:, peak].argmin())
        start = t_min - bank.pre
        if start < 0 or start + bank.width > tpl.shape[0]:
            start = min(max(trough_index - bank.pre, 0), tpl.shape[0] - bank.width)
        chans = bank.local_channels(peak)
        bank.add(tpl[start : start + bank.width][:, chans], peak, int(uid), int(n_spikes), in_uv)


def read_phy_spike_counts(folder: str | Path) -> np.ndarray | None:
    """Each template's spike count in the sort, in ``read_phy_templates``' order (the templates that
    have spikes); None without ``spike_templates.npy``."""
    folder = Path(folder)
    path = folder / "spike_templates.npy"
    if not path.exists():
        return None
    n_templates = np.load(folder / "templates.npy", mmap_mode="r").shape[0]
    per_template = np.load(path).ravel().astype(np.int64)
    if per_template.size and (per_template.min() < 0 or per_template.max() >= n_templates):
        raise InputError(f"{path} refers to templates outside 0 .. {n_templates - 1}; the sort's files do not match")
    counts = np.bincount(per_template, minlength=n_templates)
    return counts[counts > 0]


def _load(path: Path, what: str) -> np.ndarray:
    if not path.exists():
        raise InputError(f"{path} is missing: a Kilosort/phy folder needs {what}")
    try:
        return np.load(path)
    except Exception as exc:  # noqa: BLE001 - numpy raises several kinds
        raise InputError(f"cannot read {path}: {exc}") from exc


def read_phy_templates(folder: str | Path, n_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Unwhitened templates ``[n_templates, n_time, n_channels]`` on the stream's channels and
    the cluster id of each template, from a Kilosort/phy folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"templates folder {folder} does not exist")
    tpl = _load(folder / "templates.npy", "templates.npy (n_templates, n_time, n_channels)")
    if tpl.ndim != 3:
        raise InputError(
            f"{folder / 'templates.npy'} has shape {tpl.shape}; expected (n_templates, n_time, n_channels)"
        )
    if not np.isfinite(tpl).all():
        raise InputError(f"{folder / 'templates.npy'} contains NaN or Inf values; re-export the sort")
    winv_path = folder / "whitening_mat_inv.npy"
    if winv_path.exists():
        winv = np.load(winv_path)
        if winv.shape != (tpl.shape[2], tpl.shape[2]):
            raise InputError(f"{winv_path} has shape {winv.shape}; expected {(tpl.shape[2], tpl.shape[2])}")
        tpl = tpl @ winv
    chan_map = _load(folder / "channel_map.npy", "channel_map.npy").ravel().astype(np.int64)
    if chan_map.size != tpl.shape[2]:
        raise InputError(
            f"{folder / 'channel_map.npy'} lists {chan_map.size} channels but templates.npy has {tpl.shape[2]}"
        )
    if chan_map.max() >= n_channels:
        raise InputError(
            f"{folder / 'channel_map.npy'} refers to channel {chan_map.max()} "
            f"but the stream has {n_channels} channels; the sort does not fit this probe/stream"
        )
    dense = np.zeros((tpl.shape[0], tpl.shape[1], n_channels), np.float32)
    dense[:, :, chan_map] = tpl
    spike_templates_path = folder / "spike_templates.npy"
    clusters_path = folder / "spike_clusters.npy"
    cluster_of = np.arange(tpl.shape[0])
    keep = np.ones(tpl.shape[0], bool)
    if spike_templates_path.exists() and clusters_path.exists():
        st = np.load(spike_templates_path).ravel()
        sc = np.load(clusters_path).ravel()
        if st.size != sc.size:
            raise InputError(
                f"{spike_templates_path} and {clusters_path} have different lengths ({st.size}, {sc.size})"
            )
        for t in range(tpl.shape[0]):
            members = sc[st == t]
            keep[t] = members.size > 0  # Kilosort keeps unused templates; they belong to no cluster
            if members.size:
                vals, counts = np.unique(members, return_counts=True)
                cluster_of[t] = vals[counts.argmax()]
    ids = cluster_of[keep]
    if ids.size and (ids.min() < 0 or ids.max() > MAX_UNIT_ID):
        raise InputError(
            f"{clusters_path} has cluster ids from {ids.min()} to {ids.max()}; rtclass takes ids 0 to "
            f"{MAX_UNIT_ID}: renumber the clusters (e.g. phy's 'save' after a merge does)"
        )
    # a curated cluster made of several templates keeps all of them, under one unit id
    return dense[keep], ids
