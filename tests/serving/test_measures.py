"""Measures in force, eligibility checks for other departments and credit commitments, through the HTTP
API on the demo world (``conftest.make_lists``: a red-list entity, two serious-violation entries, two
untrustworthy ones), with today pinned at 2026-12-31."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from serving.cli import app as cli
from serving.tokens import create_token
from tests.serving.conftest import make_entities, make_lists, store_run

TODAY = date(2026, 12, 31)


@pytest.fixture
def world(engine):
    entities = make_entities(200, seed=7)
    store_run(engine, entities, lists=make_lists(entities))
    return entities.entity_id.tolist()


@pytest.fixture
def live(serve, world, tokens):
    return serve(today=TODAY)


@pytest.fixture
def department(engine) -> str:
    return create_token(engine, "department", "funding office", benefits=["funding", "fast_track"])[1]


def _ask(client, entity_id: str, benefit: str, on: str) -> dict:
    response = client.get("/v1/eligibility", params={"entity_id": entity_id, "benefit": benefit, "on": on})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_red_list_entity_gets_the_green_channel_from_its_entry_date(live, world, department):
    red = world[0]  # on the red list from 2024-03-01
    with live.client(department) as client:
        before = _ask(client, red, "fast_track", "2024-02-29")
        after = _ask(client, red, "fast_track", "2024-03-01")
        by_post = client.post("/v1/eligibility", json={"entity_id": red, "benefit": "funding", "on": "2026-06-01"})
    assert before["allowed"] and not before["priority"] and before["because"] == []
    assert after["allowed"] and after["priority"]
    [measure] = after["because"]
    assert measure["code"] == "RED_GREEN_CHANNEL" and "国知发保字〔2022〕8号" in measure["basis"]
    assert measure["records"][0]["list"] == "red" and measure["records"][0]["entered_on"] == "2024-03-01"
    assert by_post.status_code == 200 and by_post.json()["priority"]
    assert "score" not in json.dumps(after) and '"tier"' not in json.dumps(after)


def test_a_serious_violation_entity_is_refused_funding_while_its_entry_is_in_force(live, world, department):
    lapsed, listed = world[1], world[2]  # entered 2021-06-01 (lapsed 2024-06-01) and 2024-06-01
    with live.client(department) as client:
        assert not _ask(client, lapsed, "funding", "2024-05-31")["allowed"]
        assert _ask(client, lapsed, "funding", "2024-06-01")["allowed"], "the entry lapses after 3 years"
        assert _ask(client, listed, "funding", "2024-05-31")["allowed"]
        refused = _ask(client, listed, "funding", "2024-06-01")
        batch = client.post(
            "/v1/eligibility/batch",
            json={"entity_ids": [listed, world[0], lapsed], "benefit": "funding", "on": "2025-01-01"},
        )
    assert not refused["allowed"] and not refused["priority"]
    [measure] = refused["because"]
    assert measure["code"] == "SV_RESTRICTIONS" and "第44号" in measure["basis"]
    assert measure["records"][0]["basis"] == "市监严重违法〔2024〕7号"
    assert measure["records"][0]["ends_on"] == measure["until"] == "2027-06-01"
    assert batch.status_code == 200, batch.text
    answers = batch.json()["answers"]
    assert [a["entity_id"] for a in answers] == [listed, world[0], lapsed]
    assert [a["allowed"] for a in answers] == [False, True, True]
    assert [a["priority"] for a in answers] == [False, True, False]


def test_the_measures_route_lists_what_is_in_force_with_basis_and_end_dates(live, world, tokens):
    with live.client(tokens["supervisor"]) as client:
        listed = client.get(f"/v1/entities/{world[2]}/measures", params={"on": "2025-01-01"}).json()
        none = client.get(f"/v1/entities/{world[2]}/measures", params={"on": "2024-05-31"}).json()
        far = client.get(f"/v1/entities/{world[2]}/measures", params={"on": "2031-01-01"})
        bad = client.get("/v1/entities/91210600MA0QC0K81X/measures")
    assert [m["code"] for m in listed["measures"]] == ["SV_RESTRICTIONS"]
    assert listed["measures"][0]["until"] == "2027-06-01" and "fast_track" in listed["measures"][0]["blocks"]
    assert none["measures"] == []
    assert far.status_code == 422 and far.json()["detail"][0]["loc"] == ["query", "on"]
    assert bad.status_code == 422


def test_a_department_asks_only_about_its_own_benefits_and_every_check_is_audited(live, world, department, engine):
    with live.client(department) as client:
        other = client.get("/v1/eligibility", params={"entity_id": world[0], "benefit": "fee_reduction"})
        assert other.status_code == 403 and "funding, fast_track" in other.json()["detail"]
        assert client.get(f"/v1/entities/{world[0]}/risk").status_code == 403, "no scores for a department"
        assert client.get(f"/v1/entities/{world[0]}/measures").status_code == 403
        assert client.post("/v1/sampling/draws", json={}).status_code == 403
        big = client.post("/v1/eligibility/batch", json={"entity_ids": [world[0]] * 1001, "benefit": "funding"})
        assert big.status_code == 422 and big.json()["detail"][0]["loc"] == ["body", "entity_ids"]
        twice = client.post("/v1/eligibility/batch", json={"entity_ids": [world[0]] * 2, "benefit": "funding"})
        assert twice.status_code == 422
        unknown = client.post("/v1/eligibility", json={"entity_id": "91210600MA0QC0K819", "benefit": "funding"})
        assert unknown.status_code == 404
        future = client.post("/v1/eligibility", json={"entity_id": world[0], "benefit": "funding", "on": "2027-01-01"})
        assert future.status_code == 422 and future.json()["detail"][0]["loc"] == ["body", "on"]
        malformed = client.get("/v1/eligibility", params={"entity_id": "91210600MA0QC0K81X", "benefit": "funding"})
        assert malformed.status_code == 422 and malformed.json()["detail"][0]["loc"] == ["query", "entity_id"]
        junk = client.post("/v1/eligibility", json={"entity_id": world[0], "benefit": "free_money"})
        assert junk.status_code == 422 and junk.json()["detail"][0]["loc"] == ["body", "benefit"]
        asked = client.post(
            "/v1/eligibility/batch", json={"entity_ids": world[:5], "benefit": "funding", "on": "2026-01-01"}
        )
        assert asked.status_code == 200
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT actor, resource, detail FROM audit_log WHERE action = 'eligibility.check' ORDER BY id")
            ).all()
        if len(rows) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [r.resource for r in rows] == [f"entity/{e}" for e in world[:5]]
    assert all(r.actor.startswith("funding office#") for r in rows)
    assert json.loads(rows[4].detail)["benefit"] == "funding"


def test_a_scoped_department_sees_only_its_region(live, world, engine):
    _, token = create_token(engine, "department", "county", region="410100", benefits=["funding"])
    with live.client(token) as client:
        assert client.post("/v1/eligibility", json={"entity_id": world[0], "benefit": "funding"}).status_code in (
            200,
            404,
        )
        batch = client.post("/v1/eligibility/batch", json={"entity_ids": world[:50], "benefit": "funding"})
        assert batch.status_code == 404, "an entity outside the region does not exist for the token"


def test_a_broken_commitment_applies_its_consequences_through_the_ledger(live, world, tokens, engine, department):
    entity_id = world[5]
    _, procedures = create_token(engine, "department", "procedures", benefits=["commitment_procedure", "funding"])
    with live.client(tokens["supervisor"]) as client:
        signed = client.post(
            "/v1/commitments",
            json={"entity_id": entity_id, "status": "signed", "on": "2026-03-01", "reference": "承诺书〔2026〕5号"},
        )
        assert signed.status_code == 201, signed.text
        commitment_id = signed.json()["commitment_id"]
        early = client.post(
            "/v1/commitments",
            json={
                "entity_id": entity_id,
                "status": "broken",
                "on": "2026-02-01",
                "reference": "x",
                "commitment_id": commitment_id,
            },
        )
        assert early.status_code == 422 and early.json()["detail"][0]["loc"] == ["body", "on"]
        broken = client.post(
            "/v1/commitments",
            json={
                "entity_id": entity_id,
                "status": "broken",
                "on": "2026-09-01",
                "reference": "核查〔2026〕9号",
                "commitment_id": commitment_id,
            },
        )
        assert broken.status_code == 201, broken.text
        kept = client.post(
            "/v1/commitments",
            json={
                "entity_id": entity_id,
                "status": "kept",
                "on": "2026-10-01",
                "reference": "x",
                "commitment_id": commitment_id,
            },
        )
        assert kept.status_code == 409
    with live.client(department) as client:
        refused = client.post(
            "/v1/commitments", json={"entity_id": entity_id, "status": "signed", "on": "2026-03-01", "reference": "x"}
        )
        assert refused.status_code == 403, "this department does not run the commitment procedure"
    with live.client(procedures) as client:
        before = _ask(client, entity_id, "commitment_procedure", "2026-08-31")
        after = _ask(client, entity_id, "commitment_procedure", "2026-09-01")
        funding = _ask(client, entity_id, "funding", "2026-09-01")
    assert before["allowed"]
    assert not after["allowed"]
    assert {m["code"] for m in after["because"]} == {"COMMITMENT_BROKEN", "UNTRUSTWORTHY_RESTRICTIONS"}
    commitment = next(m for m in after["because"] if m["code"] == "COMMITMENT_BROKEN")
    assert commitment["until"] == "2027-09-01" and commitment["records"][0]["recorded_on"] == "2026-09-01"
    assert not funding["allowed"], "the untrustworthy entry the policy brings blocks funding too"
    body = broken.json()
    assert body["list_entry"]["list"] == "untrustworthy" and body["list_entry"]["removed_on"] == "2027-09-01"
    with engine.connect() as conn:
        events = conn.execute(
            text(
                "SELECT seq, event_type, occurred_on FROM ledger "
                "WHERE entity_id = :e AND kind = 'add_event' ORDER BY seq"
            ),
            {"e": entity_id},
        ).all()
    assert [e.event_type for e in events] == ["commitment_signed", "commitment_breach"]
    assert body["ledger_seq"] == events[1].seq


def test_the_command_line_makes_department_tokens_limited_to_benefits(db_url, tmp_path, engine):
    env = {"IPCREDIT_DATABASE_URL": db_url, "IPCREDIT_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    made = runner.invoke(cli, ["tokens", "create", "--role", "department", "--measures", "funding,fast_track"], env=env)
    assert made.exit_code == 0, made.output
    listed = json.loads(runner.invoke(cli, ["tokens", "list", "--json"], env=env).output.strip().splitlines()[-1])
    assert listed["tokens"][0]["role"] == "department" and listed["tokens"][0]["benefits"] == ["funding", "fast_track"]
    none = runner.invoke(cli, ["tokens", "create", "--role", "department"], env=env)
    assert none.exit_code == 2 and "benefits" in none.output
    wrong = runner.invoke(cli, ["tokens", "create", "--role", "department", "--measures", "bribes"], env=env)
    assert wrong.exit_code == 2 and "benefits" in wrong.output
    misplaced = runner.invoke(cli, ["tokens", "create", "--role", "analyst", "--measures", "funding"], env=env)
    assert misplaced.exit_code == 2
