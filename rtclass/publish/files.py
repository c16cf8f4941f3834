"""What ``rtclass run --out DIR`` writes: spike files phy and C4 read, and metrics, when it stops;
and, while it runs, an append-only journal of every published spike.

Each output file is written under a temporary name and renamed into place, so a run stopped at
any moment leaves either the complete file or none. The journal (``spikes.journal.bin``, records
of ``JOURNAL_DTYPE``: the wire format's spike fields plus the amplitude in uV, no header) is
flushed at least every ``JOURNAL_FLUSH_S``: after a crash or SIGKILL, ``read_spike_journal`` gives
the spikes published until then. A run that ends normally removes it once the files are written.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rtclass.discovery.online import EarlierSpikes, with_earlier_spikes
from rtclass.errors import PublishError
from rtclass.formats.phy import save_text, write_tsv, write_whole
from rtclass.ingest.base import StreamInfo
from rtclass.publish.wire import SPIKE_DTYPE

JOURNAL_NAME = "spikes.journal.bin"
#: one journal record: a published spike (wire format v1 fields) and its amplitude (uV)
JOURNAL_DTYPE = np.dtype(
    [*((name, SPIKE_DTYPE.fields[name][0]) for name in SPIKE_DTYPE.names), ("amplitude_uv", "<f4")]
)
#: the journal reaches the disk at least this often (s of wall time)
JOURNAL_FLUSH_S = 1.0


def read_spike_journal(path: str | Path) -> np.ndarray:
    """The spikes a run's journal holds (``JOURNAL_DTYPE``), also after the run was killed: a
    last record cut short is dropped."""
    raw = Path(path).read_bytes()
    whole = len(raw) - len(raw) % JOURNAL_DTYPE.itemsize
    return np.frombuffer(raw[:whole], JOURNAL_DTYPE).copy()


class SpikeJournal:
    """Appends published spikes to ``JOURNAL_NAME`` in the output folder, flushing at least
    every ``JOURNAL_FLUSH_S``."""

    def __init__(self, out_dir: str | Path, clock: Callable[[], float] = time.monotonic):
        self.path = Path(out_dir) / JOURNAL_NAME
        self._f = open(self.path, "wb")
        self._clock = clock
        self._flushed = clock()
        self.records = 0

    def append(self, spikes: np.ndarray, amplitudes_uv: np.ndarray) -> None:
        rec = np.empty(spikes.size, JOURNAL_DTYPE)
        for name in SPIKE_DTYPE.names:
            rec[name] = spikes[name]
        rec["amplitude_uv"] = amplitudes_uv
        self._f.write(rec.tobytes())
        self.records += rec.size
        now = self._clock()
        if now - self._flushed >= JOURNAL_FLUSH_S:
            self._f.flush()
            self._flushed = now

    def close(self, remove: bool) -> None:
        self._f.close()
        if remove:
            self.path.unlink(missing_ok=True)


#: records per block of the spike log
BLOCK_SPIKES = 1 << 16
#: batches whose channels the log keeps for the status's "active channels"
RECENT_BATCHES_KEPT = 200


class SpikeLog:
    """Every published spike of a run, kept for the output files, and with a ``journal`` also
    appended to it as they come. Spikes are copied into blocks of ``BLOCK_SPIKES`` records (an
    hour of a busy probe is a few million spikes: one small array per batch would cost more in
    object overhead than the spikes, and counting them would walk millions of arrays)."""

    def __init__(self, recent_batches: int = RECENT_BATCHES_KEPT) -> None:
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []  # full blocks: (spikes, amplitudes)
        self._spikes = np.zeros(BLOCK_SPIKES, SPIKE_DTYPE)
        self._amplitudes = np.zeros(BLOCK_SPIKES, np.float32)
        self._filled = 0  # records in the current block
        self._total = 0
        self._recent = deque(maxlen=recent_batches)  # channels of the last batches
        self.journal: SpikeJournal | None = None

    def append(self, spikes: np.ndarray, amplitudes_uv: np.ndarray) -> None:
        if not spikes.size:
            return
        amplitudes_uv = np.asarray(amplitudes_uv, np.float32)
        done = 0
        while done < spikes.size:
            n = min(spikes.size - done, BLOCK_SPIKES - self._filled)
            self._spikes[self._filled : self._filled + n] = spikes[done : done + n]
            self._amplitudes[self._filled : self._filled + n] = amplitudes_uv[done : done + n]
            self._filled += n
            done += n
            if self._filled == BLOCK_SPIKES:
                self._blocks.append((self._spikes, self._amplitudes))
                self._spikes = np.zeros(BLOCK_SPIKES, SPIKE_DTYPE)
                self._amplitudes = np.zeros(BLOCK_SPIKES, np.float32)
                self._filled = 0
        self._total += spikes.size
        self._recent.append(spikes["channel"].copy())
        if self.journal is not None:
            self.journal.append(spikes, amplitudes_uv)

    def spikes(self) -> np.ndarray:
        return np.concatenate([b[0] for b in self._blocks] + [self._spikes[: self._filled]])

    def amplitudes(self) -> np.ndarray:
        return np.concatenate([b[1] for b in self._blocks] + [self._amplitudes[: self._filled]])

    def recent_channels(self, batches: int) -> np.ndarray:
        """Channels with a spike in the last ``batches`` appended batches (at most those kept)."""
        tail = list(self._recent)[-batches:]
        return np.unique(np.concatenate(tail)) if tail else np.zeros(0, np.int16)

    def __len__(self) -> int:
        return self._total


def prepare_output_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` (or fail now, before a run starts, with a clear message)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".rtclass-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PublishError(f"cannot write to output folder {out}: {exc.strerror}; choose a writable --out") from exc
    return out


def save_npy(path: Path, array: np.ndarray) -> None:
    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.save(f, array)

    write_whole(path, write)


def params_py(info: StreamInfo, out: Path) -> str:
    if info.raw_path is not None:
        dat = f"[{str(Path(info.raw_path).resolve())!r}]"
        n_dat, dtype = info.raw_n_channels, info.raw_dtype
    else:  # a live stream: no raw file behind it
        dat, n_dat, dtype = "[]", info.n_channels, "int16"
    return (
        f"dat_path = {dat}\n"
        f"n_channels_dat = {n_dat}\n"
        f"dtype = {dtype!r}\n"
        "offset = 0\n"
        f"sample_rate = {info.sample_rate_hz!r}\n"
        "hp_filtered = False\n"
    )


@dataclass
class UnitOutputs:
    """What the run knows about its units, for the phy files."""

    ids: np.ndarray  # [U] unit id of each template
    templates_uv: np.ndarray  # [U, T, C]
    positions_um: np.ndarray  # [C, 2]
    labels: dict[int, tuple[str, float, float]]  # unit -> (cell type, top probability, confidence ratio)
    #: discovered units' earlier spikes, published unassigned: the files give them their unit
    earlier: list[EarlierSpikes] = field(default_factory=list)


class RawRecorder:
    """``--save-raw``: the stream as the pipeline saw it (float32 uV, after the NaN guard),
    ``[n_samples, n_channels]`` in ``raw.bin``; missing samples (gaps) are written as zeros so the
    file's sample k is stream sample first_sample + k."""

    def __init__(self, out_dir: str | Path):
        self.path = prepare_output_dir(out_dir) / "raw.bin"
        self._f = open(self.path, "wb")
        self.first_sample: int | None = None
        self.n_channels = 0

    def write(self, data: np.ndarray, first_sample: int, gap_before: int) -> None:
        if self.first_sample is None:
            self.first_sample, self.n_channels = first_sample, data.shape[1]
        elif gap_before:
            self._f.write(np.zeros((gap_before, data.shape[1]), np.float32).tobytes())
        self._f.write(np.ascontiguousarray(data, np.float32).tobytes())

    def close(self) -> None:
        self._f.close()


