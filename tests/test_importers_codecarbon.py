"""Importing codecarbon's emissions.csv into real SQLite registries, and the import-codecarbon command.

``data/codecarbon-3.3.2-emissions.csv`` is a real file written by codecarbon 3.3.2's
OfflineEmissionsTracker: three runs of a busy loop, project ``cifar-sweep``, country FRA, on a
2-core VM with no RAPL and no GPU. ``data/codecarbon-malformed-emissions.csv`` is hand-written: good
rows on lines 2 and 6, a bad number on line 3, a negative energy on line 4, a bad timestamp on line 5.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

import pytest

from notebook_carbon import cli
from notebook_carbon.errors import ConfigError
from notebook_carbon.importers.codecarbon import (
    ImportReport,
    RowError,
    import_codecarbon_csv,
    method_for,
    read_codecarbon_csv,
)
from notebook_carbon.registry import Registry

DATA = Path(__file__).parent / "data"
REAL = DATA / "codecarbon-3.3.2-emissions.csv"
MALFORMED = DATA / "codecarbon-malformed-emissions.csv"

# The figures of the real file, copied from it by hand: (name, run_id, timestamp, duration s,
# emissions kg, cpu kWh, ram kWh, energy_consumed kWh); gpu_energy 0 with gpu_count 0; pue 1.0.
REAL_ROWS = [
    ("lr-0", "7ada0cad-0996-4fc5-8a33-41096e74ca2d", "2026-11-22T16:03:28", 1.0118406189999405,
     3.3820729442433596e-07, 4.76484216070005e-07, 5.558728661110814e-06, 6.035212877180819e-06),
    ("lr-1", "40ab8b92-377f-4cba-8933-109224697a87", "2026-11-22T16:03:30", 2.001757919000056,
     6.709081308100995e-07, 9.554812950862157e-07, 1.101668328333416e-05, 1.1972164578420375e-05),
    ("lr-2", "3c9ad987-a59b-4a39-b1f1-9ccd5e77a190", "2026-11-22T16:03:32", 1.5017383919998792,
     5.018712763203221e-07, 7.111287647217533e-07, 8.244621272222554e-06, 8.955750036944307e-06),
]  # fmt: skip
J_PER_KWH = 3.6e6


@pytest.fixture
def registry(registry_url: str):
    """A fresh registry: an SQLite file, and (in CI) a PostgreSQL database."""
    with Registry.open(registry_url) as reg:
        yield reg


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    return table[0], table[1:]


def _write(
    path: Path, header: list[str], rows: list[list[str]], *, bom: str = "", newline: str = "\n"
) -> Path:
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows([header, *rows])
    path.write_bytes((bom + out.getvalue()).encode("utf-8"))
    return path


def _edited(tmp_path: Path, name: str, **values: str) -> Path:
    """The real file's first row with some columns set to other values."""
    header, rows = _rows(REAL)
    row = rows[0]
    for column, value in values.items():
        row[header.index(column)] = value
    return _write(tmp_path / name, header, [row])


# -- the real file --------------------------------------------------------------------------------


