"""The data commands as a user runs them: demo-data -> validate -> features, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from features.build import build_features
from features.dataset import load_dataset
from serving.cli import app
from tests.conftest import History

runner = CliRunner()


def test_demo_data_validate_features_end_to_end(tmp_path):
    data = tmp_path / "world"
    # The installed console script, in a subprocess, as a user would run it.
    exe = Path(sys.executable).parent / "ipcredit"
    done = subprocess.run(
        [str(exe), "demo-data", "--out", str(data), "--entities", "400", "--seed", "3"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in data.iterdir()) == [
        "entities.parquet",
        "events.parquet",
        "lists.parquet",
        "relations.parquet",
    ]
    done = subprocess.run([str(exe), "validate", "--data", str(data)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stderr
    out = tmp_path / "features.csv"
    done = subprocess.run(
        [str(exe), "features", "--data", str(data), "--as-of", "2024-06-30", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out)
    expected = build_features(load_dataset(data), date(2024, 6, 30))
    assert table["entity_id"].tolist() == expected["entity_id"].tolist()
    registered = pd.to_datetime(pd.read_parquet(data / "entities.parquet")["registered_on"])
    assert len(table) == (registered <= "2024-06-30").sum()


def test_demo_data_in_csv_is_valid_too(tmp_path):
    result = runner.invoke(app, ["demo-data", "--out", str(tmp_path), "--entities", "200", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "events.csv").exists()
    assert runner.invoke(app, ["validate", "--data", str(tmp_path)]).exit_code == 0


def _broken(history: History, folder: Path) -> None:
    eid = history.entity()
    history.event(eid, "patent_filed", date(2020, 1, 1), quantity=0)
    history.event("91210600MA00000000", "patent_filed", date(2020, 1, 1))
    history.write(folder, fmt="csv")


def test_validate_reports_and_exits_2(history, tmp_path):
    _broken(history, tmp_path)
    result = runner.invoke(app, ["validate", "--data", str(tmp_path), "--json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["valid"] is False and report["total"] == 2
    assert report["problems"][0] == {
        "table": "events",
        "row": 1,
        "column": "quantity",
        "value": "0",
        "message": "must be at least 1",
    }
    assert report["problems"][1]["message"] == "refers to an entity that is not in entities"


def test_features_on_invalid_data_writes_nothing(history, tmp_path):
    _broken(history, tmp_path / "data")
    out = tmp_path / "out" / "features.parquet"
    result = runner.invoke(
        app, ["features", "--data", str(tmp_path / "data"), "--as-of", "2021-01-01", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "nothing was written" in result.output
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_bad_arguments_are_named(history, tmp_path):
    history.entity()
    history.write(tmp_path)
    result = runner.invoke(
        app, ["features", "--data", str(tmp_path), "--as-of", "2021-13-01", "--out", str(tmp_path / "f.parquet")]
    )
    assert result.exit_code == 2 and "--as-of must be a date" in result.output
    result = runner.invoke(
        app, ["features", "--data", str(tmp_path), "--as-of", "2021-01-01", "--out", str(tmp_path / "f.xlsx")]
    )
    assert result.exit_code == 2 and ".parquet or .csv" in result.output
    result = runner.invoke(app, ["validate", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_a_record_dated_after_today_is_refused_by_the_commands_today(history, tmp_path):
    # "Today" is the command line's (IPCREDIT_TODAY pins it, as for every date a command names).
    eid = history.entity()
    history.event(eid, "patent_filed", date(2025, 3, 1))
    history.event(eid, "infringement_penalty", date(2025, 9, 1))
    history.write(tmp_path / "data", fmt="csv")
    env = {"IPCREDIT_TODAY": "2025-06-30"}
    result = runner.invoke(app, ["validate", "--data", str(tmp_path / "data"), "--json"], env=env)
    assert result.exit_code == 2, result.output
    problems = json.loads(result.stdout.strip().splitlines()[-1])["problems"]
    assert {(p["table"], p["row"], p["column"], p["value"]) for p in problems} == {
        ("events", 2, "occurred_on", "2025-09-01"),
        ("events", 2, "recorded_on", "2025-09-01"),
    }
    assert "must not be after today (2025-06-30)" in problems[0]["message"]
    assert (
        runner.invoke(
            app, ["validate", "--data", str(tmp_path / "data")], env={"IPCREDIT_TODAY": "2025-09-01"}
        ).exit_code
        == 0
    )
    # a simulated world may not end after today either: its own records would be refused
    result = runner.invoke(
        app, ["demo-data", "--out", str(tmp_path / "w"), "--entities", "50", "--end", "2025-12-31"], env=env
    )
    assert result.exit_code == 2 and "--end must not be after today (2025-06-30)" in result.output
    assert not (tmp_path / "w").exists()


def test_an_as_of_date_outside_the_delivery_is_warned_about_and_still_served(history, tmp_path):
    # A delivery whose records end on 2024-03-31: a month later is the delivery's present; a year later its
    # windows would be empty for want of newer records, not for good conduct; before its first record every
    # history is empty. The command says so, names the dates, and writes the table all the same.
    eid = history.entity(registered_on=date(2018, 1, 1))
    history.event(eid, "patent_filed", date(2019, 5, 1))
    history.event(eid, "infringement_penalty", date(2024, 3, 31))
    history.write(tmp_path / "data")

    def features(as_of: str):
        out = tmp_path / f"{as_of}.parquet"
        result = runner.invoke(app, ["features", "--data", str(tmp_path / "data"), "--as-of", as_of, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert len(pd.read_parquet(out)) == 1
        return " ".join(result.output.split())

    assert "warning" not in features("2024-04-30")
    stale = features("2025-03-31")
    assert "warning: the delivery's last record is of 2024-03-31, 365 days before the as-of date 2025-03-31" in stale
    assert "use --as-of 2024-03-31" in stale
    assert "warning: --as-of 2018-06-30 is before the delivery's first record (2019-05-01)" in features("2018-06-30")
