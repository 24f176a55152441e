"""A complete audit: every change in the transaction that makes it (token operations and command-line
writes included), every read of risk data (one row per entity of a batch, draws, population snapshots,
event exports), fields that always fit their columns, and read entries that survive a database outage."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from serving.audit import ReadAuditor
from serving.auth import Principal, Role
from serving.cli import app as cli
from tests.serving.conftest import make_entities, roster, store_run

UNKNOWN = "91210600MA0QC0K819"


@pytest.fixture
def world(engine):
    entities = make_entities(60, seed=31)
    store_run(engine, entities)
    return entities


@pytest.fixture
def live(serve, world, tokens):
    return serve()


def audit_rows(client) -> list[dict]:
    return client.get("/v1/admin/audit", params={"limit": 10_000}).json()


def refuse_audit_of(engine, action: str) -> None:
    """Make the database refuse audit rows of ``action`` (a stand-in for an audit write that fails)."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.action = '{action}' "
                "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.action = '{action}' THEN RAISE EXCEPTION 'audit refused'; END IF; RETURN NEW; END; "
                "$$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
            )


def test_a_token_exists_only_with_its_audit_row(live, engine, tokens):
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM api_tokens")).scalar()
    refuse_audit_of(engine, "token.create")
    with live.client(tokens["admin"]) as admin:
        response = admin.post("/v1/admin/tokens", json={"role": "reviewer", "name": "unaudited"})
    assert response.status_code >= 400
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM api_tokens")).scalar() == before, "no token without its audit"


def test_token_operations_are_audited(live, tokens):
    with live.client(tokens["admin"]) as admin:
        created = admin.post("/v1/admin/tokens", json={"role": "reviewer", "name": "audited"}).json()
        assert admin.delete(f"/v1/admin/tokens/{created['token_id']}").status_code == 204
        entries = audit_rows(admin)
    actions = {(e["action"], e["resource"]) for e in entries}
    assert ("token.create", f"token/{created['token_id']}") in actions
    assert ("token.revoke", f"token/{created['token_id']}") in actions


def test_a_batch_read_is_audited_once_per_entity(live, world, tokens):
    ids = world.entity_id.tolist()[:3]
    with live.client(tokens["analyst"]) as analyst:
        answer = analyst.post("/v1/entities/risk", json={"entity_ids": [*ids, UNKNOWN]}).json()
        assert len(answer["found"]) == 3
    with live.client(tokens["admin"]) as admin:
        reads = [e for e in audit_rows(admin) if e["action"] == "risk.read" and e["role"] == "analyst"]
    assert sorted(e["resource"] for e in reads) == sorted(f"entity/{i}" for i in [*ids, UNKNOWN])
    assert {e["resource"]: e["detail"]["score_id"] for e in reads}[f"entity/{UNKNOWN}"] is None


def test_draw_reads_population_snapshots_and_event_exports_are_audited(live, tokens):
    with live.client(tokens["admin"]) as admin:
        assert admin.put("/v1/admin/inspectors", json={"inspectors": roster(), "replace": True}).status_code == 200
    with live.client(tokens["supervisor"]) as supervisor:
        draw = supervisor.post("/v1/sampling/draws", json={}).json()
        assert supervisor.get(f"/v1/sampling/draws/{draw['draw_id']}").status_code == 200
        assert supervisor.get(f"/v1/sampling/draws/{draw['draw_id']}/population").status_code == 200
        assert supervisor.get("/v1/events").status_code == 200
    with live.client(tokens["admin"]) as admin:
        actions = {(e["action"], e["resource"], e["role"]) for e in audit_rows(admin)}
    for action in ("draw.create", "draw.read", "draw.population.read"):
        assert (action, f"draw/{draw['draw_id']}", "supervisor") in actions, action
    assert ("events.export", "events", "supervisor") in actions


def test_a_long_token_name_fits_the_audit(live, tokens):
    name = "县级市场监督管理局知识产权科" * 5 + "x" * 30  # 100 characters, the longest a name may be
    assert len(name) == 100
    with live.client(tokens["admin"]) as admin:
        assert admin.put("/v1/admin/inspectors", json={"inspectors": roster(), "replace": True}).status_code == 200
        token = admin.post("/v1/admin/tokens", json={"role": "supervisor", "name": name}).json()["token"]
    with live.client(token) as long_named:
        response = long_named.post("/v1/sampling/draws", json={})
        assert response.status_code == 201, response.text
        assert len(response.json()["created_by"]) <= 100
    with live.client(tokens["admin"]) as admin:
        entries = [e for e in audit_rows(admin) if e["action"] == "draw.create"]
    assert entries and entries[-1]["actor"].startswith(name[:50]) and len(entries[-1]["actor"]) <= 100


def test_command_line_writes_are_audited(db_url, tmp_path, engine, world):
    env = {"IPCREDIT_DATABASE_URL": db_url, "IPCREDIT_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    created = runner.invoke(cli, ["tokens", "create", "--role", "analyst", "--name", "by-cli"], env=env)
    assert created.exit_code == 0, created.output
    with engine.connect() as conn:
        token_id = conn.execute(text("SELECT max(id) FROM api_tokens")).scalar()
    assert runner.invoke(cli, ["tokens", "revoke", str(token_id)], env=env).exit_code == 0
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text("inspector_id,name,region\nI1,王一,210600\nI2,李二,410100\n", encoding="utf-8")
    assert runner.invoke(cli, ["inspectors", "load", "--file", str(roster_file)], env=env).exit_code == 0
    exported = runner.invoke(cli, ["events", "export", "--out", str(tmp_path / "events.csv")], env=env)
    assert exported.exit_code == 0, exported.output
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT actor, role, action, resource FROM audit_log ORDER BY id")).all()
    cli_rows = {(action, resource) for actor, _, action, resource in rows if actor.startswith("cli:")}
    assert ("token.create", f"token/{token_id}") in cli_rows
    assert ("token.revoke", f"token/{token_id}") in cli_rows
    assert ("roster.load", "inspectors") in cli_rows
    assert ("events.export", "events") in cli_rows


def test_read_entries_survive_a_database_outage(db_url, tmp_path, engine):
    spool = tmp_path / "spool"
    down = create_engine("postgresql+psycopg://nobody:x@127.0.0.1:1/none", connect_args={"connect_timeout": 1})
    who = Principal(token_id=7, name="reader", role=Role.SUPERVISOR)
    auditor = ReadAuditor(down, spool)
    for i in range(5):
        auditor.record(who, "risk.read", f"entity/E{i}", {"score_id": i})
    assert auditor.flush() == 0, "the database is down"
    auditor.record(who, "risk.read", "entity/E5", {"score_id": 5})
    auditor.stop()  # shutting down while the database is still down
    assert sorted(p.suffix for p in spool.iterdir()) == [".jsonl", ".jsonl"]
    down.dispose()

    back = ReadAuditor(engine, spool)  # the next start, with the database back
    back.start()
    deadline = time.monotonic() + 10
    while list(spool.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    back.stop()
    assert list(spool.iterdir()) == [], "every spooled batch was replayed"
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT actor, action, resource, detail FROM audit_log ORDER BY id")).all()
    assert [r.resource for r in rows] == [f"entity/E{i}" for i in range(6)]
    assert {r.actor for r in rows} == {"reader#7"} and json.loads(rows[0].detail) == {"score_id": 0}