def test_real_file_imports_three_runs_with_converted_units(registry: Registry) -> None:
    report = import_codecarbon_csv(registry, REAL)

    assert report == ImportReport(imported=3, skipped_duplicates=0, errors=())
    runs = {run["name"]: run for run in registry.runs()}
    assert sorted(runs) == ["lr-0", "lr-1", "lr-2"]
    for line, figures in enumerate(REAL_ROWS, 2):
        name, run_id, timestamp, duration_s, kg, cpu_kwh, ram_kwh, total_kwh = figures
        run = runs[name]
        assert run["uid"] == run_id.replace("-", "")
        assert run["project"] == "cifar-sweep" and run["status"] == "ok"
        # codecarbon's timestamp is the end of the run, naive local time
        ended_at = datetime.fromisoformat(timestamp).timestamp()
        assert run["ended_at"] == pytest.approx(ended_at, abs=1e-6)
        assert run["started_at"] == pytest.approx(ended_at - duration_s, abs=1e-6)
        assert run["duration_s"] == duration_s
        assert run["energy_j"] == pytest.approx(total_kwh * 3.6e6, rel=1e-12)
        assert run["cpu_energy_j"] == pytest.approx(cpu_kwh * 3.6e6, rel=1e-12)
        assert run["ram_energy_j"] == pytest.approx(ram_kwh * 3.6e6, rel=1e-12)
        assert run["gpu_energy_j"] is None and run["gpu_method"] == "none"  # no GPU on that VM
        assert run["cpu_method"] == method_for("cpu") and run["ram_method"] == method_for("ram")
        assert run["emissions_g"] == pytest.approx(kg * 1000, rel=1e-12)
        assert run["intensity_g_per_kwh"] == pytest.approx(kg * 1000 / total_kwh, rel=1e-12)
        assert 55 < run["intensity_g_per_kwh"] < 57  # France's figure in codecarbon 3.3.2's data
        assert run["intensity_region"] == "FR"
        assert run["intensity_source"] == "codecarbon 3.3.2 (imported)"
        assert run["pue"] == 1.0 and run["water_l"] == 0.0
        assert run["cpu_model"] == "AMD EPYC" and run["gpu_model"] is None and run["gpu_count"] == 0
        assert run["attribution"] == "machine"
        notes = " | ".join(run["notes"])
        assert f"codecarbon 3.3.2 {REAL.name} line {line}, run_id {run_id}" in notes
        assert "local time" in notes and "started_at = timestamp - duration" in notes
        assert str(DATA) not in notes  # the file's name, not where it lay
        components = registry.components(run["uid"])
        assert [(c["component"], c["method"]) for c in components] == [
            ("cpu", method_for("cpu")),
            ("ram", method_for("ram")),
        ]
        assert sum(c["energy_j"] for c in components) == pytest.approx(run["energy_j"], rel=1e-9)
        assert all("measurement method not recorded by codecarbon" in c["reason"] for c in components)


def test_methods_are_the_least_certain_labels_until_the_vocabulary_has_imported() -> None:
    from notebook_carbon.meters.base import METHODS

    if "imported" in METHODS:
        assert {method_for(c) for c in ("cpu", "gpu", "ram")} == {"imported"}
    else:
        assert (method_for("cpu"), method_for("ram"), method_for("gpu")) == (
            "estimate-tdp",
            "estimate-ram",
            "nvml-power",
        )


def test_reimport_skips_duplicates_and_changes_nothing(registry: Registry) -> None:
    import_codecarbon_csv(registry, REAL)
    before = registry.runs()

    again = import_codecarbon_csv(registry, REAL, project="other")

    assert again == ImportReport(imported=0, skipped_duplicates=3, errors=())
    assert registry.runs() == before  # not duplicated, not moved to the other project


def test_project_override(registry: Registry) -> None:
    import_codecarbon_csv(registry, REAL, project="thesis")
    assert {run["project"] for run in registry.runs()} == {"thesis"}


# -- bad rows and bad files -----------------------------------------------------------------------


def test_malformed_rows_are_reported_by_line_and_good_rows_imported(registry: Registry) -> None:
    report = import_codecarbon_csv(registry, MALFORMED)

    assert report.imported == 2 and report.skipped_duplicates == 0
    assert [(e.line, e.run_id) for e in report.errors] == [
        (3, "22222222-2222-4222-8222-222222222222"),
        (4, "33333333-3333-4333-8333-333333333333"),
        (5, "44444444-4444-4444-8444-444444444444"),
    ]
    assert "duration '1.2.3' is not a number" in report.errors[0].message
    assert "negative energy: cpu_energy -0.0001 kWh" in report.errors[1].message
    assert "timestamp 'yesterday at noon' is not an ISO 8601" in report.errors[2].message
    runs = registry.runs(project="malformed-demo")
    assert sorted(run["name"] for run in runs) == ["good-1", "good-2"]
    assert {run["intensity_region"] for run in runs} == {"DE"}
    # a rejected row leaves nothing behind: no run, no components
    for error in report.errors:
        uid = error.run_id.replace("-", "")
        assert registry.get_run(uid) is None and registry.components(uid) == []


