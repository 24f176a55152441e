"""Separation of duties and consistency for objections: the filer never decides, only the current row can
be objected to or decided on (409 naming the newer row), one open objection per row is a unique index,
and races are 409s, never 500s."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from serving.objections import _history_from_run
from tests.serving.conftest import make_entities, store_run


@pytest.fixture
def world(engine):
    entities = make_entities(50, seed=41)
    store_run(engine, entities)
    return entities


@pytest.fixture
def live(serve, world, tokens):
    return serve()


def file(client, score_id: int, grounds: str = "处罚已撤销"):
    return client.post("/v1/objections", json={"score_id": score_id, "grounds": grounds})


def test_the_filer_never_decides(live, world, tokens):
    entity_id = world.entity_id[0]
    with live.client(tokens["reviewer"]) as reviewer:
        row = reviewer.get(f"/v1/entities/{entity_id}/risk").json()
        objection = file(reviewer, row["score_id"]).json()
        url = f"/v1/objections/{objection['objection_id']}/decision"
        response = reviewer.post(url, json={"decision": "uphold", "version": 1})
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "separation of duties" in response.json()["detail"]
    with live.client(tokens["admin"]) as admin:
        # A second token with the filer's name is the same person.
        twin = admin.post("/v1/admin/tokens", json={"role": "reviewer", "name": "test-reviewer"}).json()["token"]
    with live.client(twin) as same_person:
        assert same_person.post(url, json={"decision": "uphold", "version": 1}).status_code == 403
    with live.client(tokens["admin"]) as other:
        decided = other.post(url, json={"decision": "uphold", "version": 1})
        assert decided.status_code == 200 and decided.json()["status"] == "upheld"


def test_superseded_rows_cannot_be_objected_to_or_decided_on(live, world, tokens, engine):
    entity_id = world.entity_id[1]
    with live.client(tokens["analyst"]) as analyst:
        old = analyst.get(f"/v1/entities/{entity_id}/risk").json()
        pending = file(analyst, old["score_id"]).json()
    store_run(engine, world, seed=5)  # a newer run supersedes every row
    with live.client(tokens["analyst"]) as analyst:
        new = analyst.get(f"/v1/entities/{entity_id}/risk").json()
        assert new["score_id"] != old["score_id"]
        response = file(analyst, old["score_id"])
        assert response.status_code == 409, response.text
        assert f"score row {new['score_id']}" in response.json()["detail"], "the answer names the newer row"
        assert file(analyst, new["score_id"]).status_code == 201
    with live.client(tokens["reviewer"]) as reviewer:
        response = reviewer.post(
            f"/v1/objections/{pending['objection_id']}/decision", json={"decision": "uphold", "version": 1}
        )
        assert response.status_code == 409 and f"score row {new['score_id']}" in response.json()["detail"]
        assert reviewer.get(f"/v1/objections/{pending['objection_id']}").json()["status"] == "open"


def test_one_open_objection_per_row_is_a_unique_index(live, world, engine):
    indexes = {i["name"]: i for i in inspect(engine).get_indexes("objections")}
    assert indexes["uq_objections_open_score_id"]["unique"]
    with engine.connect() as conn:
        score_id = conn.execute(text("SELECT min(id) FROM scores")).scalar()
    row = {"score_id": score_id, "entity_id": world.entity_id[0], "grounds": "g", "at": datetime.now(UTC)}
    insert = text(
        "INSERT INTO objections (score_id, entity_id, grounds, filed_at, status, version) "
        "VALUES (:score_id, :entity_id, :grounds, :at, :status, 1)"
    )
    with engine.begin() as conn:
        conn.execute(insert, {**row, "status": "upheld"})
        conn.execute(insert, {**row, "status": "open"})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert, {**row, "status": "open"})


def test_racing_filings_give_one_objection_and_409s_never_500(live, world, tokens):
    with live.client(tokens["analyst"]) as analyst:
        score_ids = [analyst.get(f"/v1/entities/{e}/risk").json()["score_id"] for e in world.entity_id[10:14]]
    for score_id in score_ids:
        barrier = threading.Barrier(4)
        answers: list[int] = []

        def race(
            token: str, score_id: int = score_id, barrier: threading.Barrier = barrier, answers: list[int] = answers
        ) -> None:
            with live.client(token) as client:
                barrier.wait()
                answers.append(file(client, score_id).status_code)

        threads = [
            threading.Thread(target=race, args=(tokens[r],)) for r in ("analyst", "reviewer", "supervisor", "admin")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers) == [201, 409, 409, 409], answers


def test_the_history_of_an_entity_is_read_with_a_bound_parameter(tmp_path, world):
    folder = tmp_path / "data"
    folder.mkdir()
    world.to_parquet(folder / "entities.parquet", index=False)
    pd.DataFrame(columns=["event_id", "entity_id", "event_type", "occurred_on", "recorded_on", "quantity"]).to_csv(
        folder / "events.csv", index=False
    )
    pd.DataFrame(columns=["entity_id", "list", "entered_on", "removed_on", "basis"]).to_csv(
        folder / "lists.csv", index=False
    )
    entity, _, _ = _history_from_run(str(folder), world.entity_id[0])
    assert entity.entity_id.tolist() == [world.entity_id[0]]
    injected, _, _ = _history_from_run(str(folder), "x' OR '1'='1")
    assert injected.empty, "text in the id is a value, never SQL"
