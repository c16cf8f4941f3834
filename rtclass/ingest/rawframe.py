"""rtclass raw-data framing over ZeroMQ (PUB/SUB), version 1.

Each chunk is one multipart message ``[b"raw", header, samples]``:

header, 36 bytes little-endian (struct ``<4sBBHIIqdf``):
    magic ``b"RTCR"``, version (u8, = 1), dtype code (u8: 1 = int16, 2 = float32), reserved
    (u16, 0), n_channels (u32), n_samples (u32), first_sample (i64, index of the first sample
    on the sender's timeline), t_last (f64, sender clock time in s of the last sample),
    uv_per_unit (f32: microvolts per int16 step, 1.0 for float32 data in uV);
samples: ``n_samples * n_channels`` values of that dtype, time-major (C order).

Receivers detect lost chunks from ``first_sample`` (a jump forward is a gap; a step back is a
duplicate or reordered chunk and is dropped).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

TOPIC = b"raw"
MAGIC = b"RTCR"
VERSION = 1
HEADER = struct.Struct("<4sBBHIIqdf")
DTYPES = {1: np.dtype("<i2"), 2: np.dtype("<f4")}
DTYPE_CODES = {np.dtype("<i2"): 1, np.dtype("<f4"): 2}


class FrameError(ValueError):
    """A message that is not a valid raw frame; the text says what is wrong, ``kind`` which part."""

    def __init__(self, message: str, kind: str = "frame"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class RawFrame:
    samples: np.ndarray  # [n_samples, n_channels] int16 or float32
    first_sample: int
    t_last: float
    uv_per_unit: float

    def microvolts(self) -> np.ndarray:
        if self.samples.dtype == np.float32 and self.uv_per_unit == 1.0:
            return self.samples.copy()
        return self.samples.astype(np.float32) * np.float32(self.uv_per_unit)


def encode(samples: np.ndarray, first_sample: int, t_last: float, uv_per_unit: float = 1.0) -> list[bytes]:
    data = np.ascontiguousarray(samples)
    if data.dtype.byteorder == ">":  # the wire is little-endian: swap the bytes, keep the values
        data = data.astype(data.dtype.newbyteorder("<"))
    code = DTYPE_CODES.get(data.dtype)
    if code is None:
        raise FrameError(f"raw frames carry int16 or float32 samples, not {data.dtype}")
    header = HEADER.pack(MAGIC, VERSION, code, 0, data.shape[1], data.shape[0], first_sample, t_last, uv_per_unit)
    return [TOPIC, header, data.tobytes()]


def decode(frames: list[bytes]) -> RawFrame:
    if len(frames) != 3:
        raise FrameError(f"expected 3 frames [topic, header, samples], got {len(frames)}", "parts")
    topic, header, payload = frames
    if topic != TOPIC:
        raise FrameError(f"unexpected topic {bytes(topic)[:16]!r}", "topic")
    if len(header) != HEADER.size:
        raise FrameError(f"header has {len(header)} bytes, expected {HEADER.size}", "header")
    magic, version, code, _, n_ch, n_s, first, t_last, scale = HEADER.unpack(header)
    if magic != MAGIC:
        raise FrameError(f"bad magic {magic!r}; is the sender rtclass raw framing v{VERSION}?", "magic")
    if version != VERSION:
        raise FrameError(f"raw framing version {version} is not supported (this reader speaks v{VERSION})", "version")
    dtype = DTYPES.get(code)
    if dtype is None:
        raise FrameError(f"unknown dtype code {code}; expected 1 (int16) or 2 (float32)", "dtype")
    if len(payload) != n_ch * n_s * dtype.itemsize:
        raise FrameError(
            f"payload has {len(payload)} bytes, header promises {n_s} x {n_ch} {dtype.name} "
            f"= {n_ch * n_s * dtype.itemsize}",
            "size",
        )
    samples = np.frombuffer(payload, dtype=dtype).reshape(n_s, n_ch)
    return RawFrame(samples, first, t_last, scale)
