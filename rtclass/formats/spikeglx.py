"""SpikeGLX ``.ap.bin`` / ``.ap.meta`` files: read (memory-mapped) and write.

Format facts (SpikeGLX metadata guide): the ``.bin`` is interleaved little-endian int16,
``nSavedChans`` values per time point (for an imec AP stream: the AP channels, then one sync
channel; ``snsApLfSy`` = ``AP,LF,SY`` counts). The ``.meta`` is ``key=value`` lines; keys that
start with ``~`` hold tables. Conversion to volts:
``V = int * imAiRangeMax / imMaxInt / gain``, where the AP gain comes from the IMRO table
(NP1.0: per channel, usually 500; NP2.0: fixed 80, ``imMaxInt`` 8192).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtclass.errors import InputError

#: AP gain of probes whose IMRO table has no gain column (NP2.0 families).
NP2_AP_GAIN = 80.0
#: imMaxInt of NP1.0 metas written before the key existed.
NP1_MAX_INT = 512
BYTES_PER_SAMPLE = 2


def read_meta(meta_path: str | Path) -> dict[str, str]:
    """Parse a ``.meta`` file into a dict of strings (``~`` kept on table keys)."""
    meta_path = Path(meta_path)
    try:
        lines = meta_path.read_text().splitlines()
    except OSError as exc:
        raise InputError(
            f"cannot read SpikeGLX meta file {meta_path}: {exc.strerror}; a .bin needs its .meta beside it"
        ) from exc
    meta = {}
    for line in lines:
        if "=" in line:
            key, value = line.split("=", 1)
            meta[key.strip()] = value.strip()
    return meta


def meta_path_for(bin_path: Path) -> Path:
    return bin_path.with_suffix(".meta")


def _ap_gains(meta: dict[str, str], n_ap: int, where: Path) -> np.ndarray:
    imro = meta.get("~imroTbl")
    if not imro:
        raise InputError(f"{where} has no ~imroTbl; cannot tell the AP gain")
    entries = [e.strip("(") for e in imro.split(")") if e.strip("(")]
    rows = [e.split() for e in entries[1:]]
    if rows and len(rows[0]) == 6:  # NP1.0: chan bank refid apgain lfgain apfilt
        gains = np.array([float(r[3]) for r in rows])
    else:  # NP2.0 (types 21, 24, 2013, 2014): no gain column, fixed gain
        gains = np.full(len(rows), NP2_AP_GAIN)
    if gains.size < n_ap:
        raise InputError(f"{where}: ~imroTbl lists {gains.size} channels, fewer than the {n_ap} AP channels")
    return gains[:n_ap]


@dataclass(frozen=True, eq=False)
class SpikeGLXRecording:
    """An imec AP recording on disk. ``samples`` is the raw int16 memmap, all saved channels."""

    bin_path: Path
    meta: dict[str, str]
    samples: np.ndarray  # [n_samples, n_saved] int16 memmap
    n_ap: int
    sample_rate_hz: float
    uv_per_bit: np.ndarray  # [n_ap] float32

    @property
    def n_samples(self) -> int:
        return self.samples.shape[0]

    @property
    def n_saved(self) -> int:
        return self.samples.shape[1]

    def read_uv(self, start: int, stop: int) -> np.ndarray:
        """AP channels of samples ``[start, stop)`` in microvolts, float32, sync dropped."""
        return self.samples[start:stop, : self.n_ap].astype(np.float32) * self.uv_per_bit


def open_recording(bin_path: str | Path) -> SpikeGLXRecording:
    bin_path = Path(bin_path)
    if not bin_path.exists():
        raise InputError(f"recording {bin_path} does not exist")
    meta_path = meta_path_for(bin_path)
    if not meta_path.exists():
        raise InputError(f"{meta_path} is missing: a SpikeGLX .bin needs its .meta (same name, .meta) beside it")
    meta = read_meta(meta_path)
    try:
        n_saved = int(meta["nSavedChans"])
        fs = float(meta["imSampRate"])
        ap, _lf, _sy = (int(v) for v in meta.get("snsApLfSy", f"{n_saved},0,0").split(","))
        range_max = float(meta["imAiRangeMax"])
        max_int = float(meta.get("imMaxInt", NP1_MAX_INT))
    except (KeyError, ValueError) as exc:
        raise InputError(f"{meta_path} lacks or garbles a required key ({exc}); is it an imec AP .meta?") from exc
    size = bin_path.stat().st_size
    frame = n_saved * BYTES_PER_SAMPLE
    if size % frame:
        raise InputError(
            f"{bin_path} has {size} bytes, not a whole number of {n_saved}-channel int16 frames "
            f"({frame} bytes): the file is truncated or the meta's nSavedChans is wrong"
        )
    if "fileSizeBytes" in meta and int(meta["fileSizeBytes"]) != size:
        raise InputError(
            f"{bin_path} has {size} bytes but its meta says fileSizeBytes={meta['fileSizeBytes']}: "
            "the file was truncated or belongs to another meta"
        )
    samples = np.memmap(bin_path, dtype="<i2", mode="r", shape=(size // frame, n_saved))
    gains = _ap_gains(meta, ap, meta_path)
    uv = (range_max / max_int / gains * 1e6).astype(np.float32)
    return SpikeGLXRecording(bin_path, meta, samples, ap, fs, uv)


def np_meta_fields(kind: str) -> dict[str, str]:
    """Meta keys that describe a probe type in SpikeGLX's conventions."""
    if kind == "np1":
        return {
            "imDatPrb_type": "0",
            "imDatPrb_pn": "NP1000",
            "imAiRangeMax": "0.6",
            "imAiRangeMin": "-0.6",
            "imMaxInt": "512",
        }
    if kind == "np2":
        return {
            "imDatPrb_type": "21",
            "imDatPrb_pn": "NP2000",
            "imAiRangeMax": "0.5",
            "imAiRangeMin": "-0.5",
            "imMaxInt": "8192",
        }
    raise InputError(f"unknown probe type {kind!r}; use np1 or np2")


