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
    assert resolve(environ={}).registry_location() == str(
        clean_environ / "data" / "notebook-carbon" / "registry.sqlite"
    )


def test_precedence_file_then_environment_then_arguments(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('region = "DE"\npue = 1.5\nproject = "from-file"\nsample_interval_s = 2\n')
    environ = {"NOTEBOOK_CARBON_CONFIG": str(config), "NOTEBOOK_CARBON_PUE": "1.3"}
    settings = resolve({"project": "from-args"}, environ=environ)
    assert settings.region == "DE"  # file
    assert settings.sample_interval_s == 2.0  # file, int accepted as float
    assert settings.pue == 1.3  # environment beats file
    assert settings.project == "from-args"  # arguments beat everything


def test_impact_settings_defaults():
    settings = Settings()
    assert settings.wue_l_per_kwh is None and settings.embodied_kg is None  # unset: no water, table's figure
    assert (settings.hardware, settings.lifetime_years, settings.reused_hardware) == ("auto", 4.0, False)


def test_impact_settings_from_file_environment_and_arguments(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        'hardware = "gpu-server"\nwue_l_per_kwh = 1.8\nlifetime_years = 5\nreused_hardware = true\n'
    )
    environ = {"NOTEBOOK_CARBON_CONFIG": str(config), "NOTEBOOK_CARBON_LIFETIME_YEARS": "6",
               "NOTEBOOK_CARBON_EMBODIED_KG": "3100"}  # fmt: skip
    settings = resolve({"reused_hardware": "off"}, environ=environ)
    assert settings.hardware == "gpu-server" and settings.wue_l_per_kwh == 1.8  # file
    assert settings.lifetime_years == 6.0 and settings.embodied_kg == 3100.0  # environment beats file
    assert settings.reused_hardware is False  # arguments beat everything


def test_bad_impact_setting_in_the_file_is_an_error(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('hardware = "Laptop"\n')
    with pytest.raises(ConfigError, match="must be one of auto, gpu-server"):
        resolve(environ={"NOTEBOOK_CARBON_CONFIG": str(config)})


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
        ({"attribution": "process"}, {"attribution": "share"}),  # an older version's name for it
        ({"attribution": "machine"}, {"attribution": "machine"}),
        ({"wue_l_per_kwh": "1.8"}, {"wue_l_per_kwh": 1.8}),
        ({"wue_l_per_kwh": "none"}, {"wue_l_per_kwh": None}),
        ({"hardware": " laptop "}, {"hardware": "laptop"}),
        ({"embodied-kg": "3100"}, {"embodied_kg": 3100.0}),
        ({"embodied_kg": "default"}, {"embodied_kg": None}),
        ({"lifetime_years": "6"}, {"lifetime_years": 6.0}),
        ({"reused_hardware": "on"}, {"reused_hardware": True}),
        ({"resource_share": "0.03125"}, {"resource_share": 0.03125}),
        ({"resource_share": "none"}, {"resource_share": None}),
    ],
)
def test_values_typed_as_strings_are_parsed(changes, expected):
    settings = Settings().replace(**changes)
    assert {k: getattr(settings, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pue": "0.9"}, "pue=0.9 is below 1; PUE is facility energy over IT energy, between 1 and 10"),
        ({"pue": "inf"}, "pue=inf is not a finite number; PUE is facility energy over IT energy"),
        ({"pue": "high"}, "setting pue='high'"),
        (
            {"sample_interval_s": "0"},
            "sample_interval_s=0 is below 0.05 s; seconds between power samples, between 0.05 and 60",
        ),
        ({"intensity_g_per_kwh": "-5"}, "intensity_g_per_kwh=-5 is below 0 g/kWh"),
        ({"intensity_g_per_kwh": "1e308"}, "intensity_g_per_kwh=1e308 is above 3000 g/kWh"),
        ({"cpu_tdp_w": "inf"}, "cpu_tdp_w=inf is not a finite number"),
        ({"attribution": "gpu"}, "must be one of share, machine"),
        ({"gpu": "maybe"}, "expected on/off"),
        ({"colour": "red"}, "unknown setting 'colour'"),
        ({"project": ""}, "project must not be empty"),
        ({"project": "p" * 201}, "project must be at most 200 characters"),
        ({"wue_l_per_kwh": "-0.5"}, "wue_l_per_kwh=-0.5 is below 0 L/kWh"),
        ({"wue_l_per_kwh": "inf"}, "wue_l_per_kwh=inf is not a finite number"),
        ({"embodied_kg": "-1"}, "embodied_kg=-1 is below 0 kg"),
        ({"embodied_kg": "lots"}, "setting embodied_kg='lots'"),
        ({"hardware": "mainframe"}, "hardware='mainframe' must be one of auto, gpu-server, server"),
        ({"lifetime_years": "0"}, "lifetime_years=0 is below 0.25 years"),
        ({"lifetime_years": "1e-300"}, "lifetime_years=1e-300 is below 0.25 years"),
        ({"lifetime_years": "nan"}, "lifetime_years=nan is not a finite number"),
        ({"reused_hardware": "perhaps"}, "expected on/off"),
        ({"resource_share": "1.5"}, "resource_share=1.5 is above 1"),
        ({"resource_share": "-0.1"}, "resource_share=-0.1 is below 0"),
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


def test_a_project_name_with_a_nul_is_refused():
    # PostgreSQL cannot store it: every run of the project would be refused at write time.
    with pytest.raises(ConfigError, match="NUL"):
        Settings().replace(project="a\x00b")