def test_missing_required_column_imports_nothing(tmp_path: Path, registry: Registry) -> None:
    header, rows = _rows(REAL)
    drop = [header.index("energy_consumed"), header.index("emissions")]
    path = _write(
        tmp_path / "cut.csv",
        [h for i, h in enumerate(header) if i not in drop],
        [[v for i, v in enumerate(row) if i not in drop] for row in rows],
    )

    with pytest.raises(ConfigError, match=r"lacks the columns emissions, energy_consumed") as info:
        import_codecarbon_csv(registry, path)
    assert "nothing was imported" in str(info.value)
    assert registry.runs() == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        (b"", "is empty"),
        (b"timestamp,duration\n\xff\xfe,1\n", "not UTF-8"),
    ],
)
def test_unreadable_files(tmp_path: Path, registry: Registry, content: bytes | None, expected: str) -> None:
    path = tmp_path / "emissions.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=expected):
        import_codecarbon_csv(registry, path)
    assert registry.runs() == []


def test_shifted_row_is_rejected_whole(tmp_path: Path, registry: Registry) -> None:
    header, rows = _rows(REAL)
    rows[1] = rows[1][:-3]  # cut short, as a crash mid-write would leave it
    report = import_codecarbon_csv(registry, _write(tmp_path / "short.csv", header, rows))
    assert report.imported == 2
    assert [e.line for e in report.errors] == [3]
    assert "fields where the header has" in report.errors[0].message


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("emissions", "", "emissions is empty"),
        ("duration", "nan", "not a finite number"),
        ("duration", "-1", "duration -1 must be at least 0"),
        ("pue", "0", "pue 0 is outside the plausible range 1 to 10"),
        ("gpu_count", "1.5", "gpu_count '1.5' is not a whole number"),
        ("ram_energy", "-1e-9", "negative energy: ram_energy -1e-9 kWh"),
        ("timestamp", "", "timestamp is empty"),
    ],
)
def test_row_checks(tmp_path: Path, registry: Registry, column: str, value: str, expected: str) -> None:
    report = import_codecarbon_csv(registry, _edited(tmp_path, "bad.csv", **{column: value}))
    assert report.imported == 0 and len(report.errors) == 1
    assert report.errors[0].line == 2 and expected in report.errors[0].message


# -- absurd numbers: checked against record.BOUNDS before anything is written ---------------------


def test_an_overflowing_gpu_count_is_reported_and_the_other_rows_imported(
    tmp_path: Path, registry: Registry
) -> None:
    header, rows = _rows(REAL)
    rows[1][header.index("gpu_count")] = "1e300"  # once a traceback with the first row already written
    report = import_codecarbon_csv(registry, _write(tmp_path / "gpus.csv", header, rows))

    assert report.imported == 2
    assert [(e.line, e.columns) for e in report.errors] == [(3, ("gpu_count",))]
    assert "gpu_count 1e300 GPUs is outside the plausible range 0 to 100000 GPUs" in report.errors[0].message
    assert sorted(run["name"] for run in registry.runs()) == ["lr-0", "lr-2"]


def test_a_timestamp_in_year_1_is_reported_and_the_other_rows_imported(
    tmp_path: Path, registry: Registry
) -> None:
    header, rows = _rows(REAL)
    rows[0][header.index("timestamp")] = "0001-01-01T00:00:00"  # once a ValueError: year 0 is out of range
    report = import_codecarbon_csv(registry, _write(tmp_path / "year1.csv", header, rows))

    assert report.imported == 2
    assert [(e.line, e.columns) for e in report.errors] == [(2, ("timestamp",))]
    assert report.errors[0].message == (
        "timestamp '0001-01-01T00:00:00' is outside the plausible range 2000-01-01 to 2100-01-01"
    )


