"""The cerebellar layer of each unit, for models that take it (C4's ``layer_information`` models).

A rig knows its layers from histology or from the recording itself (Phyllum, as C4 did; the
Purkinje layer is where complex spikes are). rtclass takes them as depth ranges along the probe,
``NAME:from-to`` in um from the tip (the probe's ``y`` coordinate), comma-separated, e.g.
``GCL:0-450,PCL:450-500,ML:500-900``; a unit is in the range holding its peak contact, else its
layer is ``unknown`` (as C4 encodes a missing layer).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtclass.classify.layout import LAYER_ORDER
from rtclass.errors import ConfigError

UNKNOWN_LAYER = LAYER_ORDER[0]
KNOWN_LAYERS = LAYER_ORDER[1:]


@dataclass(frozen=True)
class LayerRange:
    name: str
    from_um: float
    to_um: float


def parse_layer_ranges(text: str) -> tuple[LayerRange, ...]:
    """``NAME:from-to,...`` -> ranges; a clear error naming what is wrong."""
    ranges = []
    for item in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, span = item.partition(":")
        lo, dash, hi = span.partition("-")
        try:
            r = LayerRange(name.strip(), float(lo), float(hi))
        except ValueError:
            r = None
        if not sep or not dash or r is None:
            raise ConfigError(
                f"classify.layers: {item!r} is not NAME:from-to (um from the probe tip), e.g. PCL:450-500"
            )
        if r.name not in KNOWN_LAYERS:
            raise ConfigError(f"classify.layers: layer {r.name!r} is not one of {', '.join(KNOWN_LAYERS)}")
        if not r.to_um > r.from_um:
            raise ConfigError(f"classify.layers: {item!r} ends before it starts")
        ranges.append(r)
    ordered = sorted(ranges, key=lambda r: r.from_um)
    for a, b in zip(ordered, ordered[1:]):
        if b.from_um < a.to_um:
            raise ConfigError(f"classify.layers: {a.name} ({a.from_um:g}-{a.to_um:g}) and {b.name} overlap")
    return tuple(ordered)


def layer_at(ranges: tuple[LayerRange, ...], depth_um: float) -> str:
    """The layer holding ``depth_um`` (from-inclusive, to-exclusive), else ``unknown``."""
    for r in ranges:
        if r.from_um <= depth_um < r.to_um:
            return r.name
    return UNKNOWN_LAYER
