"""A real public record (Anchorage's restaurant inspections) mapped to the contract, and trained and scored
through the command line without options."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from typer.testing import CliRunner

from features import uscc
from features.records import RecordError, anchorage_inspections, read_anchorage_source
from serving.cli import app

runner = CliRunner()


def _source(**changes) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "business_name": ["Pho Grill", "PHO GRILL ", "Taco King #2", "Taco King #2"],
            "inspection_score": [100, 85, 89, 90],
            "Year": [2003, 2016, 2005, 2005],
            "NumberofLocations": [53, 53, 89, 89],
            "Weekend": [False, True, False, False],
        }
    )
    for column, (row, value) in changes.items():
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    return frame


def test_the_record_maps_to_one_entity_per_business_with_year_end_dates():
    world = anchorage_inspections(_source())
    entities, events = world.entities.set_index("name"), world.events
    assert list(entities.index) == ["PHO GRILL", "TACO KING #2"]  # names trimmed and folded to one case
    assert all(uscc.is_valid(code) for code in entities["entity_id"])
    assert entities.loc["PHO GRILL", "registered_on"] == date(2003, 12, 31)  # the day its first year is complete
    assert entities.loc["TACO KING #2", "locations"] == 89
    assert set(entities["industry"]) == {"H"} and set(entities["region"]) == {"000000"}
    assert list(events["event_type"]) == [
        "inspection_passed",
        "inspection_failed",
        "inspection_failed",
        "inspection_passed",
    ]
    assert (
        list(events["recorded_on"])
        == list(events["occurred_on"])
        == [date(2003, 12, 31), date(2016, 12, 31), date(2005, 12, 31), date(2005, 12, 31)]
    )
    assert (events["entity_id"].iloc[:2] == entities.loc["PHO GRILL", "entity_id"]).all()
    assert world.lists.empty and world.relations.empty
    stricter = anchorage_inspections(_source(), fail_below=100)
    assert (stricter.events["event_type"] == "inspection_failed").sum() == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"inspection_score": (2, "ninety")}, "row 3, column inspection_score: 'ninety'"),
        ({"inspection_score": (0, 140)}, "row 1, column inspection_score"),
        ({"Year": (1, 9999)}, "row 2, column Year"),
        ({"NumberofLocations": (3, 0)}, "row 4, column NumberofLocations"),
        ({"business_name": (1, "  ")}, "row 2, column business_name: blank"),
        ({"Weekend": (0, "sometimes")}, "row 1, column Weekend: 'sometimes'"),
    ],
)
def test_a_bad_source_row_is_named(changes, message):
    with pytest.raises(RecordError, match=message):
        anchorage_inspections(_source(**changes))


def test_a_source_without_the_columns_or_rows_is_refused():
    with pytest.raises(RecordError, match="missing column"):
        anchorage_inspections(_source().drop(columns=["Year"]))
    with pytest.raises(RecordError, match="no rows"):
        anchorage_inspections(_source().iloc[:0])
    with pytest.raises(RecordError, match="fail_below"):
        anchorage_inspections(_source(), fail_below=0)


def test_import_record_writes_the_published_record_as_a_valid_dataset(tmp_path):
    out = tmp_path / "anchorage"
    made = runner.invoke(app, ["import-record", "anchorage-inspections", "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert "none recorded in 2010, 2011, 2012, 2013, 2014" in " ".join(made.stderr.split())
    assert runner.invoke(app, ["validate", "--data", str(out)]).exit_code == 0
    entities, events = pd.read_parquet(out / "entities.parquet"), pd.read_parquet(out / "events.parquet")
    assert (len(entities), len(events)) == (1618, 27178)
    assert len(read_anchorage_source()) == 27178
    assert entities["entity_id"].is_unique and pd.read_parquet(out / "lists.parquet").empty


def test_import_record_refuses_what_it_cannot_map(tmp_path):
    out = tmp_path / "out"
    unknown = runner.invoke(app, ["import-record", "chicago", "--out", str(out)])
    assert unknown.exit_code == 2 and "unknown record 'chicago'" in unknown.output
    bad = tmp_path / "bad.csv"
    _source(Year=(1, "20x6")).to_csv(bad, index=False)
    refused = runner.invoke(app, ["import-record", "anchorage-inspections", "--out", str(out), "--source", str(bad)])
    assert refused.exit_code == 2 and "row 2, column Year: '20x6'" in " ".join(refused.output.split())
    assert not out.exists() or not any(out.iterdir())  # nothing written
    missing = runner.invoke(app, ["import-record", "anchorage-inspections", "--out", str(out), "--source", "nope.csv"])
    assert missing.exit_code == 2 and "no such file" in missing.output


@pytest.mark.slow
def test_the_real_record_trains_and_scores_without_options(tmp_path, private_stores):
    """Yearly inspections of one industry, five years without any record, no lists: train, then score."""
    data = tmp_path / "anchorage"
    assert runner.invoke(app, ["import-record", "anchorage-inspections", "--out", str(data)]).exit_code == 0
    trained = runner.invoke(app, ["train", "--data", str(data)])
    assert trained.exit_code == 0, trained.output
    assert "skipped 2009-12-31..2014-09-30: no record at all in its outcome window" in " ".join(trained.stderr.split())
    metrics = json.loads(trained.stdout.strip().splitlines()[-1])["metrics"]
    assert metrics["test_auc"] > metrics["scorecard_test_auc"] > metrics["rules_card_test_auc"]
    assert metrics["test_auc_low"] > metrics["rules_card_test_auc_high"]  # intervals apart, not points alone
    out = tmp_path / "scores.csv"
    scored = runner.invoke(app, ["score", "--data", str(data), "--as-of", "2019-12-31", "--out", str(out)])
    assert scored.exit_code == 0, scored.output
    scores = pd.read_csv(out)
    assert len(scores) == 1618 and set(scores["tier"]) <= set("ABCD") and scores["score"].between(0, 1).all()
