from pathlib import Path

import pytest

from rtclass.apps.demo import DEMO_SETTINGS
from rtclass.config import Config, ConfigError, from_dict, load_config, parameter_table_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_valid():
    cfg = from_dict({})
    assert cfg == Config()
    assert cfg.preprocess.bandpass_low_hz < cfg.preprocess.bandpass_high_hz


@pytest.mark.parametrize(
    "data, words",
    [
        ({"detect": {"threshold_sd": 1.0}}, ["threshold_sd", "2.0 .. 50.0"]),
        ({"detect": {"threshhold": 5}}, ["threshhold", "[detect]", "threshold_sd"]),
        ({"nosuch": {}}, ["nosuch", "known sections"]),
        ({"probe": {"n_channels": "384"}}, ["n_channels", "number"]),
        ({"probe": {"n_channels": 383.5}}, ["whole number"]),
        ({"preprocess": {"common_reference": "mean"}}, ["common_reference", "median"]),
        ({"preprocess": {"bandpass_low_hz": 7000.0}}, ["bandpass_low_hz", "below"]),
        ({"preprocess": {"bandpass_high_hz": 16000.0}}, ["Nyquist"]),
        ({"publish": {"zmq": "yes"}}, ["true or false"]),
    ],
)
def test_bad_values_name_the_key_and_the_allowed_range(data, words):
    with pytest.raises(ConfigError) as err:
        from_dict(data)
    for w in words:
        assert w in str(err.value)


def test_replace_validates():
    cfg = Config().replace(source={"speed": 0.0})
    assert cfg.source.speed == 0.0
    with pytest.raises(ConfigError):
        Config().replace(source={"speed": -1.0})


@pytest.mark.parametrize("name", ["demo.toml", "np1-lsl.toml", "np1-zmq.toml", "openephys.toml", "np2.toml"])
def test_shipped_configs_load(name):
    load_config(ROOT / "configs" / name)


def test_demo_toml_matches_the_demo_defaults():
    assert load_config(ROOT / "configs" / "demo.toml") == from_dict(DEMO_SETTINGS)


def test_bad_toml_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[detect\nthreshold_sd = 5")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_readme_parameter_table_is_generated_from_the_code():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- parameters:start -->\n", 1)[1].split("\n<!-- parameters:end -->", 1)[0]
    assert table == parameter_table_markdown(), "run `python -m rtclass.config README.md` to regenerate it"
