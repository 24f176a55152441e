"""Scoring routes with a real model: what-if, score runs from a dataset, objection corrections and repair.

The model is a small LightGBM scorer trained here on the synthetic world, saved as a scorer directory
and served from it, so these tests need no MLflow registry.
"""

from __future__ import annotations

import json
import threading
from datetime import date

import pandas as pd
import pytest

from features.synth import generate
from tests.serving.conftest import train_scorer

AS_OF = date(2024, 12, 31)


@pytest.fixture(scope="module")
def world():
    return generate(1500, seed=11)


@pytest.fixture(scope="module")
def model_dir(world, tmp_path_factory):
    snapshots = (date(2021, 12, 31), date(2022, 12, 31), date(2023, 6, 30))
    return train_scorer(world, snapshots, tmp_path_factory.mktemp("model"), model_version="7")


@pytest.fixture
def dataset_dir(world, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("entities", "events", "lists"):
        getattr(world, name).to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.fixture
def live(serve, model_dir, tokens):
    return serve(model_uri=str(model_dir))


def make_run(client, body: dict) -> dict:
    """Start a score-run job and wait for it; the run it made."""
    response = client.post("/v1/score-runs", json=body)
    assert response.status_code == 202, response.text
    job = client.get(response.headers["location"], params={"wait": 60}).json()
    assert job["status"] == "done", job
    return job["run"]


def _rows(frame: pd.DataFrame, entity_id: str) -> list[dict]:
    part = frame[frame.entity_id == entity_id]
    return json.loads(part.to_json(orient="records", date_format="iso"))


def history(world, entity_id: str) -> dict:
    def clean(rows):
        return [{k: (v[:10] if isinstance(v, str) and k.endswith("_on") else v) for k, v in r.items()} for r in rows]

    return {
        "entity": clean(_rows(world.entities, entity_id))[0],
        "events": clean(_rows(world.events, entity_id)),
        "lists": clean(_rows(world.lists, entity_id)),
    }


def adverse_entity(world) -> str:
    adverse = world.events[world.events.event_type.isin(["infringement_penalty", "abnormal_patent_filing"])]
    recent = adverse[(pd.to_datetime(adverse.recorded_on) <= pd.Timestamp(AS_OF)) & adverse.repaired_on.isna()]
    return recent.entity_id.value_counts().index[0]


# What the policy's repair rules require of an applicant (models/policy.toml [[repairs]]): all of it.
EVIDENCE = ["penalty_fulfilled", "credit_commitment", "training"]


def decision_for(objection: dict, event_ids: list[str], repaired_on: str) -> dict:
    return {
        "decision": "repair",
        "version": objection["version"],
        "repairs": [{"event_id": e, "repaired_on": repaired_on, "evidence": EVIDENCE} for e in event_ids],
    }


def test_health_reports_the_model(live):
    health = live.client().get("/health").json()
    assert health == {**health, "status": "ok", "model_version": "7", "reasons": []}


def test_what_if_scores_one_history_and_stores_nothing(live, world, tokens, engine):
    entity_id = adverse_entity(world)
    body = {"as_of": AS_OF.isoformat(), **history(world, entity_id)}
    with live.client(tokens["reviewer"]) as client:
        response = client.post("/v1/score", json=body)
        assert response.status_code == 200, response.text
        scored = response.json()
        assert scored["entity_id"] == entity_id and scored["model_version"] == "7"
        total = scored["base_value"] + sum(c["contribution"] for c in scored["contributions"])
        assert total == pytest.approx(scored["log_odds"])
        # The same history with its adverse records repaired scores no higher.
        repaired = json.loads(json.dumps(body))
        for event in repaired["events"]:
            if event["event_type"] in ("infringement_penalty", "abnormal_patent_filing"):
                event["repaired_on"] = event["recorded_on"]
        better = client.post("/v1/score", json=repaired).json()
        assert better["score"] <= scored["score"]
        broken = json.loads(json.dumps(body))
        broken["events"][0]["recorded_on"] = "1999-01-01"
        response = client.post("/v1/score", json=broken)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][:3] == ["body", "events", 0]
        # The optional premises: given, the row carries them into the features; out of range or not a whole
        # number, the field is named.
        chain = client.post("/v1/score", json={**body, "entity": {**body["entity"], "locations": 40}})
        assert chain.status_code == 200, chain.text
        shown = {c["feature"]: c["value"] for c in chain.json()["contributions"]}
        assert shown["locations"] == 40
        for bad in (0, 1_000_001, 2.5, "many"):
            response = client.post("/v1/score", json={**body, "entity": {**body["entity"], "locations": bad}})
            assert response.status_code == 422, bad
            assert response.json()["detail"][0]["loc"] == ["body", "entity", "locations"]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM scores").scalar() == 0


