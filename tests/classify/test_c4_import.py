"""Training and C4 import without the extra 'train' (torch, onnx): one line of advice, exit status 2."""

import sys

import pytest

from rtclass.cli import main
from rtclass.errors import RtclassError

#: the CLI's exit status for an error the user can fix (rtclass.cli.main)
USER_ERROR_EXIT_STATUS = 2
INSTALL_ADVICE = "pip install 'rtclass[train]'"


@pytest.fixture
def without_torch(monkeypatch):
    """As if torch were not installed: with None in sys.modules, ``import torch`` raises ImportError."""
    monkeypatch.setitem(sys.modules, "torch", None)


@pytest.mark.parametrize(
    "argv, command",
    [
        (["import-c4", "foo.tar.gz", "--out", "m.onnx"], "rtclass import-c4"),
        (["import-c4", "foo.tar.gz", "--hessians", "hessians.pt", "--out", "m.onnx"], "rtclass import-c4"),
        (["train", "--data", "no_such_set", "--out", "no_such_model"], "rtclass train"),
    ],
)
def test_without_torch_the_cli_prints_one_line_of_advice(without_torch, capsys, argv, command):
    assert main(argv) == USER_ERROR_EXIT_STATUS
    err = capsys.readouterr().err
    assert err == f"rtclass: error: {command} needs PyTorch: {INSTALL_ADVICE}\n"


def test_without_torch_export_raises_the_projects_error(without_torch, tmp_path):
    from rtclass.classify.layout import RTCLASS_CLASSES
    from rtclass.classify.train import export_onnx

    with pytest.raises(RtclassError, match=r"needs PyTorch: pip install 'rtclass\[train\]'"):
        export_onnx(None, tmp_path / "m.onnx", RTCLASS_CLASSES, False, "none", 1)
    assert not (tmp_path / "m.onnx").exists()