def write_run_output(
    out_dir: str | Path,
    log: SpikeLog,
    info: StreamInfo,
    metrics: dict[str, Any],
    units: UnitOutputs | None = None,
    raw: RawRecorder | None = None,
) -> Path:
    """The run's files. With units known, also a phy template-gui folder: templates, spike
    templates and amplitudes, channel map/positions, C4's cluster tsv files; spikes no unit
    explained (unit -1) get cluster id = the next free id, marked ``noise`` in cluster_group.tsv."""
    out = prepare_output_dir(out_dir)
    # in sample order, as Kilosort writes them (the second spike of an overlapping pair, and a
    # spike decided late, can be logged after later ones)
    spikes, amplitudes = log.spikes(), log.amplitudes()
    order = np.argsort(spikes["sample"], kind="stable")
    spikes, amplitudes = spikes[order], amplitudes[order]
    if units is not None and units.earlier:
        # a discovered unit's first spikes (the cluster it was found from) were published before it
        # existed; the files give them the unit (the live stream and the journal stay as published)
        before = int((spikes["unit"] < 0).sum())
        spikes = with_earlier_spikes(spikes, units.earlier)
        metrics = {**metrics, "earlier_spikes_assigned_in_files": before - int((spikes["unit"] < 0).sum())}
    clusters = spikes["unit"].astype(np.int32)
    if units is not None and units.ids.size:
        unassigned = int(max(units.ids.max(), clusters.max(initial=-1))) + 1
        clusters = np.where(clusters < 0, unassigned, clusters)
        _write_phy(out, spikes, clusters, amplitudes, units, unassigned)
    save_npy(out / "spike_times.npy", spikes["sample"].astype(np.int64))
    save_npy(out / "spike_clusters.npy", clusters)
    save_npy(out / "spike_channels.npy", spikes["channel"].astype(np.int32))
    save_npy(out / "spike_amplitudes.npy", amplitudes)
    if raw is not None:
        raw_info = StreamInfo(
            info.name,
            info.n_channels,
            info.sample_rate_hz,
            raw_path=raw.path,
            raw_n_channels=raw.n_channels or info.n_channels,
            raw_dtype="float32",
        )
        save_text(
            out / "params.py", params_py(raw_info, out) + f"# raw.bin starts at stream sample {raw.first_sample}\n"
        )
    else:
        save_text(out / "params.py", params_py(info, out))
    save_text(out / "metrics.json", json.dumps(metrics, indent=2, default=float) + "\n")
    return out