def test_a_score_run_from_a_dataset_then_correct_and_repair_objections(live, world, dataset_dir, tokens, engine):
    # Contract change: POST /v1/score-runs is a background job (202 + Location), waited for here.
    with live.client(tokens["analyst"]) as analyst:
        run = make_run(analyst, {"dataset": str(dataset_dir), "as_of": AS_OF.isoformat()})
        assert run["model_version"] == "7" and run["row_count"] > 1000
        bad = analyst.post("/v1/score-runs", json={"dataset": str(dataset_dir / "nope"), "as_of": "2024-12-31"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "dataset"]
    entity_id = adverse_entity(world)
    with live.client(tokens["analyst"]) as filer:  # the filer is not the deciding reviewer
        row = filer.get(f"/v1/entities/{entity_id}/risk").json()
        assert row["run_id"] == run["run_id"]
        objection = filer.post("/v1/objections", json={"score_id": row["score_id"], "grounds": "已修复"}).json()
        other = world.entities.entity_id.iloc[5]
        before = filer.get(f"/v1/entities/{other}/risk").json()
        second = filer.post("/v1/objections", json={"score_id": before["score_id"], "grounds": "数据有误"}).json()
    with live.client(tokens["reviewer"]) as reviewer:
        adverse = [
            e["event_id"]
            for e in history(world, entity_id)["events"]
            if e["event_type"] in ("infringement_penalty", "abnormal_patent_filing")
            and e["repaired_on"] is None
            and e["recorded_on"] <= "2024-06-30"  # repairable 6 months after publication: by AS_OF
        ]
        too_early = {**decision_for(objection, adverse[:1], "2000-01-01")}
        response = reviewer.post(f"/v1/objections/{objection['objection_id']}/decision", json=too_early)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == [
            "body",
            "repairs",
            0,
            "repaired_on",
        ]
        decision = decision_for(objection, adverse, AS_OF.isoformat())
        response = reviewer.post(f"/v1/objections/{objection['objection_id']}/decision", json=decision)
        assert response.status_code == 200, response.text
        decided = response.json()
        assert decided["status"] == "repaired" and decided["result_score_id"]
        latest = reviewer.get(f"/v1/entities/{entity_id}/risk").json()
        assert latest["score_id"] == decided["result_score_id"] and latest["supersedes_id"] == row["score_id"]
        assert latest["score"] <= row["score"]
        assert latest["model_version"] == row["model_version"] and latest["policy_version"] == row["policy_version"]

        # A correction: the posted history replaces the data; same model, same policy, same date.
        objection = second
        corrected = history(world, other)
        corrected["events"] = []
        response = reviewer.post(
            f"/v1/objections/{objection['objection_id']}/decision",
            json={
                "decision": "correct",
                "version": 1,
                "history": corrected,
                "note": "records belonged to another entity",
            },
        )
        assert response.status_code == 200, response.text
        after = reviewer.get(f"/v1/entities/{other}/risk").json()
        assert after["as_of"] == before["as_of"] and after["supersedes_id"] == before["score_id"]
        detail = reviewer.get(f"/v1/objections/{objection['objection_id']}").json()
        assert detail["result"]["score_id"] == after["score_id"]
        assert detail["explanation"]["score_id"] == before["score_id"], "the snapshot objected to is kept"
    with engine.connect() as conn:
        kinds = [r[0] for r in conn.exec_driver_sql("SELECT kind FROM score_runs ORDER BY id")]
    assert kinds == ["batch", "repair", "correction"]


def test_a_run_keeps_its_deliverys_end_and_says_when_it_scored_long_after(live, world, dataset_dir, tokens):
    # Scoring "today" a delivery extracted months ago counts the months since as empty: the run keeps the
    # delivery's last record and says so, for whoever reads its scores later (an appeal, a report).
    end = max(pd.to_datetime(world.events.recorded_on).max(), pd.to_datetime(world.lists.entered_on).max())
    with live.client(tokens["analyst"]) as analyst:
        run = make_run(analyst, {"dataset": str(dataset_dir), "as_of": AS_OF.isoformat()})
        assert run["data_end"] == end.date().isoformat() and run["caveat"] is None
        stale_as_of = (end + pd.Timedelta(days=200)).date()
        stale = make_run(analyst, {"dataset": str(dataset_dir), "as_of": stale_as_of.isoformat()})
        assert analyst.get(f"/v1/score-runs/{stale['run_id']}").json()["caveat"] == stale["caveat"]
    assert stale["data_end"] == end.date().isoformat()
    assert stale["caveat"].startswith(f"the delivery's last record is of {end.date()}, 200 days before")


def test_the_what_if_queue_is_bounded(serve, model_dir, world, tokens):
    live = serve(model_uri=str(model_dir), whatif_queue=1)
    body = {"as_of": AS_OF.isoformat(), **history(world, adverse_entity(world))}
    barrier = threading.Barrier(8)
    answers: list = []

    def ask() -> None:
        with live.client(tokens["reviewer"]) as client:
            barrier.wait()
            answers.append(client.post("/v1/score", json=body))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 503} and statuses[0] == 200 and statuses[-1] == 503, statuses
    full = next(a for a in answers if a.status_code == 503)
    assert full.headers["retry-after"] == "1" and "queue is full" in full.json()["detail"]


def test_a_score_run_job_that_fails_says_why(live, dataset_dir, tokens, engine):
    (dataset_dir / "events.parquet").unlink()
    with live.client(tokens["analyst"]) as analyst:
        response = analyst.post("/v1/score-runs", json={"dataset": str(dataset_dir), "as_of": AS_OF.isoformat()})
        assert response.status_code == 202 and response.headers["location"].startswith("/v1/score-runs/jobs/")
        queued = response.json()
        assert queued["status"] in ("queued", "running", "failed")
        job = analyst.get(response.headers["location"], params={"wait": 60}).json()
    assert job["status"] == "failed" and job["problem"]["status"] == 422
    assert job["problem"]["detail"][0]["loc"][:3] == ["body", "dataset", "events"]
    assert str(dataset_dir) not in json.dumps(job["problem"]), "no server path in the problem"
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM score_runs").scalar() == 0
