"""Tokens expire, can be listed (with their last use, never their hash) and revoked; a token scoped to a
region sees only that region's entities, and the rest do not exist for it (404, not 403)."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from serving.cli import app as cli
from tests.serving.conftest import make_entities, roster, store_run


@pytest.fixture
def world(engine):
    entities = make_entities(120, seed=51)
    store_run(engine, entities)
    return entities


@pytest.fixture
def live(serve, world, tokens):
    return serve()


def in_region(world, prefix: str) -> list[str]:
    return [e for e, r in zip(world.entity_id, world.region, strict=True) if r.startswith(prefix)]


def test_an_expired_token_is_refused(live, engine, world):
    token = "ipc_expired-token-for-the-test"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_tokens (name, role, token_hash, created_at, expires_at) "
                "VALUES ('old', 'analyst', :hash, :created, :expires)"
            ),
            {
                "hash": hashlib.sha256(token.encode()).hexdigest(),
                "created": datetime.now(UTC) - timedelta(days=100),
                "expires": datetime.now(UTC) - timedelta(minutes=1),
            },
        )
    with live.client(token) as expired:
        response = expired.get(f"/v1/entities/{world.entity_id[0]}/risk")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_new_tokens_expire_and_are_listed_with_their_last_use(live, world, tokens):
    with live.client(tokens["admin"]) as admin:
        created = admin.post("/v1/admin/tokens", json={"role": "analyst", "name": "listed", "expires_in_days": 7})
        assert created.status_code == 201, created.text
        created = created.json()
        expires = datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00"))
        assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)
        default = admin.post("/v1/admin/tokens", json={"role": "analyst"}).json()
        assert default["expires_at"] is not None, "no token lives for ever by default"
    with live.client(created["token"]) as analyst:
        assert analyst.get(f"/v1/entities/{world.entity_id[0]}/risk").status_code == 200
    time.sleep(0.5)  # the last use is recorded off the request's path
    with live.client(tokens["admin"]) as admin:
        listing = admin.get("/v1/admin/tokens").json()
        assert admin.delete(f"/v1/admin/tokens/{created['token_id']}").status_code == 204
        after = admin.get("/v1/admin/tokens").json()
    mine = next(t for t in listing["tokens"] if t["token_id"] == created["token_id"])
    assert mine["name"] == "listed" and mine["role"] == "analyst" and mine["active"] is True
    assert mine["last_used_at"] is not None and mine["created_by"].startswith("test-admin")
    assert listing["total"] >= 6
    text_ = json.dumps(listing)
    assert created["token"] not in text_ and "token_hash" not in text_
    assert hashlib.sha256(created["token"].encode()).hexdigest() not in text_
    revoked = next(t for t in after["tokens"] if t["token_id"] == created["token_id"])
    assert revoked["active"] is False and revoked["revoked_at"] is not None


def test_a_county_token_sees_only_its_own_entities(live, world, tokens):
    with live.client(tokens["admin"]) as admin:
        county = admin.post("/v1/admin/tokens", json={"role": "supervisor", "region": "210602"}).json()
        city = admin.post("/v1/admin/tokens", json={"role": "reviewer", "region": "210600"}).json()
        province = admin.post("/v1/admin/tokens", json={"role": "analyst", "region": "410000"}).json()
        refused = admin.post("/v1/admin/tokens", json={"role": "admin", "region": "210600"})
        assert refused.status_code == 422
        assert admin.put("/v1/admin/inspectors", json={"inspectors": roster(), "replace": True}).status_code == 200
    own, dandong, henan = in_region(world, "210602")[0], in_region(world, "2106")[0], in_region(world, "41")[0]
    assert dandong[2:8] == "210600"
    with live.client(tokens["analyst"]) as national:
        unknown = national.get("/v1/entities/91210600MA0QC0K819/risk")
    with live.client(county["token"]) as client:
        assert client.get(f"/v1/entities/{own}/risk").status_code == 200
        for other in (dandong, henan):
            for what in ("risk", "explanation"):
                response = client.get(f"/v1/entities/{other}/{what}")
                assert response.status_code == 404, "another region's entity does not exist for this token"
                assert response.json()["detail"] == f"entity {other} has no stored score"
        assert unknown.status_code == 404
        batch = client.post("/v1/entities/risk", json={"entity_ids": [own, dandong, henan]}).json()
        assert [r["entity_id"] for r in batch["found"]] == [own] and set(batch["missing"]) == {dandong, henan}
    with live.client(city["token"]) as client:
        assert client.get(f"/v1/entities/{dandong}/risk").status_code == 200, "a city covers its counties"
        assert client.get(f"/v1/entities/{own}/risk").status_code == 200
        assert client.get(f"/v1/entities/{henan}/risk").status_code == 404
    with live.client(province["token"]) as client:
        assert client.get(f"/v1/entities/{henan}/risk").status_code == 200
        assert client.get(f"/v1/entities/{dandong}/risk").status_code == 404
        assert client.post("/v1/score-runs", json={"dataset": "x", "as_of": "2025-12-31"}).status_code == 403

    with live.client(tokens["analyst"]) as filer:
        for entity_id in (own, henan):
            score_id = filer.get(f"/v1/entities/{entity_id}/risk").json()["score_id"]
            assert filer.post("/v1/objections", json={"score_id": score_id, "grounds": "g"}).status_code == 201
    with live.client(city["token"]) as reviewer:
        listed = reviewer.get("/v1/objections").json()
        assert [o["entity_id"] for o in listed] == [own]
        henan_objection = 2
        assert reviewer.get(f"/v1/objections/{henan_objection}").status_code == 404
        decided = reviewer.post(f"/v1/objections/{henan_objection}/decision", json={"decision": "uphold", "version": 1})
        assert decided.status_code == 404

    with live.client(tokens["supervisor"]) as national:
        draw = national.post("/v1/sampling/draws", json={}).json()
        results = [
            {"entity_id": s["entity_id"], "outcome": "passed", "inspected_on": "2026-01-05"} for s in draw["selected"]
        ]
        assert (
            national.post(f"/v1/sampling/draws/{draw['draw_id']}/results", json={"results": results}).status_code == 201
        )
    with live.client(county["token"]) as client:
        assert client.get(f"/v1/sampling/draws/{draw['draw_id']}").status_code == 404
        events = client.get("/v1/events", params={"format": "json"}).json()
        assert events and all(e["entity_id"][2:8] == "210602" for e in events)


def test_the_command_line_creates_lists_and_revokes_tokens(db_url, tmp_path, engine):
    env = {"IPCREDIT_DATABASE_URL": db_url, "IPCREDIT_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    created = runner.invoke(
        cli, ["tokens", "create", "--role", "reviewer", "--region", "210600", "--expires-in", "7"], env=env
    )
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("ipc_")
    listed = runner.invoke(cli, ["tokens", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    entry = json.loads(listed.output.strip().splitlines()[-1])["tokens"][0]
    assert entry["role"] == "reviewer" and entry["region"] == "210600" and entry["active"] is True
    assert token not in listed.output
    assert runner.invoke(cli, ["tokens", "revoke", str(entry["token_id"])], env=env).exit_code == 0
    again = json.loads(runner.invoke(cli, ["tokens", "list", "--json"], env=env).output.strip().splitlines()[-1])
    assert again["tokens"][0]["active"] is False
    bad = runner.invoke(cli, ["tokens", "create", "--role", "reviewer", "--region", "2106xx"], env=env)
    assert bad.exit_code == 2 and "region" in bad.output
