"""Settings: precedence defaults < config file < environment < arguments, parsing and validation."""

from __future__ import annotations

import dataclasses

import pytest

from notebook_carbon.errors import ConfigError
from notebook_carbon.settings import Settings, resolve


def test_defaults_without_file_or_environment():
    settings = resolve(environ={})
    assert settings == Settings()
    assert settings.pue == 1.0 and settings.sample_interval_s == 1.0 and settings.region is None
    assert settings.registry_location().endswith("notebook-carbon/registry.sqlite")


def test_default_registry_lives_in_the_user_data_directory(clean_environ):
    assert resolve(environ={}).registry_location() == str(clean_environ / "data" / "notebook-carbon" / "registry.sqlite")


def test_precedence_file_then_environment_then_arguments(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('region = "DE"\npue = 1.5\nproject = "from-file"\nsample_interval_s = 2\n')
    environ = {"NOTEBOOK_CARBON_CONFIG": str(config), "NOTEBOOK_CARBON_PUE": "1.3"}
    settings = resolve({"project": "from-args"}, environ=environ)
    assert settings.region == "DE"  # file
    assert settings.sample_interval_s == 2.0  # file, int accepted as float
    assert settings.pue == 1.3  # environment beats file
    assert settings.project == "from-args"  # arguments beat everything


def test_registry_from_environment(tmp_path):
    target = tmp_path / "lab.sqlite"
    assert resolve(environ={"NOTEBOOK_CARBON_REGISTRY": str(target)}).registry_location() == str(target)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"gpu": "off"}, {"gpu": False}),
        ({"gpu": "Yes"}, {"gpu": True}),
        ({"intensity_g_per_kwh": "56"}, {"intensity_g_per_kwh": 56.0}),
        ({"intensity_g_per_kwh": "none"}, {"intensity_g_per_kwh": None}),
        ({"region": " FR "}, {"region": "FR"}),
        ({"sample-interval-s": "0.5"}, {"sample_interval_s": 0.5}),
        ({"attribution": "process"}, {"attribution": "process"}),
    ],
)
def test_values_typed_as_strings_are_parsed(changes, expected):
    settings = Settings().replace(**changes)
    assert {k: getattr(settings, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pue": "0.9"}, "pue=0.9 is below 1.0"),
        ({"pue": "high"}, "setting pue='high'"),
        ({"sample_interval_s": "0"}, "between 0.01 and 3600"),
        ({"intensity_g_per_kwh": "-5"}, "zero or positive"),
        ({"attribution": "gpu"}, "machine, process"),
        ({"gpu": "maybe"}, "expected on/off"),
        ({"colour": "red"}, "unknown setting 'colour'"),
        ({"project": ""}, "project must not be empty"),
    ],
)
def test_bad_values_say_what_is_wrong(changes, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings().replace(**changes)


def test_bad_environment_value_names_its_source():
    with pytest.raises(ConfigError, match="from environment"):
        resolve(environ={"NOTEBOOK_CARBON_PUE": "lots"})


def test_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve(environ={"NOTEBOOK_CARBON_CONFIG": str(tmp_path / "nope.toml")})


def test_broken_config_file_is_an_error(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("region = [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        resolve(environ={"NOTEBOOK_CARBON_CONFIG": str(config)})


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().pue = 2.0  # type: ignore[misc]
