"""Probe geometry (contact positions in um) and channel neighbourhoods.

Neuropixels geometries come from probeinterface (which carries IMEC's probe tables), so that
NP1.0/NP2.0 staggering and pitches are not re-typed here. Sources of a geometry:

* ``np1`` / ``np2``: the default bank-0 layout of a Neuropixels 1.0 (NP1000) or 2.0 single-shank
  (NP2000) probe, channel i on electrode i;
* a SpikeGLX ``.meta``: the IMRO table (``~imroTbl``) read by probeinterface, or ``~snsGeomMap``;
* a phy/Kilosort folder: ``channel_positions.npy``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtclass.errors import InputError

#: probeinterface part numbers for the short names users type.
PART_NUMBERS = {"np1": "NP1000", "np2": "NP2000"}


@dataclass(frozen=True, eq=False)
class Probe:
    """Contact positions of the channels a stream carries, in stream channel order."""

    name: str
    positions_um: np.ndarray  # [n_channels, 2]: x across the shank, y along it (depth from tip)
    #: the side of a contact (probeinterface's contact shape), None when the source gives positions only
    contact_width_um: float | None = None

    @property
    def n_channels(self) -> int:
        return self.positions_um.shape[0]

    def distances_um(self) -> np.ndarray:
        d = self.positions_um[:, None, :] - self.positions_um[None, :, :]
        return np.sqrt((d**2).sum(-1))

    def neighbours(self, radius_um: float) -> np.ndarray:
        """``[n_channels, max_neighbours]`` int32 channel indices within ``radius_um`` (each
        channel includes itself), nearest first; rows are padded with -1."""
        dist = self.distances_um()
        within = dist <= radius_um
        width = int(within.sum(1).max())
        out = np.full((self.n_channels, width), -1, dtype=np.int32)
        for c in range(self.n_channels):
            idx = np.flatnonzero(within[c])
            idx = idx[np.argsort(dist[c, idx], kind="stable")]
            out[c, : idx.size] = idx
        return out


def neuropixels(kind: str, n_channels: int = 384) -> Probe:
    """Default bank-0 Neuropixels layout (`np1` or `np2`) for the first ``n_channels`` channels."""
    if kind not in PART_NUMBERS:
        raise InputError(f"unknown probe type {kind!r}; use one of {', '.join(PART_NUMBERS)}")
    from probeinterface.neuropixels_tools import build_neuropixels_probe

    full = build_neuropixels_probe(PART_NUMBERS[kind])
    if n_channels > full.get_contact_count():
        raise InputError(f"a {kind} probe has {full.get_contact_count()} electrodes; cannot map {n_channels} channels")
    return Probe(kind, np.asarray(full.contact_positions[:n_channels], dtype=np.float64), _contact_width_um(full))


def _contact_width_um(pi_probe) -> float | None:
    """The contacts' width from a probeinterface probe (squares: ``width``; circles: twice ``radius``)."""
    params = list(pi_probe.contact_shape_params)
    if not params:
        return None
    first = params[0]
    if "width" in first:
        return float(first["width"])
    return 2.0 * float(first["radius"]) if "radius" in first else None


def from_spikeglx_meta(meta_path: str | Path) -> Probe:
    """Geometry of the saved AP channels of a SpikeGLX recording (sync channel excluded)."""
    meta_path = Path(meta_path)
    try:
        from probeinterface import read_spikeglx

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pi_probe = read_spikeglx(meta_path)
        return Probe(
            meta_path.name, np.asarray(pi_probe.contact_positions, dtype=np.float64), _contact_width_um(pi_probe)
        )
    except Exception as exc:  # probeinterface asserts or KeyErrors on meta it does not know
        reason = exc
    from rtclass.formats.spikeglx import read_meta

    meta = read_meta(meta_path)
    geom = meta.get("~snsGeomMap")
    if geom:
        return Probe(meta_path.name, _parse_geom_map(geom, meta_path))
    raise InputError(
        f"cannot read the probe geometry from {meta_path} ({reason}); it has neither an IMRO "
        "table probeinterface knows nor ~snsGeomMap. Pass --config with [probe] geometry = np1/np2 "
        "or a phy folder with channel_positions.npy"
    )


def _parse_geom_map(text: str, where: Path) -> np.ndarray:
    """``(part,shanks,shank_sep,shank_width)(shank:x:z:used)...`` -> [n, 2] positions, x offset
    by shank index times shank separation."""
    entries = [e.strip("(") for e in text.split(")") if e.strip("(")]
    try:
        _, _, shank_sep, _ = entries[0].split(",")
        pos = []
        for e in entries[1:]:
            shank, x, z, _used = e.split(":")
            pos.append((float(x) + int(shank) * float(shank_sep), float(z)))
    except ValueError as exc:
        raise InputError(f"malformed ~snsGeomMap in {where}: {exc}") from exc
    return np.asarray(pos, dtype=np.float64)


def from_phy_folder(folder: str | Path) -> Probe:
    path = Path(folder) / "channel_positions.npy"
    if not path.exists():
        raise InputError(f"{path} does not exist; a phy folder must hold channel_positions.npy")
    pos = np.load(path)
    if pos.ndim != 2 or pos.shape[1] != 2:
        raise InputError(f"{path} has shape {pos.shape}; expected (n_channels, 2)")
    return Probe(Path(folder).name, pos.astype(np.float64))


def load_probe(spec: str, n_channels: int) -> Probe:
    """Resolve a ``[probe] geometry`` value and check it has ``n_channels`` channels."""
    if spec in PART_NUMBERS:
        probe = neuropixels(spec, n_channels)
    else:
        path = Path(spec)
        if path.suffix == ".meta":
            probe = from_spikeglx_meta(path)
        elif path.is_dir():
            probe = from_phy_folder(path)
        else:
            raise InputError(f"probe geometry {spec!r} is neither np1/np2, a .meta file nor a phy folder")
    if probe.n_channels != n_channels:
        raise InputError(
            f"probe geometry {spec!r} has {probe.n_channels} channels but the stream has "
            f"{n_channels}; give a geometry that matches the stream"
        )
    return probe
