"""What ``rtclass run --out DIR`` writes when it stops: spike files phy and C4 read, and metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rtclass.errors import PublishError
from rtclass.formats.phy import write_tsv
from rtclass.ingest.base import StreamInfo
from rtclass.publish.wire import SPIKE_DTYPE


class SpikeLog:
    """Every published spike of a run, kept for the output files (grows in blocks)."""

    def __init__(self) -> None:
        self._spikes: list[np.ndarray] = []
        self._amplitudes: list[np.ndarray] = []

    def append(self, spikes: np.ndarray, amplitudes_uv: np.ndarray) -> None:
        if spikes.size:
            self._spikes.append(spikes.copy())
            self._amplitudes.append(np.asarray(amplitudes_uv, np.float32).copy())

    def spikes(self) -> np.ndarray:
        return np.concatenate(self._spikes) if self._spikes else np.zeros(0, SPIKE_DTYPE)

    def amplitudes(self) -> np.ndarray:
        return np.concatenate(self._amplitudes) if self._amplitudes else np.zeros(0, np.float32)

    def recent_channels(self, batches: int) -> np.ndarray:
        """Channels with a spike in the last ``batches`` appended batches."""
        tail = self._spikes[-batches:]
        return np.unique(np.concatenate([s["channel"] for s in tail])) if tail else np.zeros(0, np.int16)

    def __len__(self) -> int:
        return sum(s.size for s in self._spikes)


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
    # in sample order, as Kilosort writes them (the second spike of an overlapping pair can be
    # logged a few samples after later ones)
    spikes, amplitudes = log.spikes(), log.amplitudes()
    order = np.argsort(spikes["sample"], kind="stable")
    spikes, amplitudes = spikes[order], amplitudes[order]
    clusters = spikes["unit"].astype(np.int32)
    if units is not None and units.ids.size:
        unassigned = int(max(units.ids.max(), clusters.max(initial=-1))) + 1
        clusters = np.where(clusters < 0, unassigned, clusters)
        _write_phy(out, spikes, clusters, amplitudes, units, unassigned)
    np.save(out / "spike_times.npy", spikes["sample"].astype(np.int64))
    np.save(out / "spike_clusters.npy", clusters)
    np.save(out / "spike_channels.npy", spikes["channel"].astype(np.int32))
    np.save(out / "spike_amplitudes.npy", amplitudes)
    if raw is not None:
        raw_info = StreamInfo(
            info.name,
            info.n_channels,
            info.sample_rate_hz,
            raw_path=raw.path,
            raw_n_channels=raw.n_channels or info.n_channels,
            raw_dtype="float32",
        )
        (out / "params.py").write_text(
            params_py(raw_info, out) + f"# raw.bin starts at stream sample {raw.first_sample}\n"
        )
    else:
        (out / "params.py").write_text(params_py(info, out))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    return out


def _write_phy(
    out: Path, spikes: np.ndarray, clusters: np.ndarray, amplitudes: np.ndarray, units: UnitOutputs, unassigned: int
) -> None:
    n_t, width, n_ch = units.templates_uv.shape
    templates = np.concatenate([units.templates_uv, np.zeros((1, width, n_ch), np.float32)])
    first_template = {int(u): k for k, u in reversed(list(enumerate(units.ids)))}
    spike_templates = np.array([first_template.get(int(u), n_t) for u in clusters], np.int32)
    depth = np.maximum(-templates.min(axis=(1, 2)), 1e-6)
    np.save(out / "templates.npy", templates.astype(np.float32))
    np.save(out / "spike_templates.npy", spike_templates)
    np.save(out / "amplitudes.npy", (amplitudes / depth[spike_templates]).astype(np.float32))
    np.save(out / "channel_map.npy", np.arange(n_ch, dtype=np.int32))
    np.save(out / "channel_positions.npy", units.positions_um.astype(np.float64))
    ids = np.unique(np.concatenate([units.ids, [unassigned]]))
    write_tsv(out / "cluster_group.tsv", "group", ids, ["noise" if i == unassigned else "unsorted" for i in ids])
    lab = [units.labels.get(int(i), ("unlabeled", 0.0, 0.0)) for i in ids]
    write_tsv(out / "cluster_predicted_cell_type.tsv", "predicted_cell_type", ids, [x[0] for x in lab])
    write_tsv(out / "cluster_pred_probability.tsv", "pred_probability", ids, [f"{x[1]:.4f}" for x in lab])
    write_tsv(out / "cluster_confidence_ratio.tsv", "confidence_ratio", ids, [f"{x[2]:.3f}" for x in lab])
