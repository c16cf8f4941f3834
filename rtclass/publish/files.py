"""What ``rtclass run --out DIR`` writes when it stops: spike files phy and C4 read, and metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rtclass.errors import PublishError
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


def write_tsv(path: Path, column: str, ids: np.ndarray, values: list[Any]) -> None:
    lines = [f"cluster_id\t{column}"] + [f"{i}\t{v}" for i, v in zip(ids, values)]
    path.write_text("\n".join(lines) + "\n")


def write_run_output(out_dir: str | Path, log: SpikeLog, info: StreamInfo, metrics: dict[str, Any]) -> Path:
    out = prepare_output_dir(out_dir)
    spikes = log.spikes()
    np.save(out / "spike_times.npy", spikes["sample"].astype(np.int64))
    np.save(out / "spike_clusters.npy", spikes["unit"].astype(np.int32))
    np.save(out / "spike_channels.npy", spikes["channel"].astype(np.int32))
    np.save(out / "spike_amplitudes.npy", log.amplitudes())
    (out / "params.py").write_text(params_py(info, out))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
    return out