def _write_phy(
    out: Path, spikes: np.ndarray, clusters: np.ndarray, amplitudes: np.ndarray, units: UnitOutputs, unassigned: int
) -> None:
    n_t, width, n_ch = units.templates_uv.shape
    templates = np.concatenate([units.templates_uv, np.zeros((1, width, n_ch), np.float32)])
    first_template = {int(u): k for k, u in reversed(list(enumerate(units.ids)))}
    spike_templates = np.array([first_template.get(int(u), n_t) for u in clusters], np.int32)
    depth = np.maximum(-templates.min(axis=(1, 2)), 1e-6)
    save_npy(out / "templates.npy", templates.astype(np.float32))
    save_npy(out / "spike_templates.npy", spike_templates)
    save_npy(out / "amplitudes.npy", (amplitudes / depth[spike_templates]).astype(np.float32))
    save_npy(out / "channel_map.npy", np.arange(n_ch, dtype=np.int32))
    save_npy(out / "channel_positions.npy", units.positions_um.astype(np.float64))
    ids = np.unique(np.concatenate([units.ids, [unassigned]]))
    write_tsv(out / "cluster_group.tsv", "group", ids, ["noise" if i == unassigned else "unsorted" for i in ids])
    lab = [units.labels.get(int(i), ("unlabeled", 0.0, 0.0)) for i in ids]
    write_tsv(out / "cluster_predicted_cell_type.tsv", "predicted_cell_type", ids, [x[0] for x in lab])
    write_tsv(out / "cluster_pred_probability.tsv", "pred_probability", ids, [f"{x[1]:.4f}" for x in lab])
    write_tsv(out / "cluster_confidence_ratio.tsv", "confidence_ratio", ids, [f"{x[2]:.3f}" for x in lab])
