"""Training on sparse data: baselines that cannot be fitted are reported, not fatal, and a sparse world
trains and scores end to end through the command line."""

from __future__ import annotations

import json
import re
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from features.build import FEATURE_VERSION
from features.catalogue import FEATURE_NAMES
from features.schema import EVENT_CODES
from features.synth_credit import PLATFORM_OPENED, generate_credit
from models.baselines import BaselineUnavailable, BinnedScorecard
from models.card import model_card
from models.evaluate import evaluate_model
from models.train import train_model
from serving.cli import app
from tests.conftest import write_tables

runner = CliRunner()


def test_the_scorecard_leaves_out_features_without_two_known_values(factory_snapshots):
    rows = factory_snapshots.head(3000).copy()
    rows["grant_ratio_36m"] = np.nan  # no patents at all
    rows["online_seller"] = False  # no online sellers
    card = BinnedScorecard(max_rows=3000).fit(rows, rows["outcome"].to_numpy())
    assert {"grant_ratio_36m", "online_seller"} <= set(card.dropped_)
    assert len(card.log_odds(rows)) == len(rows)


def test_the_scorecard_is_unavailable_when_nothing_varies(factory_snapshots):
    rows = factory_snapshots.head(500).copy()
    for name in FEATURE_NAMES:
        rows[name] = rows[name].iloc[0]
    with pytest.raises(BaselineUnavailable, match="constant or missing"):
        BinnedScorecard().fit(rows, rows["outcome"].to_numpy())
    with pytest.raises(BaselineUnavailable, match="both outcomes"):
        BinnedScorecard().fit(factory_snapshots.head(50), np.zeros(50, dtype=int))


def test_training_goes_on_without_a_baseline_that_cannot_be_fitted(factory_snapshots, policy, fast_config, monkeypatch):
    def refuse(self, features, y):
        raise BaselineUnavailable("every feature is constant or missing in the training rows")

    monkeypatch.setattr(BinnedScorecard, "fit", refuse)
    model = train_model(factory_snapshots, policy, config=fast_config, feature_version=FEATURE_VERSION)
    assert set(model.baselines) == {"rules_points_card"}
    assert "constant or missing" in model.unavailable["binned_scorecard"]
    evaluation = evaluate_model(model, factory_snapshots, policy)
    assert "beats_scorecard_auc" not in evaluation.checks and "beats_rules_card_auc" in evaluation.checks
    assert "binned_scorecard" not in set(evaluation.metrics["scorer"])
    assert "unavailable: every feature is constant" in model_card(model, evaluation, policy)


@pytest.mark.slow
def test_a_sparse_world_trains_and_scores_without_options(tmp_path, private_stores):
    """The sparse profile (yearly inspections, a gap of years, one industry, no lists) through the CLI."""
    data = tmp_path / "sparse"
    made = runner.invoke(app, ["demo-data", "--out", str(data), "--entities", "3000", "--profile", "sparse"])
    assert made.exit_code == 0, made.output
    trained = runner.invoke(app, ["train", "--data", str(data)])
    assert trained.exit_code == 0, trained.output
    assert "skipped 2012-12-31..2015-12-31: no record at all in its outcome window" in " ".join(trained.stderr.split())
    summary = json.loads(trained.stdout.strip().splitlines()[-1])
    metrics = summary["metrics"]
    assert metrics["test_auc"] > metrics["rules_card_test_auc"]
    assert summary["model_version"] == "1"
    out = tmp_path / "scores.csv"
    scored = runner.invoke(app, ["score", "--data", str(data), "--as-of", "2025-12-31", "--out", str(out)])
    assert scored.exit_code == 0, scored.output
    assert out.stat().st_size > 0


@pytest.mark.slow
def test_a_credit_platform_export_trains_and_scores_without_options(tmp_path, private_stores):
    """The credit profile (penalties, commitments and lists; everything before the platform opened entered
    on its opening day; a backlog; frequent repair) through the CLI. The history it can learn from begins
    when the records were entered, not when the decisions were taken."""
    data = tmp_path / "credit"
    made = runner.invoke(app, ["demo-data", "--out", str(data), "--entities", "4000", "--profile", "credit"])
    assert made.exit_code == 0, made.output
    trained = runner.invoke(app, ["train", "--data", str(data)])
    assert trained.exit_code == 0, trained.output
    used = re.search(r"using \d+ quarterly as-of dates (\d{4}-\d\d-\d\d)", " ".join(trained.stderr.split()))
    assert used and date.fromisoformat(used.group(1)) >= PLATFORM_OPENED.replace(year=PLATFORM_OPENED.year + 1)
    metrics = json.loads(trained.stdout.strip().splitlines()[-1])["metrics"]
    assert metrics["test_auc_low"] > 0.5 and metrics["test_auc"] > metrics["rules_card_test_auc"]
    out = tmp_path / "scores.csv"
    scored = runner.invoke(app, ["score", "--data", str(data), "--as-of", "2025-12-31", "--out", str(out)])
    assert scored.exit_code == 0, scored.output
    scores = pd.read_csv(out)
    assert len(scores) == 4000 and set(scores["tier"]) <= set("ABCD") and scores["tier"].nunique() >= 3


def test_too_little_history_is_refused_with_advice(tmp_path, private_stores):
    data = tmp_path / "short"
    made = runner.invoke(
        app, ["demo-data", "--out", str(data), "--entities", "300", "--profile", "sparse", "--start", "2023-01-01"]
    )
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["train", "--data", str(data)])
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "the out-of-time design needs at least 9 quarterly as-of dates" in message
    assert "--config" in message and "nothing was logged" in message


