"""Absurd numbers never enter: every numeric setting from every source, and every codecarbon row.

Table-driven tests name the values users and broken files have produced (``inf``, ``nan``,
``1e308``, ``10**400``, negatives, a year-1 timestamp); property-based tests feed the same entries
any text and any number. The properties: a setting is either refused with a ``ConfigError`` or lies
within its bounds; an import never raises for a file with codecarbon's header, accounts for every
row once, and stores only runs that ``record.implausible`` accepts and every reader can read back.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notebook_carbon import analysis
from notebook_carbon.errors import ConfigError
from notebook_carbon.importers.codecarbon import import_codecarbon_csv
from notebook_carbon.record import implausible
from notebook_carbon.registry import Registry
from notebook_carbon.settings import FIELDS, SETTING_BOUNDS, Settings, resolve

DATA = Path(__file__).parent / "data"
REAL = DATA / "codecarbon-3.3.2-emissions.csv"

NUMERIC = sorted(name for name, field in FIELDS.items() if "float" in str(field.type))
HUGE = "1" + "0" * 400  # 10**400: float() of it is inf, an int of it overflows float()


def _within(name: str, value: object) -> bool:
    bound = SETTING_BOUNDS[name]
    if value is None:
        return "None" in str(FIELDS[name].type)
    return isinstance(value, float) and math.isfinite(value) and bound.low <= value <= bound.high


# -- settings: the bounds table -------------------------------------------------------------------


def test_every_numeric_setting_has_bounds_and_the_defaults_lie_within() -> None:
    assert sorted(SETTING_BOUNDS) == NUMERIC
    defaults = Settings()
    for name in NUMERIC:
        assert _within(name, getattr(defaults, name)), name
        assert SETTING_BOUNDS[name].about  # the message says what the setting is and its range


def test_run_figures_share_the_run_bounds() -> None:
    from notebook_carbon.record import BOUNDS

    for name in ("pue", "intensity_g_per_kwh"):
        assert (SETTING_BOUNDS[name].low, SETTING_BOUNDS[name].high) == BOUNDS[name][:2]


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e308", "-1", HUGE, "-" + HUGE])
def test_absurd_values_are_refused_from_every_source(tmp_path: Path, name: str, text: str) -> None:
    config = tmp_path / "config.toml"
    toml_value = HUGE if text == HUGE else text  # a TOML integer of 401 digits
    config.write_text(f"{name} = {toml_value}\n")
    sources = {
        "arguments": lambda: Settings().replace(**{name: text}),
        "environment": lambda: resolve(environ={"NOTEBOOK_CARBON_" + name.upper(): text}),
        "config file": lambda: resolve(environ={"NOTEBOOK_CARBON_CONFIG": str(config)}),
        "overrides": lambda: resolve({name: text}, environ={}),
    }
    for source, build in sources.items():
        with pytest.raises(ConfigError) as caught:
            build()
        message = str(caught.value)
        assert message.startswith(f"{name}="), (source, message)
        bound = SETTING_BOUNDS[name]
        assert f"between {bound.low:g} and {bound.high:g}" in message, (source, message)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("pue", "inf", ("pue=inf is not a finite number; PUE is facility energy over IT energy, between 1 and 10 "
                        "(a workstation: 1.0, a typical data centre: 1.1-1.6)")),
        ("pue", "0.9", "pue=0.9 is below 1"),
        ("pue", "11", "pue=11 is above 10"),
        ("cpu_tdp_w", "inf", "cpu_tdp_w=inf is not a finite number"),
        ("cpu_tdp_w", "5000.5", "cpu_tdp_w=5000.5 is above 5000 W"),
        ("intensity_g_per_kwh", "1e308", "intensity_g_per_kwh=1e308 is above 3000 g/kWh"),
        ("lifetime_years", "1e-300", "lifetime_years=1e-300 is below 0.25 years"),
        ("lifetime_years", "nan", "lifetime_years=nan is not a finite number"),
        ("sample_interval_s", "0.01", "sample_interval_s=0.01 is below 0.05 s"),
        ("checkpoint_interval_s", "86400", "checkpoint_interval_s=86400 is above 3600 s"),
        ("ram_w_per_gb", "-0.5", "ram_w_per_gb=-0.5 is below 0 W/GB"),
        ("wue_l_per_kwh", "1e6", "wue_l_per_kwh=1e6 is above 20 L/kWh"),
        ("embodied_kg", "1e9", "embodied_kg=1e9 is above 100000 kg"),
        ("pue", HUGE, f"pue={HUGE[:12]}... (401 characters) is not a finite number"),
    ],
)  # fmt: skip
def test_messages_say_the_value_the_bound_and_what_the_setting_is(
    name: str, text: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings().replace(**{name: text})
    assert str(caught.value).startswith(expected)


def test_the_source_of_a_bad_value_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^pue=inf \(from environment\) is not a finite number"):
        resolve(environ={"NOTEBOOK_CARBON_PUE": "inf"})
    config = tmp_path / "config.toml"
    config.write_text("cpu_tdp_w = inf\n")
    with pytest.raises(ConfigError, match=rf"^cpu_tdp_w=inf \(from config file {config}\) is not a finite"):
        resolve(environ={"NOTEBOOK_CARBON_CONFIG": str(config)})


def test_a_toml_boolean_or_list_is_not_a_number(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    for value in ("true", "[1.2]", "{ x = 1 }"):
        config.write_text(f"pue = {value}\n")
        with pytest.raises(ConfigError, match="setting pue=.* is not valid: expected a number"):
            resolve(environ={"NOTEBOOK_CARBON_CONFIG": str(config)})


def test_settings_built_directly_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="pue=inf is not a finite number"):
        Settings(pue=float("inf"))
    with pytest.raises(ConfigError, match="lifetime_years=1e-300 is below 0.25 years"):
        Settings(lifetime_years=1e-300)
    with pytest.raises(ConfigError, match="cpu_tdp_w must be a number"):
        Settings(cpu_tdp_w="95")  # type: ignore[arg-type]


def test_the_bounds_themselves_are_accepted() -> None:
    for name, bound in SETTING_BOUNDS.items():
        for value in (bound.low, bound.high):
            assert getattr(Settings().replace(**{name: str(value)}), name) == value


# -- settings: properties -------------------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
ANY_TEXT = st.one_of(NUMBER_TEXT, st.text(), st.text(alphabet="0123456789.eE+-_ infINFnaN"))


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(FIELDS)), text=ANY_TEXT)
def test_any_text_for_any_setting_is_accepted_within_bounds_or_refused(name: str, text: str) -> None:
    try:
        changed = Settings().replace(**{name: text})
    except ConfigError as exc:
        assert str(exc)
        return
    if name in SETTING_BOUNDS:
        assert _within(name, getattr(changed, name))


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(NUMERIC), text=ANY_TEXT)
def test_any_environment_value_is_accepted_within_bounds_or_refused(name: str, text: str) -> None:
    if "\x00" in text:  # no environment variable can hold a NUL
        text = text.replace("\x00", "")
    try:
        resolved = resolve(environ={"NOTEBOOK_CARBON_" + name.upper(): text})
    except ConfigError as exc:
        assert "(from environment)" in str(exc)
        return
    assert _within(name, getattr(resolved, name))


@settings(max_examples=100, deadline=None)
@given(
    name=st.sampled_from(NUMERIC),
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**400), max_value=10**400),
        st.booleans(),
    ),
)
def test_any_toml_number_is_accepted_within_bounds_or_refused(tmp_path_factory, name: str, value) -> None:
    config = tmp_path_factory.mktemp("config") / "config.toml"
    if isinstance(value, bool):
        literal = str(value).lower()
    elif isinstance(value, float) and not math.isfinite(value):
        literal = str(value)  # TOML spells them inf, -inf and nan, as Python does
    else:
        literal = repr(value)
    config.write_text(f"{name} = {literal}\n")
    try:
        resolved = resolve(environ={"NOTEBOOK_CARBON_CONFIG": str(config)})
    except ConfigError as exc:
        assert f"(from config file {config})" in str(exc)
        return
    assert _within(name, getattr(resolved, name))


# -- codecarbon rows: properties ------------------------------------------------------------------

with REAL.open(newline="", encoding="utf-8") as _f:
    HEADER, *REAL_ROWS = list(csv.reader(_f))

NUMERIC_COLUMNS = [
    "duration", "emissions", "cpu_energy", "gpu_energy", "ram_energy", "energy_consumed", "water_consumed",
    "gpu_count", "ram_total_size", "pue",
]  # fmt: skip
TEXT_COLUMNS = [
    "timestamp", "project_name", "run_id", "experiment_id", "country_iso_code", "region", "cloud_provider",
    "cloud_region", "codecarbon_version", "cpu_model", "gpu_model", "tracking_mode",
]  # fmt: skip

NUMBER_CELL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=0, max_value=1e3).map(repr),  # plausible, so rows also get through
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    st.sampled_from(["", "1e300", "1e-300", "-0.0", "1e15", "1e12", "100001", "0", "1"]),
    st.text(max_size=8),
)
TIMESTAMP_CELL = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(
        ["0001-01-01T00:00:00", "9999-12-31T23:59:59", "1999-12-31T23:59:59Z", "2026-11-22T16:03:28"]
    ),
    st.text(max_size=30),
)


@st.composite
def codecarbon_rows(draw) -> list[list[str]]:
    """One to three rows of the real file with some numeric and text cells replaced."""
    rows = []
    for index in range(draw(st.integers(min_value=1, max_value=3))):
        row = list(REAL_ROWS[draw(st.integers(min_value=0, max_value=len(REAL_ROWS) - 1))])
        # mostly a new run (the registry is shared by the examples), sometimes a row of the same run
        if draw(st.booleans()) or index == 0:
            row[HEADER.index("run_id")] = str(draw(st.uuids()))
        for column in draw(st.lists(st.sampled_from(NUMERIC_COLUMNS), max_size=4, unique=True)):
            row[HEADER.index(column)] = draw(NUMBER_CELL)
        for column in draw(st.lists(st.sampled_from(TEXT_COLUMNS), max_size=3, unique=True)):
            row[HEADER.index(column)] = draw(
                TIMESTAMP_CELL if column == "timestamp" else st.text(max_size=250)
            )
        rows.append(row)
    return rows


def _write(path: Path, rows: list[list[str]]) -> Path:
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, *rows])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@pytest.fixture
def registry(registry_url: str):
    with Registry.open(registry_url) as reg:
        yield reg


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=codecarbon_rows())
def test_fuzzed_rows_import_only_plausible_readable_runs(tmp_path: Path, registry: Registry, rows) -> None:
    path = _write(tmp_path / "emissions.csv", rows)

    report = import_codecarbon_csv(registry, path)  # never raises for a file with codecarbon's header

    # every row accounted for once: imported, a duplicate (or an earlier cumulative row), or rejected
    assert report.imported + report.skipped_duplicates + len(report.errors) == len(rows)
    lines = path.read_text(encoding="utf-8").count("\n")  # a quoted newline in a cell spans lines
    assert [e.line for e in report.errors] == sorted({e.line for e in report.errors})  # one each, in order
    for error in report.errors:
        assert 2 <= error.line <= lines and "\n" not in error.message and error.message
        # a row held back for another row of its run has no column at fault of its own
        assert error.columns or "of the same codecarbon run was rejected" in error.message
        assert all(column in HEADER for column in error.columns)
    stored = registry.runs()
    for run in stored:
        assert implausible(run) is None, run
        for component in registry.components(run["uid"]):
            assert implausible({"energy_j": component["energy_j"]}) is None
    frame = analysis.runs(registry)
    assert len(frame) == len(stored)
    assert import_codecarbon_csv(registry, path).imported == 0  # a re-import duplicates nothing


def test_a_lone_surrogate_is_no_param():
    """Text decoded with errors='surrogateescape' (an undecodable file name) is not Unicode: no
    database stores it as text, so it is refused where it is given, saying what to do."""
    from notebook_carbon.errors import ConfigError
    from notebook_carbon.record import recordable_param

    for value in ("data/\udcff.csv", {"k\udcff": 1}, ["ok", "\udcff"]):
        with pytest.raises(ConfigError, match="lone surrogate.*errors='replace'"):
            recordable_param(value, "path")
    assert recordable_param("données", "path") == "données"
