"""Imported score files are validated like datasets, row by row, and nothing of an invalid one is stored;
server-side paths are confined to the import root, and no answer names a server path."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from serving.cli import app as cli
from tests.serving.conftest import AS_OF, bare_history, make_entities, make_lists, make_scores

UNKNOWN = "91210600MA0QC0K819"


def write_dataset(folder: Path, entities: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    entities.to_parquet(folder / "entities.parquet", index=False)
    events = pd.DataFrame(
        [
            {
                "event_id": f"E{i}",
                "entity_id": e,
                "event_type": "patent_filed",
                "occurred_on": "2024-01-01",
                "recorded_on": "2024-01-02",
                "quantity": 1,
                "amount": None,
                "repaired_on": None,
            }
            for i, e in enumerate(entities.entity_id)
        ]
    )
    events.to_csv(folder / "events.csv", index=False)
    make_lists(entities).to_csv(folder / "lists.csv", index=False)
    return folder


@pytest.fixture
def entities() -> pd.DataFrame:
    return make_entities(40, seed=9)


@pytest.fixture
def root(tmp_path, entities) -> Path:
    folder = tmp_path / "imports"
    write_dataset(folder / "data", entities)
    make_scores(entities).to_csv(folder / "scores.csv", index=False)
    return folder


@pytest.fixture
def live(serve, root, tokens):
    return serve(dataset_root=root)


def start(client, body: dict):
    response = client.post("/v1/score-runs", json=body)
    assert response.status_code == 202, response.text
    return client.get(response.headers["location"], params={"wait": 60}).json()


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()


def test_a_valid_score_file_is_imported(live, root, entities, tokens, engine):
    with live.client(tokens["analyst"]) as analyst:
        job = start(analyst, {"dataset": "data", "score_file": "scores.csv", "as_of": AS_OF.isoformat()})
        assert job["status"] == "done", job
        assert job["run"]["row_count"] == len(entities)
        row = analyst.get(f"/v1/entities/{entities.entity_id[0]}/risk").json()
        assert row["tier"] in "ABCD" and row["run_id"] == job["run_id"]


def test_a_score_file_without_contributions_is_explained_by_its_reasons_and_the_rest(live, root, entities, tokens):
    # ``ipcredit score`` writes the top reasons, not every contribution: the explanation shows those, says
    # so, and names what the other features add, so that it still sums to the stored log-odds.
    scores = pd.read_csv(root / "scores.csv").drop(columns=["contributions", "features"])
    scores.to_csv(root / "reasons-only.csv", index=False)
    entity_id = entities.entity_id[0]
    with live.client(tokens["analyst"]) as analyst:
        job = start(analyst, {"dataset": "data", "score_file": "reasons-only.csv", "as_of": AS_OF.isoformat()})
        assert job["status"] == "done", job
    with live.client(tokens["reviewer"]) as reviewer:
        answer = reviewer.get(f"/v1/entities/{entity_id}/explanation").json()
    row = scores.set_index("entity_id").loc[entity_id]
    reasons = json.loads(row["reasons"])
    assert answer["run_id"] == job["run_id"] and answer["contributions_complete"] is False
    assert [c["feature"] for c in answer["contributions"]] == [r["feature"] for r in reasons]
    assert all(c["text_zh"] and c["text_en"] for c in answer["contributions"])
    shown = sum(c["contribution"] for c in answer["contributions"])
    assert answer["base_value"] + shown + answer["contributions_rest"] == pytest.approx(row["log_odds"], abs=1e-9)
    assert answer["contributions_rest"] == pytest.approx(
        row["log_odds"] - row["base_value"] - sum(r["contribution"] for r in reasons), abs=1e-9
    )


def test_a_valid_score_file_is_explained_by_every_contribution(live, root, entities, tokens):
    with live.client(tokens["analyst"]) as analyst:
        job = start(analyst, {"dataset": "data", "score_file": "scores.csv", "as_of": AS_OF.isoformat()})
        assert job["status"] == "done", job
    with live.client(tokens["reviewer"]) as reviewer:
        answer = reviewer.get(f"/v1/entities/{entities.entity_id[0]}/explanation").json()
    assert answer["contributions_complete"] is True and answer["contributions_rest"] is None
    total = answer["base_value"] + sum(c["contribution"] for c in answer["contributions"])
    assert total == pytest.approx(answer["log_odds"], abs=1e-9)


def test_a_score_file_is_checked_row_by_row_and_nothing_of_it_is_stored(live, root, entities, tokens, engine):
    frame = make_scores(entities)
    frame.loc[2, "tier"] = "Z"  # would exempt the entity from every draw
    frame.loc[4, "score"] = 1.5
    frame.loc[6, "entity_id"] = UNKNOWN
    frame.loc[8, "as_of"] = "2999-01-01"  # would be the latest row for ever
    frame.loc[10, "rules"] = "NOT_A_RULE"
    frame.loc[12, "reasons"] = "not json"
    frame.to_csv(root / "bad.csv", index=False)
    with live.client(tokens["analyst"]) as analyst:
        job = start(analyst, {"dataset": "data", "score_file": "bad.csv", "as_of": AS_OF.isoformat()})
    assert job["status"] == "failed", job
    problem = job["problem"]
    assert problem["status"] == 422 and problem["type"] == "urn:ipcredit:problem:invalid-input"
    found = {tuple(item["loc"]): item for item in problem["detail"]}
    for loc in ((3, "tier"), (5, "score"), (7, "entity_id"), (9, "as_of"), (11, "rules"), (13, "reasons")):
        assert ("body", "score_file", *loc) in found, (loc, list(found))
    assert found[("body", "score_file", 3, "tier")]["input"] == "Z"
    assert "after today" in found[("body", "score_file", 9, "as_of")]["msg"]
    assert count(engine, "scores") == 0 and count(engine, "score_runs") == 0, "nothing was stored"


def test_a_score_file_holds_one_model_and_the_services_policy(live, root, entities, tokens):
    frame = make_scores(entities)
    frame.loc[:5, "model_version"] = "2"
    frame.to_csv(root / "two-models.csv", index=False)
    make_scores(entities).assign(policy_version="1999.1").to_csv(root / "old-policy.csv", index=False)
    with live.client(tokens["analyst"]) as analyst:
        for name, field in (("two-models.csv", "model_version"), ("old-policy.csv", "policy_version")):
            job = start(analyst, {"dataset": "data", "score_file": name, "as_of": AS_OF.isoformat()})
            assert job["status"] == "failed" and job["problem"]["status"] == 422, job
            assert job["problem"]["detail"][0]["loc"] == ["body", "score_file", field]


def test_paths_are_confined_to_the_import_root_and_never_named(serve, tmp_path, tmp_path_factory, entities, tokens):
    live = serve()  # the default root: the data folder (here tmp_path)
    outside = write_dataset(tmp_path_factory.mktemp("outside") / "data", entities)
    make_scores(entities).to_csv(outside / "scores.csv", index=False)
    (tmp_path / "link").symlink_to(outside, target_is_directory=True)
    inside = write_dataset(tmp_path / "inside", entities)
    (inside / "entities.parquet").unlink()
    (inside / "entities.parquet").symlink_to(outside / "entities.parquet")
    with live.client(tokens["analyst"]) as analyst:
        for body, loc in (
            ({"dataset": str(outside)}, ["body", "dataset"]),
            ({"dataset": "link"}, ["body", "dataset"]),
            ({"dataset": "inside/../../"}, ["body", "dataset"]),
            ({"dataset": "/proc/self"}, ["body", "dataset"]),
            ({"dataset": "inside"}, ["body", "dataset", "entities.parquet"]),
            ({"dataset": "inside", "score_file": str(outside / "scores.csv")}, ["body", "dataset", "entities.parquet"]),
            ({"dataset": str(tmp_path), "score_file": "/etc/passwd"}, ["body", "score_file"]),
            ({"dataset": str(tmp_path), "score_file": str(outside / "scores.csv")}, ["body", "score_file"]),
        ):
            response = analyst.post("/v1/score-runs", json={**body, "as_of": AS_OF.isoformat()})
            assert response.status_code == 422, (body, response.text)
            assert response.json()["detail"][0]["loc"] == loc, (body, response.text)
            for secret in (str(outside), str(tmp_path), "/etc", "/proc"):
                assert secret not in response.text, (body, response.text)


def test_health_and_errors_name_no_server_path(serve, tmp_path, tokens):
    hidden = tmp_path / "secret-models" / "champion"
    live = serve(model_uri=str(hidden))
    with live.client() as public:
        health = public.get("/health").text
    assert "secret-models" not in health and str(tmp_path) not in health and "no model" in health
    with live.client(tokens["analyst"]) as analyst:
        response = analyst.post("/v1/score", json=bare_history(AS_OF.isoformat()))
    assert response.status_code == 503 and "secret-models" not in response.text


def test_the_command_line_imports_the_same_way(db_url, root, entities, engine):
    env = {"IPCREDIT_DATABASE_URL": db_url, "IPCREDIT_DATASET_ROOT": str(root)}
    bad = make_scores(entities)
    bad.loc[0, "tier"] = "Z"
    bad.to_csv(root / "bad.csv", index=False)
    runner = CliRunner()
    args = ["import-scores", "--data", str(root / "data"), "--as-of", AS_OF.isoformat()]
    result = runner.invoke(cli, [*args, "--scores", str(root / "bad.csv")], env=env)
    assert result.exit_code == 2, result.output
    assert "score_file" in result.output and "must be one of" in result.output and "nothing was stored" in result.output
    assert count(engine, "score_runs") == 0
    outside = runner.invoke(cli, [*args, "--scores", os.devnull], env=env)
    assert outside.exit_code == 2 and "import root" in outside.output
    result = runner.invoke(cli, [*args, "--scores", str(root / "scores.csv")], env=env)
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.output.strip().splitlines()[-1])["run_id"]
    with engine.connect() as conn:
        audit = conn.execute(text("SELECT actor, action, resource FROM audit_log")).all()
    assert any(a.startswith("cli:") and act == "score_run.create" and r == f"score-run/{run_id}" for a, act, r in audit)