@pytest.mark.parametrize(
    ("values", "columns", "expected"),
    [
        ({"energy_consumed": "1e300"}, ("energy_consumed",),
         "energy_consumed 1e300 kWh is outside the plausible range 0 to 2.78e+08 kWh"),
        ({"cpu_energy": "1e10"}, ("cpu_energy",), "cpu_energy 1e10 kWh is outside the plausible range"),
        ({"emissions": "1e200"}, ("emissions",), "emissions 1e200 kg is outside the plausible range 0 to 1e+09 kg"),
        ({"duration": "1e300"}, ("duration",), "duration 1e300 s is outside the plausible range 0 to 3.16e+08 s"),
        ({"water_consumed": "1e300"}, ("water_consumed",), "water_consumed 1e300 L is outside the plausible range"),
        ({"pue": "1e300"}, ("pue",), "pue 1e300 is outside the plausible range 1 to 10"),
        ({"pue": "0.5"}, ("pue",), "pue 0.5 is outside the plausible range 1 to 10"),
        ({"gpu_count": "100001"}, ("gpu_count",), "gpu_count 100001 GPUs is outside the plausible range 0 to 100000"),
        ({"ram_total_size": "1e300"}, ("ram_total_size",), "ram_total_size 1e300 GB is outside the plausible range"),
        ({"timestamp": "9999-12-31T23:59:59"}, ("timestamp",), "timestamp '9999-12-31T23:59:59' is outside"),
        ({"timestamp": "2000-01-01T00:00:05Z", "duration": "100"}, ("timestamp", "duration"),
         "timestamp '2000-01-01T00:00:05Z' minus duration 100 s starts the run before 2000-01-01"),
        ({"emissions": "1", "energy_consumed": "1e-06", "cpu_energy": "", "ram_energy": ""},
         ("emissions", "energy_consumed"),
         "emissions 1 kg over energy_consumed 1e-06 kWh is 1e+09 g/kWh, outside the plausible range 0 to 3000 g/kWh"),
    ],
)  # fmt: skip
def test_implausible_figures_are_rejected_with_their_bound(
    tmp_path: Path, registry: Registry, values: dict[str, str], columns: tuple[str, ...], expected: str
) -> None:
    report = import_codecarbon_csv(registry, _edited(tmp_path, "absurd.csv", **values))
    assert report.imported == 0 and len(report.errors) == 1
    assert report.errors[0].columns == columns
    assert expected in report.errors[0].message
    assert registry.runs() == []


def test_every_bad_row_is_reported_once_on_one_line(tmp_path: Path, registry: Registry) -> None:
    header, rows = _rows(REAL)
    good = rows[0]
    bad = []
    for n, (column, value) in enumerate([("gpu_count", "1e300"), ("timestamp", "0001-01-01T00:00:00"),
                                         ("cpu_model", "Xeon\x00"), ("duration", "nan")]):  # fmt: skip
        row = list(rows[1])
        row[header.index("run_id")] = f"{n + 1:08d}-0000-4000-8000-000000000000"
        row[header.index(column)] = value
        bad.append(row)
    report = import_codecarbon_csv(registry, _write(tmp_path / "many.csv", header, [bad[0], good, *bad[1:]]))

    assert report.imported == 1
    assert [(e.line, e.columns) for e in report.errors] == [
        (2, ("gpu_count",)),
        (4, ("timestamp",)),
        (5, ("cpu_model",)),
        (6, ("duration",)),
    ]
    assert all("\n" not in str(e) for e in report.errors)
    assert "cpu_model contains a NUL character" in report.errors[2].message
    again = import_codecarbon_csv(registry, tmp_path / "many.csv")
    assert (again.imported, again.skipped_duplicates, len(again.errors)) == (0, 1, 4)  # nothing duplicated
    assert len(registry.runs()) == 1


# -- what codecarbon files look like in the wild --------------------------------------------------


def test_bom_windows_newlines_extra_columns_and_older_version(tmp_path: Path, registry: Registry) -> None:
    header, rows = _rows(REAL)
    # codecarbon 2.x wrote neither pue, wue nor water_consumed; a spreadsheet may add a column
    dropped = {"pue", "wue", "water_consumed", "ram_used_gb", "cpu_utilization_percent"}
    keep = [i for i, h in enumerate(header) if h not in dropped]
    path = _write(
        tmp_path / "old.csv",
        [header[i] for i in keep] + ["comment"],
        [[row[i] for i in keep] + ["checked by hand"] for row in rows],
        bom="\ufeff",
        newline="\r\n",
    )

    report = import_codecarbon_csv(registry, path)

    assert report == ImportReport(imported=3, skipped_duplicates=0, errors=())
    run = registry.get_run(REAL_ROWS[0][1].replace("-", ""))
    assert run["energy_j"] == pytest.approx(REAL_ROWS[0][7] * J_PER_KWH, rel=1e-12)
    assert run["pue"] == 1.0 and run["water_l"] is None
    assert any("no pue column" in note for note in run["notes"])


