import dataclasses
from pathlib import Path

import pytest

from rtclass.apps.demo import DEMO_SETTINGS
from rtclass.config import (
    TABLE_END,
    TABLE_START,
    Config,
    ConfigError,
    from_dict,
    load_config,
    parameter_table_markdown,
    parse_cpu_cores,
)

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


@pytest.mark.parametrize("name", ["demo", "np1-lsl", "np1-zmq", "openephys", "np2"])
def test_shipped_configs_load_by_name(name):
    """The names docs/configuration.md and the README give for ``--config``."""
    load_config(name)


def test_an_unknown_config_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="np1-lsl"):
        load_config("np3-lsl")


def test_demo_toml_matches_the_demo_defaults():
    assert load_config("demo") == from_dict(DEMO_SETTINGS)


def test_bad_toml_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[detect\nthreshold_sd = 5")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_parameter_tables_in_the_docs_are_generated_from_the_code():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    table = doc.split(TABLE_START + "\n", 1)[1].split("\n" + TABLE_END, 1)[0]
    assert table == parameter_table_markdown(), "run `python -m rtclass.config` to regenerate docs/configuration.md"


def test_every_parameter_is_documented_and_everyday_or_advanced():
    tables = parameter_table_markdown()
    for section, values in Config().__dict__.items():
        for f in dataclasses.fields(values):
            assert f.metadata["doc"].strip(), f"[{section}] {f.name} has no doc string"
            assert isinstance(f.metadata["advanced"], bool)
            assert f"| `{section}.{f.name}` |" in tables
    everyday = tables.split("### Advanced settings", 1)[0]
    for key in ("probe.geometry", "matching.templates", "classify.model", "publish.zmq_address", "run.duration_s"):
        assert f"| `{key}` |" in everyday


def test_a_config_of_rtclass_0_1_with_a_units_section_still_loads(tmp_path, caplog):
    old = tmp_path / "old.toml"
    old.write_text(
        '[units]\ntemplates = "ks/"\ndiscovery_interval_s = 1.5\nacg_window_ms = 50\ntable_interval_s = 2.0\n'
    )
    with caplog.at_level("WARNING"):
        cfg = load_config(old)
    assert cfg.matching.templates == "ks/" and cfg.discovery.interval_s == 1.5
    assert cfg.features.acg_window_ms == 50 and cfg.publish.unit_table_interval_s == 2.0
    assert "[units] is split" in caplog.text


def test_a_setting_given_in_units_and_in_its_new_section_is_refused(tmp_path):
    both = tmp_path / "both.toml"
    both.write_text("[units]\ndiscovery_interval_s = 1.5\n[discovery]\ninterval_s = 2.0\n")
    with pytest.raises(ConfigError, match=r"\[units\] discovery_interval_s and \[discovery\] interval_s"):
        load_config(both)


def test_every_key_of_the_former_units_section_has_a_home():
    from rtclass.config import LEGACY_UNITS_KEYS

    cfg = Config()
    for old, (section, key) in LEGACY_UNITS_KEYS.items():
        assert hasattr(getattr(cfg, section), key), old


def test_cpu_cores_are_core_numbers_and_ranges(tmp_path):
    assert parse_cpu_cores("2-3,6") == {2, 3, 6} and parse_cpu_cores("") == set()
    for bad in ("a", "3-1", "-1"):
        with pytest.raises(ConfigError, match="cpu_cores"):
            parse_cpu_cores(bad)
    path = tmp_path / "bad.toml"
    path.write_text('[run]\ncpu_cores = "two"\n')
    with pytest.raises(ConfigError, match="not a core number"):
        load_config(path)
