"""Kilosort/phy folders: spike trains per cluster, ``params.py``, and C4-style mean waveforms
from the raw binary.

Layouts accepted: ``spike_times.npy`` flat or as a column (KS2 and KS4); cluster ids from
``spike_clusters.npy`` (phy's curated ids) or, without it, ``spike_templates.npy``.
``params.py`` is read as plain ``name = value`` assignments (never executed).
"""

from __future__ import annotations

import ast
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtclass.errors import InputError

log = logging.getLogger("rtclass.formats.phy")

#: a folder whose params.py gives no sample_rate is taken to be recorded at this (Neuropixels') rate
DEFAULT_SAMPLE_RATE_HZ = 30000.0
#: C4's raw waveform window: samples either side of the spike
WAVE_HALF = 60
#: spikes averaged per batch, batches used, channels either side of the peak channel searched
BATCH_SPIKES = 10
MAX_BATCHES = 100
PEAK_SEARCH_CHANNELS = 6


@dataclass
class PhyFolder:
    folder: Path
    spike_times: np.ndarray  # int64 samples
    spike_clusters: np.ndarray  # int64
    params: dict
    #: Kilosort's per-spike template scaling (``amplitudes.npy``), or None without the file
    amplitudes: np.ndarray | None = None

    def cluster_ids(self) -> np.ndarray:
        return np.unique(self.spike_clusters)

    def train(self, cluster: int) -> np.ndarray:
        return self.train_and_amplitudes(cluster)[0]

    def train_and_amplitudes(self, cluster: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The cluster's spike times (sorted) and, if the folder has them, their amplitudes."""
        mine = np.flatnonzero(self.spike_clusters == cluster)
        mine = mine[np.argsort(self.spike_times[mine], kind="stable")]
        amps = None if self.amplitudes is None else self.amplitudes[mine]
        return self.spike_times[mine], amps

    @property
    def sample_rate_hz(self) -> float:
        return float(self.params.get("sample_rate", DEFAULT_SAMPLE_RATE_HZ))


def read_params(path: Path) -> dict:
    """``params.py`` as a dict, reading literal assignments only."""
    out = {}
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                log.warning("%s: ignoring non-literal value of %s", path, node.targets[0].id)
    return out


def _check_one_per_spike(path: Path, values: np.ndarray, times: np.ndarray) -> None:
    """A per-spike file must have one entry per entry of spike_times.npy."""
    if values.size != times.size:
        raise InputError(
            f"{path} has {values.size} entries but spike_times.npy has {times.size}: the files do not belong together"
        )


def open_phy_folder(folder: str | Path) -> PhyFolder:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give a Kilosort/phy output folder")
    times_path = folder / "spike_times.npy"
    if not times_path.exists():
        raise InputError(f"{times_path} is missing: a Kilosort/phy folder needs spike_times.npy")
    times = np.load(times_path).ravel().astype(np.int64)
    for name in ("spike_clusters.npy", "spike_templates.npy"):
        path = folder / name
        if path.exists():
            clusters = np.load(path).ravel().astype(np.int64)
            break
    else:
        raise InputError(f"{folder} has neither spike_clusters.npy nor spike_templates.npy: no cluster ids")
    _check_one_per_spike(path, clusters, times)
    params_path = folder / "params.py"
    params = read_params(params_path) if params_path.exists() else {}
    amplitudes = None
    amp_path = folder / "amplitudes.npy"
    if amp_path.exists():
        amplitudes = np.load(amp_path).ravel().astype(np.float32)
        _check_one_per_spike(amp_path, amplitudes, times)
    return PhyFolder(folder, times, clusters, params, amplitudes)


def open_raw(phy: PhyFolder) -> tuple[np.ndarray, int] | None:
    """The raw binary named in params.py as a ``[n_samples, n_channels_dat]`` memmap and its
    channel count, or None (with a warning saying why)."""
    p = phy.params
    dat = p.get("dat_path")
    if isinstance(dat, (list, tuple)):
        dat = dat[0] if dat else None
    if not dat:
        return None
    path = Path(dat)
    if not path.is_absolute():
        path = phy.folder / path
    if not path.exists():
        log.warning("params.py names %s, which does not exist", path)
        return None
    n_ch = int(p.get("n_channels_dat", 0))
    dtype = np.dtype(p.get("dtype", "int16"))
    offset = int(p.get("offset", 0))
    size = path.stat().st_size - offset
    if n_ch <= 0 or size % (n_ch * dtype.itemsize):
        raise InputError(
            f"{path} has {size} bytes after the offset, not a whole number of {n_ch}-channel {dtype} frames: "
            "n_channels_dat in params.py does not fit the file"
        )
    raw = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(size // (n_ch * dtype.itemsize), n_ch))
    return raw, n_ch


def raw_mean_waveform(
    raw: np.ndarray, times: np.ndarray, peak_channel: int, n_signal_channels: int
) -> np.ndarray | None:
    """C4-style mean waveform (120 samples) on the unit's peak channel from the raw binary:
    spikes in batches of 10 (up to 100 batches spread over the recording), 60 samples either side,
    median removed per spike and channel, batches averaged; the peak channel is the most common
    largest-swing channel near the template's, the result the median over the batches peaking
    there, rolled so its largest value sits at sample 60. (C4 also realigns batches by
    cross-correlation; this does not.)"""
    t = times[(times >= WAVE_HALF) & (times < raw.shape[0] - WAVE_HALF)]
    n_batches = min(MAX_BATCHES, t.size // BATCH_SPIKES)
    if n_batches == 0:
        return None
    lo = max(0, peak_channel - PEAK_SEARCH_CHANNELS)
    hi = min(n_signal_channels, peak_channel + PEAK_SEARCH_CHANNELS)
    starts = np.round(np.linspace(0, t.size // BATCH_SPIKES - 1, n_batches)).astype(int) * BATCH_SPIKES
    batches = np.empty((n_batches, 2 * WAVE_HALF, hi - lo))
    for j, a in enumerate(starts):
        snips = np.stack(
            [raw[s - WAVE_HALF : s + WAVE_HALF, lo:hi].astype(np.float64) for s in t[a : a + BATCH_SPIKES]]
        )
        snips -= np.median(snips, axis=1, keepdims=True)
        batches[j] = snips.mean(0)
    swing = batches.max(1) - batches.min(1)  # [batch, channel]
    best = swing.argmax(1)
    mode = np.bincount(best).argmax()
    trace = np.median(batches[best == mode][:, :, mode], axis=0)
    return np.roll(trace, WAVE_HALF - int(np.argmax(np.abs(trace))))


def write_tsv(path: Path, column: str, ids: np.ndarray, values: list[Any]) -> None:
    """A phy cluster table: ``cluster_id<TAB>column`` then one row per cluster."""
    lines = [f"cluster_id\t{column}"] + [f"{i}\t{v}" for i, v in zip(ids, values)]
    save_text(path, "\n".join(lines) + "\n")


#: what an output file is called until it is complete
TEMP_SUFFIX = ".partial"


def write_whole(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary path)``, then rename it to ``path``: the file is complete or absent,
    whenever the writer stops."""
    partial = path.with_name(path.name + TEMP_SUFFIX)
    write(partial)
    os.replace(partial, path)


def save_text(path: Path, text: str) -> None:
    write_whole(path, lambda p: p.write_text(text))