def test_pue_is_divided_out_of_codecarbons_energy(tmp_path: Path, registry: Registry) -> None:
    # codecarbon multiplies each component's energy by the PUE; the registry stores IT energy
    path = _edited(tmp_path, "pue.csv", pue="1.5", cpu_energy="0.003", ram_energy="0.0015",
                   energy_consumed="0.0045", emissions="0.000252")  # fmt: skip
    import_codecarbon_csv(registry, path)
    run = registry.last_run()
    assert run["pue"] == 1.5
    assert run["energy_j"] == pytest.approx(0.0045 * J_PER_KWH / 1.5, rel=1e-12)  # 10,800 J
    assert run["cpu_energy_j"] == pytest.approx(0.003 * J_PER_KWH / 1.5, rel=1e-12)
    assert run["emissions_g"] == pytest.approx(0.252, rel=1e-12)
    # g/kWh of grid electricity: emissions over IT energy x PUE
    assert run["intensity_g_per_kwh"] == pytest.approx(0.252 / (run["energy_j"] / J_PER_KWH * 1.5), rel=1e-12)


def test_gpu_row(tmp_path: Path, registry: Registry) -> None:
    model = "2 x NVIDIA A100-SXM4-40GB"  # as codecarbon writes it
    path = _edited(tmp_path, "gpu.csv", gpu_count="2", gpu_model=model, gpu_energy="0.01",
                   energy_consumed=str(0.01 + 4.76484216070005e-07 + 5.558728661110814e-06),
                   cloud_provider="aws", cloud_region="eu-west-3")  # fmt: skip
    import_codecarbon_csv(registry, path)
    run = registry.last_run()
    assert run["gpu_count"] == 2 and run["gpu_model"] == model
    assert run["gpu_energy_j"] == pytest.approx(36_000.0) and run["gpu_method"] == method_for("gpu")
    assert run["intensity_region"] == "aws:eu-west-3"
    gpu = registry.components(run["uid"])[0]
    assert (gpu["component"], gpu["device"], gpu["method"]) == ("gpu", model, method_for("gpu"))


def test_cumulative_flush_rows_of_one_run_import_the_latest(tmp_path: Path, registry: Registry) -> None:
    header, rows = _rows(REAL)
    flushed = list(rows[0])  # what flush() wrote a moment before stop() wrote the final row
    earlier = {"timestamp": "2026-11-22T16:03:27", "duration": "0.5", "energy_consumed": "3e-06"}
    for column, value in earlier.items():
        flushed[header.index(column)] = value
    path = _write(tmp_path / "append.csv", header, [flushed, rows[0]])

    report = import_codecarbon_csv(registry, path)

    assert report == ImportReport(imported=1, skipped_duplicates=1, errors=())
    run = registry.last_run()
    assert run["duration_s"] == REAL_ROWS[0][3]
    assert any("lines 2 of append.csv were earlier cumulative rows" in note for note in run["notes"])


def test_a_run_with_a_rejected_row_is_held_back_whole(tmp_path: Path, registry: Registry) -> None:
    header, rows = _rows(REAL)
    final = list(rows[0])
    final[header.index("duration")] = "oops"
    report = import_codecarbon_csv(registry, _write(tmp_path / "held.csv", header, [rows[0], final]))
    assert report.imported == 0
    assert [e.line for e in report.errors] == [2, 3]
    assert "line 3 of the same codecarbon run was rejected" in report.errors[0].message


def test_rows_without_run_id_get_a_stable_uid(tmp_path: Path, registry: Registry) -> None:
    path = _edited(tmp_path, "anon.csv", run_id="", experiment_id="5b0fa12a-3dd7-45bb-9766-cc326314d9f1")
    first = import_codecarbon_csv(registry, path)
    again = import_codecarbon_csv(registry, path)
    assert (first.imported, again.skipped_duplicates) == (1, 1)
    run = registry.last_run()
    assert run["name"] is None  # codecarbon's default experiment_id names nothing
    assert any("no run_id" in note for note in run["notes"])


