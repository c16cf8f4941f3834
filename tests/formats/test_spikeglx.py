import numpy as np
import pytest

from rtclass.errors import InputError
from rtclass.formats.spikeglx import open_recording, read_meta, write_recording
from rtclass.probe import neuropixels


def _write(tmp_path, kind="np1", n=300, name="t.ap.bin"):
    rng = np.random.default_rng(0)
    ap = rng.integers(-500, 500, (n, 384)).astype(np.int16)
    path = write_recording(tmp_path / name, ap, kind, 30000.0, neuropixels(kind).positions_um)
    return path, ap


@pytest.mark.parametrize("kind, uv", [("np1", 0.6 / 512 / 500 * 1e6), ("np2", 0.5 / 8192 / 80 * 1e6)])
def test_read_back_with_the_meta_scale(tmp_path, kind, uv):
    path, ap = _write(tmp_path, kind)
    rec = open_recording(path)
    assert rec.n_ap == 384 and rec.n_saved == 385 and rec.sample_rate_hz == 30000.0
    assert np.allclose(rec.uv_per_bit, uv)
    np.testing.assert_allclose(rec.read_uv(10, 20), ap[10:20] * np.float32(uv), rtol=1e-6)


def test_size_that_does_not_fit_the_channel_count(tmp_path):
    path, _ = _write(tmp_path)
    with open(path, "ab") as f:
        f.write(b"\0\0\0")
    with pytest.raises(InputError, match="not a whole number of 385-channel"):
        open_recording(path)


def test_meta_with_wrong_file_size(tmp_path):
    path, _ = _write(tmp_path)
    with open(path, "ab") as f:
        f.write(b"\0" * 770)  # one more whole frame: the meta's fileSizeBytes no longer fits
    with pytest.raises(InputError, match="fileSizeBytes"):
        open_recording(path)


def test_missing_meta_and_missing_file(tmp_path):
    path, _ = _write(tmp_path)
    path.with_suffix(".meta").unlink()
    with pytest.raises(InputError, match=r"\.meta is missing"):
        open_recording(path)
    with pytest.raises(InputError, match="does not exist"):
        open_recording(tmp_path / "nope.ap.bin")


def test_meta_parsing_keeps_tables(tmp_path):
    path, _ = _write(tmp_path)
    meta = read_meta(path.with_suffix(".meta"))
    assert meta["nSavedChans"] == "385" and meta["~imroTbl"].startswith("(0,384)")
