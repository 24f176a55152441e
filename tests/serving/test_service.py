"""The service over HTTP, against a real uvicorn server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from features import uscc
from models.scorefile import SCORE_COLUMNS
from serving import sampling
from tests.serving.conftest import bare_history, make_entities, make_lists, roster, store_run

UNKNOWN = "91210600MA0QC0K819"
assert uscc.is_valid(UNKNOWN)


@pytest.fixture
def world(engine):
    entities = make_entities(300, seed=1)
    run_id = store_run(engine, entities, lists=make_lists(entities))
    return entities, run_id


@pytest.fixture
def live(serve, world, tokens):
    return serve()


def test_without_a_model_the_service_is_degraded_but_lookups_work(live, world, tokens):
    entities, _ = world
    health = live.client().get("/health").json()
    assert health["status"] == "degraded"
    assert health["model_version"] is None
    assert any("no model" in reason for reason in health["reasons"])
    with live.client(tokens["analyst"]) as client:
        response = client.post("/v1/score", json=bare_history("2025-12-31"))
        assert response.status_code == 503
        assert "scoring is unavailable" in response.json()["detail"]
        assert client.get(f"/v1/entities/{entities.entity_id[0]}/risk").status_code == 200


def test_auth_401_403_and_error_bodies(live, world, tokens):
    entity_id = world[0].entity_id[0]
    path = f"/v1/entities/{entity_id}/risk"
    with live.client() as anonymous:
        response = anonymous.get(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "missing bearer token" in response.json()["detail"]
    with live.client("ipc_not-a-token") as bad:
        response = bad.get(path)
        assert response.status_code == 401 and response.json()["detail"] == "invalid or revoked token"
    with live.client(tokens["analyst"]) as analyst:
        response = analyst.post("/v1/sampling/draws", json={})
        assert response.status_code == 403
        assert "role analyst may not do this" in response.json()["detail"]
        response = analyst.get("/v1/entities/91210600MA0QC0K81X/risk")
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["path", "entity_id"]
        assert "check character" in response.json()["detail"][0]["msg"]
        response = analyst.get("/v1/entities/short/risk")
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["path", "entity_id"]
        response = analyst.get(f"/v1/entities/{UNKNOWN}/risk")
        assert response.status_code == 404 and UNKNOWN in response.json()["detail"]


def test_every_error_is_a_problem_details_body(live, tokens):
    with live.client() as anonymous:
        denied = anonymous.get(f"/v1/entities/{UNKNOWN}/risk")
    with live.client(tokens["supervisor"]) as client:
        answers = {
            "about:blank": denied,
            "urn:ipcredit:problem:not-found": client.get(f"/v1/entities/{UNKNOWN}/risk"),
            "urn:ipcredit:problem:invalid-input": client.get("/v1/entities/91210600MA0QC0K81X/risk"),
            "urn:ipcredit:problem:conflict": client.post("/v1/sampling/draws", json={}),
        }
        fastapi_422 = client.post("/v1/sampling/draws", json={"seed": -1})
    for kind, response in {**answers, "urn:ipcredit:problem:invalid-input": fastapi_422}.items():
        assert response.headers["content-type"] == "application/problem+json", response.text
        body = response.json()
        assert body["type"] == kind and body["status"] == response.status_code and body["title"]
    assert [r.status_code for r in answers.values()] == [401, 404, 422, 409]
    assert fastapi_422.json()["detail"][0]["loc"] == ["body", "seed"]


def test_bad_json_and_bad_fields_give_422_with_field_paths(live, tokens):
    with live.client(tokens["supervisor"]) as client:
        response = client.post("/v1/sampling/draws", content=b"{not json", headers={"Content-Type": "application/json"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "json_invalid"
        response = client.post("/v1/sampling/draws", json={"seed": -1, "filter": {"kind": "bank"}})
        assert response.status_code == 422
        locs = {tuple(e["loc"]) for e in response.json()["detail"]}
        assert ("body", "seed") in locs and ("body", "filter", "kind") in locs


def test_risk_is_the_latest_stored_row_and_explanations_add_up(live, world, tokens, engine):
    entities, first_run = world
    entity_id = entities.entity_id[5]
    second_run = store_run(engine, entities, seed=2)
    older = store_run(engine, entities, seed=3, as_of=__import__("datetime").date(2024, 12, 31))
    with live.client(tokens["supervisor"]) as client:
        row = client.get(f"/v1/entities/{entity_id}/risk").json()
        assert row["run_id"] == second_run != first_run
        assert row["run_id"] != older, "an older as-of imported later does not replace the latest"
        for column in SCORE_COLUMNS:
            assert column in row
        assert isinstance(row["reasons"], list) and set(row["reasons"][0]) == {"feature", "value", "contribution"}
        explanation = client.get(f"/v1/entities/{entity_id}/explanation").json()
        total = explanation["base_value"] + sum(c["contribution"] for c in explanation["contributions"])
        assert total == pytest.approx(explanation["log_odds"])
        assert explanation["score_id"] == row["score_id"]
        assert explanation["contributions"][0]["text_zh"]
        batch = client.post("/v1/entities/risk", json={"entity_ids": [entity_id, UNKNOWN]}).json()
        assert [r["entity_id"] for r in batch["found"]] == [entity_id]
        assert batch["missing"] == [UNKNOWN]


def test_fired_rules_come_with_their_legal_basis(live, world, tokens, engine):
    with engine.connect() as conn:
        entity_id = conn.execute(text("SELECT entity_id FROM scores WHERE rules = 'SV_LIST' LIMIT 1")).scalar()
    with live.client(tokens["reviewer"]) as client:
        explanation = client.get(f"/v1/entities/{entity_id}/explanation").json()
    assert [r["code"] for r in explanation["rules"]] == ["SV_LIST"]
    assert "第44号" in explanation["rules"][0]["basis"]


def test_public_lists_show_entries_in_force_without_scores(live, world):
    entities, _ = world
    ids = entities.entity_id.tolist()
    with live.client() as public:
        red = public.get("/v1/public/lists", params={"list": "red", "on": "2025-12-31"}).json()
        assert [e["entity_id"] for e in red["entries"]] == [ids[0]]
        assert red["entries"][0]["name"] == entities.name[0] and red["entries"][0]["basis"]
        serious = public.get("/v1/public/lists", params={"list": "serious_violation", "on": "2025-12-31"}).json()
        assert [e["entity_id"] for e in serious["entries"]] == [ids[2]], "the 2021 entry lapsed after 3 years"
        assert serious["entries"][0]["lapses_on"] == "2027-06-01"
        earlier = public.get("/v1/public/lists", params={"list": "serious_violation", "on": "2024-05-31"}).json()
        assert [e["entity_id"] for e in earlier["entries"]] == [ids[1]]
        untrustworthy = public.get("/v1/public/lists", params={"list": "untrustworthy", "on": "2025-12-31"}).json()
        assert [e["entity_id"] for e in untrustworthy["entries"]] == [ids[4]], "removed entries are gone"
        text_ = json.dumps([red, serious, untrustworthy])
        assert '"score"' not in text_ and '"tier"' not in text_
        assert public.get("/v1/public/lists", params={"list": "abnormal_operation"}).status_code == 422


def _load_roster(client, people=None, replace=True):
    response = client.put("/v1/admin/inspectors", json={"inspectors": people or roster(), "replace": replace})
    assert response.status_code == 200, response.text
    return response.json()


def test_draws_are_reproducible_and_published_without_tiers(live, world, tokens):
    # Contract change (CONTRACT section 5): the caller no longer sends a seed. The service derives it,
    # returns and publishes it; "the same seed, population and ratios select the same entities" is shown
    # by re-selecting from the draw's population snapshot with the published seed.
    entities, _ = world
    with live.client(tokens["admin"]) as admin:
        _load_roster(admin)
    with live.client(tokens["supervisor"]) as client:
        assert client.post("/v1/sampling/draws", json={"ratios": {"A": 0.5}}).status_code == 422
        response = client.post("/v1/sampling/draws", json={"ratios": {"D": 0.5}})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "ratios", "D"]
        assert "tier D" in response.json()["detail"][0]["msg"]

        first = client.post("/v1/sampling/draws", json={})
        assert first.status_code == 201, first.text
        first = first.json()
        second = client.post("/v1/sampling/draws", json={}).json()
        assert first["draw_id"] != second["draw_id"]
        assert isinstance(first["seed"], int) and first["seed"] != second["seed"], "each draw gets its own seed"
        assert second["sequence"] == first["sequence"] + 1
        assert first["population_size"] == len(entities) == sum(first["population"].values())
        for s in first["selected"]:
            assert s["inclusion_probability"] >= 0.01
            assert len(set(s["inspectors"])) == len(s["inspectors"]) >= 2

        stored = client.get(f"/v1/sampling/draws/{first['draw_id']}").json()
        assert stored["selected"] == first["selected"] and stored["seed"] == first["seed"]
        assert client.get(f"/v1/sampling/draws/{first['draw_id']}/verify").json()["reproduced"] is True
        csv = client.get(f"/v1/sampling/draws/{first['draw_id']}/population").text
        assert csv.splitlines()[0] == "entity_id,tier" and len(csv.splitlines()) == len(entities) + 1
        rows = [line.split(",") for line in csv.splitlines()[1:]]
        ids = np.array([r[0] for r in rows], dtype="S18")
        tiers = np.array([r[1] for r in rows], dtype="S1")
        counts = {t: sum(1 for s in first["selected"] if s["tier"] == t) for t in "ABCD"}
        again = sampling.reselect(ids, tiers, counts, first["seed"])
        assert again == [s["entity_id"] for s in first["selected"]], "same seed, population, ratios: same entities"

        filtered = client.post("/v1/sampling/draws", json={"filter": {"region": "2106"}}).json()
        assert all(e.startswith("9121060") for e in (s["entity_id"] for s in filtered["selected"]))
        budget = client.post("/v1/sampling/draws", json={"budget": 40}).json()
        assert budget["selected_count"] == 40 and budget["mode"] == "budget"
    with live.client() as public:
        published = public.get(f"/v1/public/draws/{first['draw_id']}").json()
        assert published["seed"] == first["seed"] and published["population_size"] == len(entities)
        names = dict(zip(entities.entity_id, entities.name, strict=True))
        assert all(names[s["entity_id"]] == s["name"] for s in published["selected"])
        assert "tier" not in json.dumps(published) and "score" not in json.dumps(published)
        assert public.get("/v1/public/draws/nope").status_code == 404


def test_draw_without_a_roster_is_a_conflict(live, tokens):
    with live.client(tokens["supervisor"]) as client:
        response = client.post("/v1/sampling/draws", json={})
    assert response.status_code == 409
    assert "load a roster" in response.json()["detail"]


def test_conflicts_of_interest_are_avoided(live, world, tokens):
    entities, _ = world
    people = roster(6)
    people[0]["conflicts"] = entities.entity_id.tolist()
    with live.client(tokens["admin"]) as admin:
        _load_roster(admin, people)
    with live.client(tokens["supervisor"]) as client:
        draw = client.post("/v1/sampling/draws", json={"avoid_same_region": True}).json()
    region = dict(zip(entities.entity_id, entities.region, strict=True))
    inspector_region = {p["inspector_id"]: p["region"] for p in people}
    for s in draw["selected"]:
        assert "I000" not in s["inspectors"]
        assert all(inspector_region[i] != region[s["entity_id"]] for i in s["inspectors"])


def test_inspection_results_become_events_for_the_next_run(live, world, tokens):
    entities, _ = world
    with live.client(tokens["admin"]) as admin:
        _load_roster(admin)
    with live.client(tokens["supervisor"]) as client:
        draw = client.post("/v1/sampling/draws", json={}).json()
        chosen = [s["entity_id"] for s in draw["selected"][:2]]
        not_chosen = next(e for e in entities.entity_id if e not in {s["entity_id"] for s in draw["selected"]})
        url = f"/v1/sampling/draws/{draw['draw_id']}/results"
        bad = client.post(
            url, json={"results": [{"entity_id": not_chosen, "outcome": "passed", "inspected_on": "2026-01-05"}]}
        )
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "results", 0, "entity_id"]
        results = [
            {"entity_id": chosen[0], "outcome": "passed", "inspected_on": "2026-01-05", "recorded_on": "2026-01-06"},
            {
                "entity_id": chosen[1],
                "outcome": "failed",
                "inspected_on": "2026-01-07",
                "recorded_on": "2026-01-08",
                "amount": 5000,
            },
        ]
        response = client.post(url, json={"results": results})
        assert response.status_code == 201, response.text
        assert client.post(url, json={"results": results[:1]}).status_code == 409
        exported = client.get("/v1/events").text.splitlines()
        assert exported[0] == "event_id,entity_id,event_type,occurred_on,recorded_on,quantity,amount,repaired_on"
        assert len(exported) == 3 and "inspection_failed" in exported[2]
        stored = client.get(f"/v1/sampling/draws/{draw['draw_id']}").json()
        assert {s["entity_id"]: s["result"] for s in stored["selected"] if s["result"]} == {
            chosen[0]: "passed",
            chosen[1]: "failed",
        }
    with live.client() as public:
        published = public.get(f"/v1/public/draws/{draw['draw_id']}").json()
        assert {s["entity_id"]: s["result"] for s in published["selected"] if s["result"]}[chosen[1]] == "failed"


def test_objection_upheld_by_one_reviewer_while_another_gets_409(live, world, tokens):
    # Separation of duties: the objection is filed by someone (here an analyst) other than the two
    # reviewers who then race to decide it (the filer may not decide: test_integrity.py).
    entity_id = world[0].entity_id[7]
    with live.client(tokens["analyst"]) as filer:
        row = filer.get(f"/v1/entities/{entity_id}/risk").json()
        filed = filer.post("/v1/objections", json={"score_id": row["score_id"], "grounds": "处罚已撤销"})
        assert filed.status_code == 201, filed.text
        objection = filed.json()
        again = filer.post("/v1/objections", json={"score_id": row["score_id"], "grounds": "again"})
        assert again.status_code == 409
    with live.client(tokens["reviewer"]) as reviewer:
        detail = reviewer.get(f"/v1/objections/{objection['objection_id']}").json()
        snapshot = detail["explanation"]
        assert snapshot["score_id"] == row["score_id"] and snapshot["contributions"]
        assert detail["run"]["policy_version"] == row["policy_version"]

    url = f"/v1/objections/{objection['objection_id']}/decision"
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def decide(token: str) -> None:
        with live.client(token) as client:
            barrier.wait()
            answers.append(client.post(url, json={"decision": "uphold", "version": detail["version"]}).status_code)

    second_reviewer = tokens["admin"]
    threads = [threading.Thread(target=decide, args=(t,)) for t in (tokens["reviewer"], second_reviewer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 409]
    with live.client(tokens["reviewer"]) as reviewer:
        final = reviewer.get(f"/v1/objections/{objection['objection_id']}").json()
        assert final["status"] == "upheld" and final["version"] == 2
        stale = reviewer.post(url, json={"decision": "uphold", "version": 1})
        assert stale.status_code == 409 and "already decided" in stale.json()["detail"]


def test_decisions_that_rescore_need_a_model(live, world, tokens):
    entity_id = world[0].entity_id[8]
    with live.client(tokens["analyst"]) as filer:  # not the deciding reviewer (separation of duties)
        row = filer.get(f"/v1/entities/{entity_id}/risk").json()
        objection = filer.post("/v1/objections", json={"score_id": row["score_id"], "grounds": "repaired"}).json()
    with live.client(tokens["reviewer"]) as reviewer:
        response = reviewer.post(
            f"/v1/objections/{objection['objection_id']}/decision",
            json={"decision": "repair", "version": 1, "repairs": [{"event_id": "E1", "repaired_on": "2026-01-01"}]},
        )
        assert response.status_code in (422, 503)
        assert reviewer.get(f"/v1/objections/{objection['objection_id']}").json()["status"] == "open"


def test_reads_and_changes_are_audited_and_the_audit_log_is_append_only(live, world, tokens, engine):
    entity_id = world[0].entity_id[3]
    with live.client(tokens["supervisor"]) as client:
        client.get(f"/v1/entities/{entity_id}/risk")
        client.get(f"/v1/entities/{entity_id}/explanation")
    with live.client(tokens["admin"]) as admin:
        _load_roster(admin)
        entries = admin.get("/v1/admin/audit").json()
    actions = [(e["action"], e["resource"], e["role"]) for e in entries]
    assert ("risk.read", f"entity/{entity_id}", "supervisor") in actions
    assert ("explanation.read", f"entity/{entity_id}", "supervisor") in actions
    assert any(a == "roster.load" for a, _, _ in actions)
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "UPDATE scores SET tier = 'A'"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


def test_tokens_admin_routes_and_revocation(live, tokens):
    with live.client(tokens["admin"]) as admin:
        created = admin.post("/v1/admin/tokens", json={"role": "reviewer", "name": "new reviewer"})
        assert created.status_code == 201
        token = created.json()["token"]
        with live.client(token) as reviewer:
            assert reviewer.get("/v1/objections").status_code == 200
            assert reviewer.get("/v1/admin/audit").status_code == 403
        assert admin.delete(f"/v1/admin/tokens/{created.json()['token_id']}").status_code == 204
        with live.client(token) as revoked:
            assert revoked.get("/v1/objections").status_code == 401
        assert admin.delete("/v1/admin/tokens/999999").status_code == 404


def test_metrics_are_exported(live, tokens):
    with live.client(tokens["supervisor"]) as client:
        client.get("/health")
        body = client.get("/metrics").text
    assert 'ipcredit_http_requests_total{method="GET",route="/health",status="200"}' in body
    assert "ipcredit_model_loaded" in body


def test_a_restart_loses_nothing(serve, world, tokens):
    entities, _ = world
    first = serve()
    with first.client(tokens["admin"]) as admin:
        _load_roster(admin)
    with first.client(tokens["supervisor"]) as client:
        before = client.get(f"/v1/entities/{entities.entity_id[0]}/risk").json()
        draw = client.post("/v1/sampling/draws", json={}).json()
    with first.client(tokens["reviewer"]) as reviewer:
        objection = reviewer.post("/v1/objections", json={"score_id": before["score_id"], "grounds": "g"}).json()
    first.stop()

    second = serve()
    with second.client(tokens["supervisor"]) as client:
        assert client.get(f"/v1/entities/{entities.entity_id[0]}/risk").json() == before
        assert client.get(f"/v1/sampling/draws/{draw['draw_id']}").json()["selected"] == draw["selected"]
    with second.client(tokens["reviewer"]) as reviewer:
        assert reviewer.get(f"/v1/objections/{objection['objection_id']}").json()["grounds"] == "g"
    with second.client(tokens["admin"]) as admin:
        actions = {e["action"] for e in admin.get("/v1/admin/audit").json()}
    assert {"risk.read", "draw.create", "objection.file"} <= actions, "reads queued before the stop were flushed"