def test_timestamp_with_an_offset_is_taken_as_given(tmp_path: Path, registry: Registry) -> None:
    import_codecarbon_csv(registry, _edited(tmp_path, "utc.csv", timestamp="2026-11-22T16:03:28Z"))
    run = registry.last_run()
    assert run["ended_at"] == datetime(2026, 11, 22, 16, 3, 28, tzinfo=timezone.utc).timestamp()
    assert any("(UTC+00:00) is the end of the run" in note for note in run["notes"])


def test_read_writes_nothing_and_summary_counts() -> None:
    log = read_codecarbon_csv(MALFORMED)
    assert log.name == MALFORMED.name and len(log.runs) == 2 and len(log.errors) == 3
    one_error = (RowError(5, None, "x"),)
    assert ImportReport(3, 0, one_error).summary() == "imported 3 runs, skipped 0 duplicates, 1 row rejected"
    assert ImportReport(1, 1, ()).summary() == "imported 1 run, skipped 1 duplicate, 0 rows rejected"


# -- the command ----------------------------------------------------------------------------------


def test_cli_imports_and_reimports(tmp_path: Path, capsys) -> None:
    db = tmp_path / "registry.sqlite"
    assert cli.main(["import-codecarbon", str(REAL), "--registry", str(db)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{REAL}: imported 3 runs, skipped 0 duplicates, 0 rows rejected\n" and err == ""

    assert cli.main(["import-codecarbon", str(REAL), "--registry", str(db)]) == 0
    assert capsys.readouterr().out == f"{REAL}: imported 0 runs, skipped 3 duplicates, 0 rows rejected\n"
    with Registry.open(db) as reg:
        assert len(reg.runs()) == 3


def test_cli_reports_rejected_rows_and_exits_1(tmp_path: Path, capsys) -> None:
    db = tmp_path / "registry.sqlite"
    code = cli.main(["import-codecarbon", str(REAL), str(MALFORMED), "--registry", str(db), "--project", "p"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines() == [
        f"{REAL}: imported 3 runs, skipped 0 duplicates, 0 rows rejected",
        f"{MALFORMED}: imported 2 runs, skipped 0 duplicates, 3 rows rejected",
    ]
    lines = err.splitlines()
    assert [line.split(": ", 1)[0] for line in lines[:3]] == [f"{MALFORMED}:{n}" for n in (3, 4, 5)]
    assert "negative energy" in lines[1] and "run the same command again" in lines[3]
    with Registry.open(db) as reg:
        assert len(reg.runs(project="p")) == 5


def test_cli_unreadable_file_exits_2_and_imports_nothing(tmp_path: Path, capsys) -> None:
    db = tmp_path / "registry.sqlite"
    missing = tmp_path / "nowhere.csv"
    assert cli.main(["import-codecarbon", str(REAL), str(missing), "--registry", str(db)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith(f"notebook-carbon: error: cannot read {missing}")
    assert not db.exists()  # checked before the registry was even opened


def test_cli_missing_column_and_bad_project_exit_2(tmp_path: Path, capsys) -> None:
    header, rows = _rows(REAL)
    cut = _write(tmp_path / "cut.csv", header[1:], [row[1:] for row in rows])
    assert cli.main(["import-codecarbon", str(cut), "--registry", str(tmp_path / "r.sqlite")]) == 2
    assert "lacks the column timestamp" in capsys.readouterr().err

    assert cli.main(["import-codecarbon", str(REAL), str(REAL), "--project", " "]) == 2
    err = capsys.readouterr().err
    assert err == "notebook-carbon: error: --project must not be empty\n"  # said once


def test_cli_needs_a_file(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["import-codecarbon"])
    assert info.value.code == 2
    assert "FILE" in capsys.readouterr().err


def test_cli_default_registry_comes_from_settings(tmp_path: Path, monkeypatch, capsys) -> None:
    db = tmp_path / "from-settings.sqlite"
    monkeypatch.setenv("NOTEBOOK_CARBON_REGISTRY", str(db))
    assert cli.main(["import-codecarbon", str(REAL)]) == 0
    with Registry.open(db) as reg:
        assert len(reg.runs(project="cifar-sweep")) == 3
