import struct

import numpy as np
import pytest

from rtclass.ingest import rawframe


def test_round_trip_int16_and_float32():
    a = np.arange(30 * 4, dtype=np.int16).reshape(30, 4)
    f = rawframe.decode(rawframe.encode(a, 1234, 5.5, 2.5))
    assert f.first_sample == 1234 and f.t_last == 5.5 and np.array_equal(f.samples, a)
    np.testing.assert_allclose(f.microvolts(), a * 2.5)
    b = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    assert np.array_equal(rawframe.decode(rawframe.encode(b, 0, 0.0)).microvolts(), b)


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda f: f[:2], "expected 3 frames"),
        (lambda f: [b"xyz", f[1], f[2]], "unexpected topic"),
        (lambda f: [f[0], f[1][:-1], f[2]], "header has 35 bytes"),
        (lambda f: [f[0], b"XXXX" + f[1][4:], f[2]], "bad magic"),
        (lambda f: [f[0], f[1][:4] + b"\x07" + f[1][5:], f[2]], "version 7"),
        (lambda f: [f[0], f[1][:5] + b"\x09" + f[1][6:], f[2]], "dtype code 9"),
        (lambda f: [f[0], f[1], f[2][:-2]], "payload has"),
    ],
)
def test_malformed_frames_say_what_is_wrong(mutate, words):
    frames = rawframe.encode(np.zeros((5, 4), np.int16), 0, 0.0, 1.0)
    with pytest.raises(rawframe.FrameError, match=words):
        rawframe.decode(mutate(frames))


def test_unsupported_dtype():
    with pytest.raises(rawframe.FrameError, match="int16 or float32"):
        rawframe.encode(np.zeros((2, 2), np.float64), 0, 0.0)


def test_the_header_is_the_documented_36_bytes():
    """README: struct ``<4sBBHIIqdf``: magic, version, dtype code, reserved, n_channels, n_samples,
    first_sample, t_last, uv_per_unit; then the samples time-major."""
    samples = np.arange(12, dtype=np.int16).reshape(3, 4)
    topic, header, payload = rawframe.encode(samples, -5, 2.5, 0.75)
    assert topic == b"raw" and len(header) == 36
    assert struct.unpack("<4sBBHIIqdf", header) == (b"RTCR", 1, 1, 0, 4, 3, -5, 2.5, 0.75)
    assert payload == samples.astype("<i2").tobytes()  # row after row: time-major
    assert rawframe.encode(samples.astype(np.float32), 0, 0.0)[1][5] == 2  # dtype code 2 = float32


def test_an_empty_frame_round_trips():
    f = rawframe.decode(rawframe.encode(np.zeros((0, 384), np.float32), 30, 1.0))
    assert f.samples.shape == (0, 384) and f.first_sample == 30


@pytest.mark.parametrize("dtype", [">i2", ">f4"])
def test_big_endian_samples_arrive_with_their_values(dtype):
    a = np.arange(6).reshape(3, 2).astype(dtype)
    assert np.array_equal(rawframe.decode(rawframe.encode(a, 0, 0.0)).samples, a)
