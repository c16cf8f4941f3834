"""Offline C4 features of a Kilosort/phy folder (``rtclass classify KS_DIR``).

Per cluster: the 3D-ACG from its spike times and the waveform from the raw binary named in
``params.py`` when it exists (otherwise from ``templates.npy`` unwhitened, with a warning), both as
C4 defines them (``rtclass.features.c4``). Clusters with fewer than C4's minimum of 100 spikes
are skipped with the reason. With ``spike_filter`` (the default), the 3D-ACG is built from the
spikes C4's filter keeps (``rtclass.features.spike_quality``: 10 s chunks with few refractory
violations and missed spikes, judged on Kilosort's per-spike ``amplitudes.npy``), and clusters
whose good sections span ``min_good_s`` (C4: 180 s) or less are skipped, as C4 skips them. Without
``amplitudes.npy`` missed spikes cannot be judged: the spikes are not filtered (a warning says so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rtclass.errors import InputError
from rtclass.features.c4 import MIN_SPIKES, c4_acg, preprocess_waveform
from rtclass.features.spike_quality import C4_MIN_GOOD_S, c4_period_end_s, spike_quality
from rtclass.formats.phy import open_phy_folder, open_raw, raw_mean_waveform

log = logging.getLogger("rtclass.classify")


@dataclass
class FeatureSet:
    cluster_id: np.ndarray  # (n,)
    acg3d: np.ndarray  # (n, 10, 101) float32
    waveform: np.ndarray  # (n, 90) float32
    skipped: dict[int, str] = field(default_factory=dict)
    waveform_source: str = ""
    #: clusters whose 3D-ACG left out spikes C4's filter judged bad -> how many
    spikes_left_out: dict[int, int] = field(default_factory=dict)

    def save(self, path) -> None:
        np.savez(path, cluster_id=self.cluster_id, acg3d=self.acg3d, waveform=self.waveform)


def _template_traces(folder, n_channels_hint: int | None):
    """Per template: the unwhitened trace on its largest-swing channel, and that channel."""
    from rtclass.matching.templates import read_phy_templates

    chan_map = np.load(folder / "channel_map.npy").ravel()
    dense, ids = read_phy_templates(folder, int(chan_map.max()) + 1 if n_channels_hint is None else n_channels_hint)
    swing = dense.max(1) - dense.min(1)
    peak = swing.argmax(1)
    traces = dense[np.arange(dense.shape[0]), :, peak]
    return {int(c): (traces[k], int(peak[k])) for k, c in enumerate(ids)}


def extract_features(
    folder,
    progress: Callable[[int, int], None] | None = None,
    spike_filter: bool = True,
    min_good_s: float = C4_MIN_GOOD_S,
) -> FeatureSet:
    phy = open_phy_folder(folder)
    if spike_filter and phy.amplitudes is None:
        log.warning(
            "%s has no amplitudes.npy: C4's spike filter cannot judge missed spikes, so spikes are not filtered",
            phy.folder,
        )
    fs = phy.sample_rate_hz
    raw = open_raw(phy)
    templates = None
    if (phy.folder / "templates.npy").exists():
        templates = _template_traces(phy.folder, None)
    if raw is None:
        if templates is None:
            raise InputError(
                f"{phy.folder} has neither a readable raw binary (params.py dat_path) nor templates.npy: no waveforms"
            )
        log.warning(
            "no raw binary found through params.py: waveforms come from templates.npy (unwhitened), not raw data"
        )
    ids, acgs, waves, skipped, left_out = [], [], [], {}, {}
    clusters = phy.cluster_ids()
    for k, c in enumerate(clusters):
        t, amps = phy.train_and_amplitudes(int(c))
        if progress is not None:
            progress(k + 1, clusters.size)
        if t.size < MIN_SPIKES:
            skipped[int(c)] = f"{t.size} spikes, fewer than C4's minimum of {MIN_SPIKES}"
            continue
        acg_spikes = t
        if spike_filter and amps is not None:
            times_s = t / fs
            quality = spike_quality(times_s, amps, c4_period_end_s(times_s), min_good_s=min_good_s)
            if not quality.passes:
                skipped[int(c)] = f"C4's spike filter keeps too few spikes: {quality.reason}"
                continue
            acg_spikes = t[quality.good]
            if acg_spikes.size < t.size:
                left_out[int(c)] = int(t.size - acg_spikes.size)
        trace = None
        if raw is not None:
            peak = templates[int(c)][1] if templates is not None and int(c) in templates else None
            if peak is None:
                skipped[int(c)] = "no template to locate its peak channel in the raw data"
                continue
            n_signal = raw[1] - 1 if raw[1] in (385, 769) else raw[1]  # SpikeGLX files end with a sync channel
            trace = raw_mean_waveform(raw[0], t, peak, n_signal)
        elif int(c) in templates:
            trace = templates[int(c)][0]
        if trace is None:
            skipped[int(c)] = "no waveform (no template, or too few spikes inside the raw file)"
            continue
        ids.append(int(c))
        acgs.append(c4_acg(acg_spikes))
        waves.append(preprocess_waveform(trace))
    for c, why in skipped.items():
        log.warning("cluster %d skipped: %s", c, why)
    n = len(ids)
    return FeatureSet(
        np.array(ids, np.int64),
        np.array(acgs, np.float32).reshape(n, 10, 101),
        np.array(waves, np.float32).reshape(n, 90),
        skipped,
        "raw" if raw is not None else "templates",
        left_out,
    )
