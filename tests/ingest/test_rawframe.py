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
