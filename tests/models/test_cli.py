"""The model commands as a user runs them, on a tiny synthetic world and a temporary MLflow store.

train -> register (champion) -> score (deterministic file) -> score --store -> train again (gate) ->
promote by hand -> score with an older version; and every kind of bad input exits 2 having written nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.build import build_features
from features.dataset import load_dataset
from models.scorefile import SCORE_COLUMNS
from serving.cli import app
from tests.models.factories import fast_toml

runner = CliRunner()
AS_OF = "2025-12-31"


@pytest.fixture
def store(tmp_path, private_stores):
    """A private MLflow store and service database for one test, and the fast training config."""
    config = tmp_path / "fast.toml"
    config.write_text(fast_toml())
    return tmp_path


def _json_tail(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def _train(data, config, *extra):
    result = runner.invoke(app, ["train", "--data", str(data), "--config", str(config), *extra])
    assert result.exit_code == 0, result.output
    return _json_tail(result.stdout)


@pytest.mark.slow
def test_train_register_score_promote(tiny_world, store):
    first = _train(tiny_world, store / "fast.toml")
    assert first["model_version"] == "1" and first["promoted"] is True
    assert {"test_auc", "test_ece", "scorecard_test_auc", "rules_card_test_auc", "tier_rate_D"} <= set(first["metrics"])
    assert (store / "mlruns" / "artifacts").is_dir()  # artifacts beside the temporary store, not in the project

    out = store / "scores.parquet"
    result = runner.invoke(app, ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "days before the as-of date" not in result.output  # the delivery's records reach the as-of date
    scores = pd.read_parquet(out)
    assert list(scores.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    # Six months past the delivery's last record, the score says the windows since count as empty.
    later = runner.invoke(app, ["score", "--data", str(tiny_world), "--as-of", "2026-06-30", "--out", str(out)])
    assert later.exit_code == 0, later.output
    assert "181 days before the as-of date 2026-06-30" in " ".join(later.output.split())
    # A policy whose tier A no score reaches: the summary says so and where the bounds are set.
    strict = store / "strict.toml"
    policy = (Path(__file__).parents[2] / "models" / "policy.toml").read_text(encoding="utf-8")
    strict.write_text(policy.replace("upper_bounds = { A = 0.03,", "upper_bounds = { A = 0.000001,"), encoding="utf-8")
    args = ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(store / "strict.parquet")]
    empty = runner.invoke(app, args, env={"IPCREDIT_POLICY_PATH": str(strict)})
    assert empty.exit_code == 0, empty.output
    said = " ".join(empty.output.split())
    assert " A:0 " in said and "no entity is in tier A, which holds calibrated probabilities below 1e-06" in said
    strict.write_text(
        policy.replace(
            "upper_bounds = { A = 0.03, B = 0.10, C = 0.30 }", "upper_bounds = { A = 0.5, B = 0.6, C = 0.7 }"
        )
    )
    lenient = runner.invoke(app, args, env={"IPCREDIT_POLICY_PATH": str(strict)})
    assert lenient.exit_code == 0 and " A:0 " not in lenient.output and "no entity is in tier A" not in lenient.output
    result = runner.invoke(app, ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(out)])
    expected_ids = build_features(load_dataset(tiny_world), AS_OF)["entity_id"].tolist()
    assert scores["entity_id"].tolist() == expected_ids
    assert (scores["model_version"] == "1").all()
    assert scores["reasons"].map(lambda r: len(json.loads(r)) <= 5).all()

    # Deterministic: the same inputs give the same bytes, whatever the chunking.
    again = store / "again.parquet"
    result = runner.invoke(
        app, ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(again), "--chunk-size", "97"]
    )
    assert result.exit_code == 0, result.output
    assert again.read_bytes() == out.read_bytes()
    as_csv = store / "scores.csv"
    for _ in range(2):
        assert (
            runner.invoke(app, ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(as_csv)]).exit_code
            == 0
        )
        text = as_csv.read_text()
    assert text == as_csv.read_text() and text.splitlines()[0].startswith(",".join(SCORE_COLUMNS))

    result = runner.invoke(
        app, ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(store / "s.parquet"), "--store"]
    )
    assert result.exit_code == 0, result.output
    # Before any entity is registered there is nothing to store: refused, no file, no run.
    early = store / "early.parquet"
    result = runner.invoke(
        app, ["score", "--data", str(tiny_world), "--as-of", "1950-01-01", "--out", str(early), "--store"]
    )
    assert result.exit_code == 2 and "is registered by 1950-01-01: no run to store" in " ".join(result.output.split())
    assert not early.exists()
    with sqlite3.connect(store / "service.db") as db:
        assert db.execute("SELECT count(*) FROM score_runs").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM scores").fetchone()[0] == len(scores)
        # The run keeps the policy text its tiers came from: the text the version tag was hashed from.
        text, tag = db.execute("SELECT policy_text, policy_version FROM score_runs").fetchone()
        assert tag.endswith("+" + hashlib.sha256(text.encode()).hexdigest()[:8])

    second = _train(tiny_world, store / "fast.toml", "--as-of-end", "2024-09-30")
    assert second["model_version"] == "2"
    listed = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    by_version = {v["version"]: v for v in listed}
    assert "challenger" in by_version["2"]["aliases"]
    assert "champion" in by_version["2" if second["promoted"] else "1"]["aliases"]

    result = runner.invoke(app, ["promote", "1", "--reason", "rollback drill: keep the full-history model"])
    assert result.exit_code == 0, result.output
    listed = {v["version"]: v for v in json.loads(runner.invoke(app, ["models", "--json"]).stdout)}
    assert "champion" in listed["1"]["aliases"]
    assert listed["1"]["promotion_reason"] == "rollback drill: keep the full-history model"

    older = store / "v2.parquet"
    result = runner.invoke(
        app,
        ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(older), "--model", "models:/ipcredit/2"],
    )
    assert result.exit_code == 0, result.output
    assert (pd.read_parquet(older)["model_version"] == "2").all()


@pytest.mark.slow
def test_a_champion_of_older_feature_code_names_the_version_that_can_score(tiny_world, store, monkeypatch):
    # The champion was trained before the feature code changed; a newer version the gate kept back (or, as
    # here, a rollback) leaves scoring without options refused: the refusal says which version can score.
    with monkeypatch.context() as patched:
        patched.setattr("features.build.FEATURE_VERSION", "0.0.1+older")
        assert _train(tiny_world, store / "fast.toml")["model_version"] == "1"
    assert _train(tiny_world, store / "fast.toml")["model_version"] == "2"
    assert runner.invoke(app, ["promote", "1", "--reason", "rollback drill"]).exit_code == 0
    out = store / "scores.parquet"
    result = runner.invoke(app, ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(out)])
    assert result.exit_code == 2 and not out.exists()
    message = " ".join(result.output.split())
    assert "trained on features version 0.0.1+older" in message
    assert "Version 2 (challenger" in message and "--model models:/ipcredit/2" in message
    assert "ipcredit promote 2 --reason TEXT" in message
    named = ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(out), "--model", "models:/ipcredit/2"]
    assert runner.invoke(app, named).exit_code == 0 and out.exists()


@pytest.fixture
def broken_world(tiny_world, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_world, folder)
    entities = pd.read_parquet(folder / "entities.parquet")
    entities.loc[3, "entity_id"] = "91210600MA0XXXXXX0"  # wrong check character
    entities.to_parquet(folder / "entities.parquet", index=False)
    return folder


def test_bad_input_exits_2_and_writes_nothing(broken_world, store, tiny_world):
    out = store / "scores.parquet"
    cases = [
        ["train", "--data", str(broken_world)],
        ["train", "--data", str(tiny_world), "--as-of-end", "31/12/2024"],
        ["train", "--data", str(tiny_world), "--config", str(store / "missing.toml")],
        ["score", "--data", str(broken_world), "--as-of", AS_OF, "--out", str(out)],
        ["score", "--data", str(tiny_world), "--as-of", "2025-13-01", "--out", str(out)],
        ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(store / "scores.xlsx")],
        ["promote", "1", "--reason", " "],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
    assert not out.exists()
    assert not list(store.glob("*.parquet*")) and not list(store.glob(".*tmp"))
    assert not (store / "mlruns" / "artifacts").exists()  # no run was logged


@pytest.mark.slow
def test_a_first_version_that_fails_its_gate_is_champion_and_says_so(tiny_world, store):
    # The contract's score uses the champion, so the first version becomes one whatever its gate said; the
    # training and every score made with it then say which checks it failed. A score PSI limit no model can
    # meet fails the gate here on purpose.
    strict = store / "strict.toml"
    strict.write_text((store / "fast.toml").read_text() + "[gate]\nmax_score_psi = 1e-9\n")
    result = runner.invoke(app, ["train", "--data", str(tiny_world), "--config", str(strict)])
    assert result.exit_code == 0, result.output
    summary = _json_tail(result.stdout)
    assert summary["promoted"] is True and summary["gate"] == "failed"
    failed = r"model version 1 failed its promotion gate \((?:\w+, )*reference_psi(?:, \w+)*\); "
    words = re.compile(failed + "it became champion only because it was the first version")
    assert words.search(" ".join(result.stderr.split()))

    out = store / "scores.parquet"
    result = runner.invoke(app, ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert words.search(" ".join(result.stderr.split()))
    assert (pd.read_parquet(out)["model_version"] == "1").all()
    stored = ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(store / "s.csv"), "--store"]
    assert runner.invoke(app, stored).exit_code == 0
    result = runner.invoke(app, ["report", "--as-of", AS_OF, "--out", str(store / "report"), "--no-log"])
    assert result.exit_code == 0, result.output
    figures = json.loads((store / "report" / "report.json").read_text(encoding="utf-8"))
    assert words.search(figures["model_caveat"])  # the month's report is read with it too
    assert "model caveat" in (store / "report" / "report.html").read_text(encoding="utf-8")

    result = runner.invoke(app, ["promote", "1", "--reason", "reviewed by the data team: PSI limit set in error"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["score", "--data", str(tiny_world), "--as-of", AS_OF, "--out", str(out)])
    by_hand = re.compile(failed + "it was promoted by hand: reviewed by the data team")
    assert by_hand.search(" ".join(result.stderr.split()))


def test_train_refuses_too_short_a_history(tiny_world, store):
    result = runner.invoke(app, ["train", "--data", str(tiny_world), "--quarters", "5"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "the data has 5 " in said and ": older than the 5 latest usable dates. Deliver more history" in said
    # Cut short by --as-of-end, the advice names the option as the cause.
    result = runner.invoke(app, ["train", "--data", str(tiny_world), "--as-of-end", "2017-06-30"])
    assert result.exit_code == 2
    assert "--as-of-end 2017-06-30 keeps only the outcome windows closed by it" in " ".join(result.output.split())


def test_promote_an_unknown_version(store):
    result = runner.invoke(app, ["promote", "9", "--reason", "no such thing"])
    assert result.exit_code == 2
    assert "no version" in result.output


@pytest.mark.slow
def test_the_monthly_report_from_stored_runs(tiny_world, store):
    """train -> two stored monthly runs and one a year before -> ipcredit report: html and json, the
    estimate next to the realised rate of the matured run, logged to MLflow, the same bytes twice."""
    _train(tiny_world, store / "fast.toml")
    for day in ("2023-12-31", "2024-11-30", "2024-12-31"):
        result = runner.invoke(
            app, ["score", "--data", str(tiny_world), "--as-of", day, "--out", str(store / f"{day}.csv"), "--store"]
        )
        assert result.exit_code == 0, result.output
    pages = []
    for name in ("a", "b"):
        result = runner.invoke(
            app, ["report", "--as-of", "2024-12-31", "--out", str(store / name), "--data", str(tiny_world)]
        )
        assert result.exit_code == 0, result.output
        pages.append((store / name / "report.html").read_bytes())
    assert pages[0] == pages[1]
    figures = json.loads((store / "a" / "report.json").read_text(encoding="utf-8"))
    assert figures["as_of"] == "2024-12-31" and sum(figures["tiers"].values()) == figures["entities"]
    assert figures["migration"]["tiers"] == ["A", "B", "C", "D"]
    matured = {row["tier"]: row for row in figures["matured"]}
    assert abs(matured["all"]["expected_rate"] - matured["all"]["realised_rate"]) < 0.05
    assert "drift_flagged" in figures and figures["drift"][0]["feature"] == "score"
    nothing = runner.invoke(app, ["report", "--as-of", "2016-06-30", "--out", str(store / "none"), "--no-log"])
    assert nothing.exit_code == 1 and "no batch score run" in " ".join(nothing.stderr.split())