def write_recording(
    bin_path: str | Path,
    ap_int16: np.ndarray | None,
    kind: str,
    sample_rate_hz: float,
    positions_um: np.ndarray,
    n_samples: int | None = None,
    extra_meta: dict[str, str] | None = None,
) -> Path:
    """Write the ``.meta`` of an AP recording (384 AP + 1 sync channel) whose samples are, or
    will be, in ``bin_path``. If ``ap_int16`` is given it is written (sync = 0) first."""
    bin_path = Path(bin_path)
    n_ap = positions_um.shape[0]
    if ap_int16 is not None:
        frames = np.zeros((ap_int16.shape[0], n_ap + 1), dtype="<i2")
        frames[:, :n_ap] = ap_int16
        frames.tofile(bin_path)
        n_samples = ap_int16.shape[0]
    assert n_samples is not None
    fields = np_meta_fields(kind)
    if kind == "np1":
        imro = f"(0,{n_ap})" + "".join(f"({c} 0 0 500 250 1)" for c in range(n_ap))
    else:
        imro = f"(21,{n_ap})" + "".join(f"({c} 1 0 {c})" for c in range(n_ap))
    geom = f"({fields['imDatPrb_pn']},1,0,70)" + "".join(f"(0:{x:g}:{y:g}:1)" for x, y in positions_um)
    chan_map = f"({n_ap},0,1)" + "".join(f"(AP{c};{c}:{c})" for c in range(n_ap)) + f"(SY0;{n_ap}:{n_ap})"
    meta = {
        "typeThis": "imec",
        "imSampRate": f"{sample_rate_hz:g}",
        "nSavedChans": str(n_ap + 1),
        "snsApLfSy": f"{n_ap},0,1",
        "snsSaveChanSubset": "all",
        "fileSizeBytes": str(n_samples * (n_ap + 1) * BYTES_PER_SAMPLE),
        "fileTimeSecs": f"{n_samples / sample_rate_hz:.6f}",
        "firstSample": "0",
        **fields,
        **(extra_meta or {}),
        "~imroTbl": imro,
        "~snsChanMap": chan_map,
        "~snsGeomMap": geom,
    }
    meta_path_for(bin_path).write_text("".join(f"{k}={v}\n" for k, v in meta.items()))
    return bin_path
