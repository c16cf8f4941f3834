"""A non-editable install ships what rtclass needs at run time: the default model, the configs, the view's page."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rtclass import __version__, package_data_path
from rtclass.classify.model import CARD_NAME, DEFAULT_MODEL, CellTypeModel
from rtclass.config import ConfigError, load_config, shipped_config_names

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIGS = ("demo", "np1-lsl", "np1-zmq", "np2", "openephys")
#: a wheel of this size builds in a few seconds; the margin is for a busy machine
WHEEL_BUILD_TIMEOUT_S = 120


def _in_wheel(path: Path) -> str:
    """The name a file of the installed package has inside the wheel (``rtclass/...``)."""
    return "rtclass/" + path.relative_to(package_data_path()).as_posix()


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> set[str]:
    """The file names in a wheel built from a copy of the checkout (so the checkout gets no build/ or egg-info)."""
    pytest.importorskip("setuptools")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "rtclass", source / "rtclass", ignore=shutil.ignore_patterns("__pycache__"))
    wheel_dir = tmp_path_factory.mktemp("wheel")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", wheel_dir],
        capture_output=True,
        text=True,
        timeout=WHEEL_BUILD_TIMEOUT_S,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (wheel,) = wheel_dir.glob("rtclass-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_ships_the_default_model_and_every_config(wheel_files):
    assert _in_wheel(DEFAULT_MODEL) in wheel_files
    assert _in_wheel(DEFAULT_MODEL.with_name(CARD_NAME)) in wheel_files
    for name in SHIPPED_CONFIGS:
        assert f"rtclass/configs/{name}.toml" in wheel_files
    assert f"rtclass-{__version__}.dist-info/METADATA" in wheel_files  # the version is rtclass.__version__


def test_the_default_model_loads():
    model = CellTypeModel(DEFAULT_MODEL)  # also checks the file against the sha256 in its model card
    assert model.card["sha256"] and len(model.classes) > 1


def test_shipped_configs_load_by_name():
    assert shipped_config_names() == sorted(SHIPPED_CONFIGS)
    for name in SHIPPED_CONFIGS:
        from_file = load_config(package_data_path("configs", f"{name}.toml"))
        assert load_config(name) == from_file
        assert load_config(f"{name}.toml") == from_file


def test_a_name_that_is_not_shipped_lists_the_shipped_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="neither a config file nor the name of a shipped config") as err:
        load_config("np3")
    assert all(name in str(err.value) for name in SHIPPED_CONFIGS)


def test_a_file_wins_over_a_shipped_name_and_old_checkout_paths_still_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "np2.toml").write_text('[probe]\ngeometry = "np1"\n')
    assert load_config("np2.toml").probe.geometry == "np1"
    # `configs/np2.toml` is where a source checkout kept the configs before they became package data
    assert load_config("configs/np2.toml") == load_config(package_data_path("configs", "np2.toml"))


def test_the_wheel_ships_the_browser_views_page_and_its_plotting_library(wheel_files):
    from rtclass.apps.view.server import STATIC_DIR

    for file in STATIC_DIR.iterdir():
        assert f"rtclass/apps/view/static/{file.name}" in wheel_files, file.name
    assert {"index.html", "view.js", "uPlot.iife.min.js", "uPlot.LICENSE.txt"} <= {f.name for f in STATIC_DIR.iterdir()}