@pytest.mark.parametrize(
    ("keep", "said"),
    [
        ("inspection_passed", "none of its"),  # every inspection passed: no outcome can ever be 1
        ("complaint_received", "is adverse, and the outcome the model learns is an adverse record"),
        (None, "the events table holds no record"),
    ],
)
def test_a_delivery_without_adverse_records_is_told_so(tmp_path, private_stores, keep, said):
    """More history or a smaller design cannot help a delivery that holds no adverse record: the refusal
    says what is missing instead."""
    data = tmp_path / "delivery"
    made = runner.invoke(app, ["demo-data", "--out", str(data), "--entities", "300", "--profile", "sparse"])
    assert made.exit_code == 0, made.output
    events = pd.read_parquet(data / "events.parquet")
    events[events.event_type == keep].to_parquet(data / "events.parquet", index=False)
    result = runner.invoke(app, ["train", "--data", str(data)])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert said in message and "nothing was logged" in message, message
    assert "smaller design" not in message


@pytest.mark.parametrize("entities", [40, 300])
def test_a_small_world_is_refused_with_advice_never_a_traceback(tmp_path, private_stores, entities):
    data = tmp_path / "small"
    args = ["--entities", str(entities), "--profile", "sparse", "--start", "2021-01-01"]
    assert runner.invoke(app, ["demo-data", "--out", str(data), *args]).exit_code == 0
    result = runner.invoke(app, ["train", "--data", str(data)])
    message = " ".join(result.stderr.split())
    assert result.exception is None or isinstance(result.exception, SystemExit), message
    if result.exit_code != 0:
        assert result.exit_code == 2 and "cannot train" in message and "deliver more" in message.lower(), message


FAST_TOML = """
[lightgbm]
num_threads = 1
[boosting]
max_rounds = 40
early_stopping_rounds = 10
[evaluation]
shap_sample = 200
scorecard_max_rows = 3000
"""


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    profile=st.sampled_from(["demo", "sparse", "credit"]),
    entities=st.integers(5, 600),
    first_year=st.integers(2012, 2023),
    seed=st.integers(0, 10_000),
    keep_events=st.floats(0.0, 1.0),
    keep_types=st.one_of(st.none(), st.sets(st.sampled_from(EVENT_CODES), min_size=1)),
    gap=st.one_of(st.none(), st.tuples(st.integers(0, 12), st.integers(1, 4))),
    keep_lists=st.booleans(),
    relations=st.sampled_from(["absent", "as made", "thinned", "empty"]),
    flattened=st.sets(st.sampled_from(["industry", "region", "kind", "registered_capital", "online_seller"])),
    parquet=st.booleans(),
)
def test_train_on_any_valid_dataset_trains_or_refuses_clearly(
    tmp_path_factory,
    profile,
    entities,
    first_year,
    seed,
    keep_events,
    keep_types,
    gap,
    keep_lists,
    relations,
    flattened,
    parquet,
):
    """Random datasets of the contract, of any profile, short or long, thinned, with only some event types, a
    gap of years without records, one value in a column, with or without (an empty) relations table, as CSV or
    Parquet: train exits 0 or 2, never a traceback; a model it trains scores the dataset."""
    from features.synth import generate
    from features.synth_sparse import generate_sparse

    folder = tmp_path_factory.mktemp("any")
    start, end = date(first_year, 1, 1), date(2025, 12, 31)
    world = {"demo": generate, "sparse": generate_sparse, "credit": generate_credit}[profile](
        entities, seed, start=start, end=end
    )
    rng = np.random.default_rng(seed)
    events = world.events[rng.random(len(world.events)) < keep_events]
    if keep_types is not None:
        events = events[events["event_type"].isin(keep_types)]
    if gap is not None:
        recorded = pd.to_datetime(events["recorded_on"]).dt.year
        events = events[~recorded.between(first_year + gap[0], first_year + gap[0] + gap[1] - 1)]
    entity_rows = world.entities.copy()
    blank = {"registered_capital": None, "online_seller": False}
    for column in flattened:  # one value for all: one industry, one region, no capital, no online seller…
        entity_rows[column] = blank.get(column, entity_rows[column].iloc[0])
    links = {
        "absent": None,
        "as made": world.relations,
        "thinned": world.relations[rng.random(len(world.relations)) < 0.2],
        "empty": world.relations.head(0),
    }[relations]
    if links is not None:  # an agency_client link needs an agency at its first end (one kind may leave none)
        agencies = set(entity_rows.loc[entity_rows["kind"] == "agency", "entity_id"])
        links = links[(links["relation"] != "agency_client") | links["entity_id"].isin(agencies)]
    lists = world.lists if keep_lists else world.lists.head(0)
    tables = {"entities": entity_rows, "events": events, "lists": lists, "relations": links}
    write_tables(folder, tables, "parquet" if parquet else "csv")
    (folder / "fast.toml").write_text(FAST_TOML)
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "IPCREDIT_DATABASE_URL": f"sqlite:///{folder / 'service.db'}",
    }
    result = runner.invoke(app, ["train", "--data", str(folder), "--config", str(folder / "fast.toml")], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        assert "cannot train" in result.stderr
        return
    as_of = "2025-12-31"
    out = folder / "scores.parquet"
    command = ["score", "--data", str(folder), "--as-of", as_of, "--out", str(out), "--store"]
    scored = runner.invoke(app, command, env=env)
    assert scored.exit_code == 0, scored.output
    scores = pd.read_parquet(out)
    registered = (pd.to_datetime(entity_rows["registered_on"]) <= pd.Timestamp(as_of)).sum()
    assert len(scores) == registered and set(scores["tier"]) <= set("ABCD")
