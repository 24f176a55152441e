"""Decisions that last (issue 9): through the real HTTP API, on the demo world and on a freshly generated one.

A repair decided in the ledger holds in the next month's run from the unchanged folder (features, score,
rules and reasons equal a what-if with the record repaired); re-importing the original delivery changes
nothing decided; an untrustworthy entry past its management period no longer counts and leaves the public
list; an early removal is never resurrected by the delivery; a corrected history survives later runs;
two runs from the same folder and ledger give the same rows. And every hostile decision is refused.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from features.build import build_features
from features.dataset import Dataset, load_dataset
from features.synth import generate
from serving import ledger
from serving.tokens import create_token
from tests.serving.conftest import sign_in, train_scorer

M1, M2, M3 = date(2025, 9, 30), date(2025, 10, 31), date(2025, 12, 31)
TODAY = M3
REPAIRED_ON = date(2025, 10, 15)
PENALTIES = ("infringement_penalty", "counterfeit_patent_penalty", "agency_misconduct", "inspection_failed")
EVIDENCE = ["penalty_fulfilled", "credit_commitment", "training"]
# The demo world (ipcredit demo-data's seed 0, fewer entities) and a world generated afresh for this test.
WORLDS = {"demo": 0, "fresh": 20261202}


@pytest.fixture(scope="module", params=sorted(WORLDS))
def world(request):
    world = generate(1200, seed=WORLDS[request.param])
    # Two list entries whose lifecycle the test follows, on entities with a repairable record or without.
    ids = world.entities["entity_id"].tolist()
    extra = pd.DataFrame(
        [
            {
                "entity_id": ids[-1],
                "list": "untrustworthy",
                "entered_on": "2024-10-01",
                "removed_on": None,
                "basis": "国知局失信〔2024〕1号",
            },
            {
                "entity_id": ids[-2],
                "list": "serious_violation",
                "entered_on": "2024-06-01",
                "removed_on": None,
                "basis": "市监严重违法〔2024〕8号",
            },
        ]
    )
    extra["entered_on"] = pd.to_datetime(extra["entered_on"]).astype(world.lists["entered_on"].dtype)
    extra["removed_on"] = pd.to_datetime(extra["removed_on"]).astype(world.lists["removed_on"].dtype)
    return replace(world, lists=pd.concat([world.lists, extra], ignore_index=True))


@pytest.fixture(scope="module")
def model_dir(world, tmp_path_factory):
    snapshots = (date(2022, 12, 31), date(2023, 12, 31), date(2024, 6, 30))
    return train_scorer(world, snapshots, tmp_path_factory.mktemp("model"), model_version="3", rounds=30)


@pytest.fixture
def folder(world, tmp_path):
    path = tmp_path / "delivery"
    path.mkdir()
    for name in ("entities", "events", "lists"):
        getattr(world, name).to_parquet(path / f"{name}.parquet", index=False)
    return path


@pytest.fixture
def live(serve, model_dir, tokens):
    return serve(model_uri=str(model_dir), today=TODAY)


def make_run(client, folder, as_of: date) -> dict:
    response = client.post("/v1/score-runs", json={"dataset": str(folder), "as_of": as_of.isoformat()})
    assert response.status_code == 202, response.text
    job = client.get(response.headers["location"], params={"wait": 60}).json()
    assert job["status"] == "done", job
    return job["run"]


def _records(frame: pd.DataFrame, entity_id: str) -> list[dict]:
    rows = json.loads(frame[frame.entity_id == entity_id].to_json(orient="records", date_format="iso"))
    return [{k: (v[:10] if isinstance(v, str) and k.endswith("_on") else v) for k, v in r.items()} for r in rows]


def history(world, entity_id: str, as_of: date) -> dict:
    return {
        "as_of": as_of.isoformat(),
        "entity": _records(world.entities, entity_id)[0],
        "events": _records(world.events, entity_id),
        "lists": _records(world.lists, entity_id),
    }


def repairable(world) -> pd.Series:
    """An unrepaired penalty published more than 6 months before REPAIRED_ON, in the 12-month window at M2."""
    ev = world.events
    recorded, occurred = pd.to_datetime(ev.recorded_on), pd.to_datetime(ev.occurred_on)
    fits = (
        ev.event_type.isin(PENALTIES)
        & ev.repaired_on.isna()
        & (recorded <= pd.Timestamp("2025-04-15"))
        & (occurred > pd.Timestamp("2024-11-01"))
    )
    found = ev[fits & ~ev.entity_id.isin(world.entities.entity_id.iloc[-2:])]
    assert len(found), "the world has a repairable penalty"
    return found.iloc[0]


def repair_of(record: pd.Series) -> dict:
    """A ledger repair of ``record`` within the rules: past its 6 months, with the evidence required."""
    return {
        "kind": "repair",
        "event_id": record.event_id,
        "entity_id": record.entity_id,
        "repaired_on": REPAIRED_ON.isoformat(),
        "basis": "市监信修〔2025〕21号",
        "evidence": EVIDENCE,
    }


def stored_rows(engine, run_id: int) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT entity_id, score, model_tier, tier, rules, review, reasons, features, contributions, "
                "ledger_seq FROM scores WHERE run_id = :run ORDER BY entity_id"
            ),
            {"run": run_id},
        ).all()
    return pd.DataFrame(rows, columns=list(rows[0]._fields))


def _detail(response) -> list[dict]:
    assert response.status_code == 422, response.text
    return response.json()["detail"]


def correct_on_objection(live, tokens, entity_id: str, corrected: dict, grounds: str, note: str) -> tuple[dict, list]:
    """An analyst objects to the entity's current row; a reviewer decides it with the ``corrected`` history.
    The decision's answer, and the entity's ledger decisions after it."""
    with live.client(tokens["analyst"]) as filer:
        current = filer.get(f"/v1/entities/{entity_id}/risk").json()
        objection = filer.post("/v1/objections", json={"score_id": current["score_id"], "grounds": grounds}).json()
    body = {"decision": "correct", "version": 1, "history": {k: v for k, v in corrected.items() if k != "as_of"}}
    with live.client(tokens["reviewer"]) as reviewer:
        response = reviewer.post(f"/v1/objections/{objection['objection_id']}/decision", json=body | {"note": note})
        assert response.status_code == 200, response.text
        decisions = reviewer.get("/v1/ledger/decisions", params={"entity_id": entity_id}).json()["decisions"]
    return response.json(), decisions


def test_decisions_last_across_runs(live, world, folder, tokens, engine):
    record = repairable(world)
    eid, event_id = record.entity_id, record.event_id
    untrustworthy, serious = world.entities.entity_id.iloc[-1], world.entities.entity_id.iloc[-2]
    with live.client(tokens["analyst"]) as analyst:
        # Before any entity is registered there is no run to make: refused, nothing stored.
        response = analyst.post("/v1/score-runs", json={"dataset": str(folder), "as_of": "1950-01-01"})
        early = analyst.get(response.headers["location"], params={"wait": 60}).json()
        assert early["status"] == "failed" and early["problem"]["detail"][0]["loc"] == ["body", "as_of"], early
        assert "nothing to score before it" in early["problem"]["detail"][0]["msg"]
        first = make_run(analyst, folder, M1)
        assert first["ledger_seq"] == 0 and first["run_id"] == 1
    # The untrustworthy entry (entered 2024-10-01) is in force on the last day of its period, and counts.
    at_m1 = stored_rows(engine, first["run_id"]).set_index("entity_id")
    assert json.loads(at_m1.loc[untrustworthy, "features"])["on_untrustworthy_list"] is True
    assert "UNTRUSTWORTHY" in at_m1.loc[untrustworthy, "rules"]
    public = live.client().get("/v1/public/lists", params={"list": "untrustworthy", "on": M1.isoformat()}).json()
    entry = next(e for e in public["entries"] if e["entity_id"] == untrustworthy)
    assert entry["lapses_on"] == "2025-10-01"

    repair = repair_of(record)
    with live.client(tokens["reviewer"]) as reviewer:
        decided = reviewer.post("/v1/ledger/decisions", json=repair)
        assert decided.status_code == 201, decided.text
        assert decided.json()["seq"] == 1 and decided.json()["rule"] == "REPAIR_PENALTY"
        removal = {
            "kind": "remove_listing",
            "entity_id": serious,
            "list": "serious_violation",
            "entered_on": "2024-06-01",
            "removed_on": "2025-10-20",
            "basis": "市监移出〔2025〕5号",
            "evidence": EVIDENCE,
        }
        assert reviewer.post("/v1/ledger/decisions", json=removal).status_code == 201

    with live.client(tokens["analyst"]) as analyst:
        second = make_run(analyst, folder, M2)  # the next month, the folder unchanged
        row = analyst.get(f"/v1/entities/{eid}/risk").json()
        explanation = analyst.get(f"/v1/entities/{eid}/explanation").json()
        # The same month again from the original delivery: nothing decided changes, the rows are the same.
        third = make_run(analyst, folder, M2)
    assert second["ledger_seq"] == third["ledger_seq"] == 2 and row["ledger_seq"] == 2
    assert not second["ledger_conflicts"]
    a, b = stored_rows(engine, second["run_id"]), stored_rows(engine, third["run_id"])
    pd.testing.assert_frame_equal(a, b)

    # The run's row equals a what-if with the record repaired in the history.
    body = history(world, eid, M2)
    for event in body["events"]:
        if event["event_id"] == event_id:
            event["repaired_on"] = REPAIRED_ON.isoformat()
    with live.client(tokens["reviewer"]) as reviewer:
        what_if = reviewer.post("/v1/score", json=body)
        assert what_if.status_code == 200, what_if.text
        what_if = what_if.json()
        unrepaired = reviewer.post("/v1/score", json=history(world, eid, M2)).json()
    assert what_if["score"] == pytest.approx(row["score"], rel=1e-12, abs=1e-15)
    assert (what_if["model_tier"], what_if["tier"], what_if["rules"]) == (row["model_tier"], row["tier"], row["rules"])
    stored = {c["feature"]: c["contribution"] for c in explanation["contributions"]}
    for c in what_if["contributions"]:
        assert c["contribution"] == pytest.approx(stored[c["feature"]], abs=1e-9), c["feature"]
    assert [r["feature"] for r in what_if["reasons"]] == [r["feature"] for r in row["reasons"]]
    # The ledger holds in a what-if too: the history as delivered scores as the repaired one.
    assert unrepaired["score"] == what_if["score"] and unrepaired["tier"] == what_if["tier"]
    delivered = build_features(Dataset.from_frames(world.entities, world.events, world.lists), M2)
    counted = delivered.set_index("entity_id").loc[eid, "adverse_12m"]
    assert json.loads(a.set_index("entity_id").loc[eid, "features"])["adverse_12m"] == counted - record.quantity

    # Past its management period the untrustworthy entry counts for nothing and leaves the public list.
    assert json.loads(a.set_index("entity_id").loc[untrustworthy, "features"])["on_untrustworthy_list"] is False
    public = live.client().get("/v1/public/lists", params={"list": "untrustworthy", "on": M2.isoformat()}).json()
    assert untrustworthy not in {e["entity_id"] for e in public["entries"]}
    # The early removal holds although the delivery, imported again, still says the entry is open.
    assert json.loads(a.set_index("entity_id").loc[serious, "features"])["on_serious_violation_list"] is False
    public = live.client().get("/v1/public/lists", params={"list": "serious_violation", "on": M2.isoformat()}).json()
    assert serious not in {e["entity_id"] for e in public["entries"]}
    earlier = live.client().get("/v1/public/lists", params={"list": "serious_violation", "on": "2025-10-19"}).json()
    assert next(e for e in earlier["entries"] if e["entity_id"] == serious)["removed_on"] == "2025-10-20"

    # A later delivery that already carries the repair agrees with the ledger: no conflict.
    events = world.events.copy()
    events.loc[events.event_id == event_id, "repaired_on"] = pd.Timestamp(REPAIRED_ON)
    events.to_parquet(folder / "events.parquet", index=False)
    with live.client(tokens["analyst"]) as analyst:
        carried = make_run(analyst, folder, M2)
    assert not carried["ledger_conflicts"]
    pd.testing.assert_frame_equal(stored_rows(engine, carried["run_id"]), a)
    # One that disagrees (a later repair date) is reported in the run; the earlier date holds.
    events.loc[events.event_id == event_id, "repaired_on"] = pd.Timestamp("2025-10-25")
    events.to_parquet(folder / "events.parquet", index=False)
    with live.client(tokens["analyst"]) as analyst:
        disagreeing = make_run(analyst, folder, M2)
    [conflict] = disagreeing["ledger_conflicts"]
    assert conflict["seq"] == 1 and conflict["target"] == event_id and "the earlier date holds" in conflict["message"]
    pd.testing.assert_frame_equal(stored_rows(engine, disagreeing["run_id"]), a)
    world.events.to_parquet(folder / "events.parquet", index=False)

    # A corrected history survives later runs: an objection decided with a record withdrawn.
    other = next(
        e for e in world.events[world.events.event_type.isin(PENALTIES)].entity_id.unique() if e not in (eid, serious)
    )
    withdrawn = world.events[(world.events.entity_id == other) & world.events.event_type.isin(PENALTIES)].iloc[0]
    corrected = history(world, other, M2)
    corrected["events"] = [e for e in corrected["events"] if e["event_id"] != withdrawn.event_id]
    answer, decisions = correct_on_objection(live, tokens, other, corrected, "不是本企业", "belongs to another entity")
    assert answer["changes"]["ledger_seqs"] == [3]
    assert [(d["kind"], d["event_id"]) for d in decisions] == [("withdraw", withdrawn.event_id)]
    with live.client(tokens["analyst"]) as analyst:
        later = make_run(analyst, folder, M3)
        row = analyst.get(f"/v1/entities/{other}/risk").json()
    assert later["ledger_seq"] == 3 and row["as_of"] == M3.isoformat() and row["ledger_seq"] == 3
    with live.client(tokens["reviewer"]) as reviewer:
        expected = reviewer.post("/v1/score", json={**corrected, "as_of": M3.isoformat()}).json()
    assert expected["score"] == pytest.approx(row["score"], rel=1e-12, abs=1e-15)
    assert (expected["tier"], expected["rules"]) == (row["tier"], row["rules"])

    # An appeal reproduces a row exactly from (dataset, as_of, ledger seq): the M2 rows, rebuilt now that a
    # later decision exists, with the decisions up to the seq they recorded.
    rebuilt = load_dataset(folder)
    with engine.connect() as conn:
        ledger.apply(rebuilt, conn, second["ledger_seq"])
    features = build_features(rebuilt, M2).set_index("entity_id")
    stored = a.set_index("entity_id")
    for entity in (eid, other, untrustworthy, serious):
        values = json.loads(stored.loc[entity, "features"])
        for name in ("adverse_12m", "adverse_decayed", "on_untrustworthy_list", "on_serious_violation_list"):
            assert values[name] == pytest.approx(features.loc[entity, name]), (entity, name)


def test_an_objection_that_deletes_a_list_entry_withdraws_it_from_its_decision_on(live, world, folder, tokens, engine):
    # A serious-violation entry annulled on review: the reviewer's corrected history leaves it out, and the
    # ledger records a withdrawal (no year's wait, as an early removal would need), dated the day decided.
    # A run after it no longer counts the entry and the public list ends it; the run before keeps it.
    serious = world.entities.entity_id.iloc[-2]  # serious_violation entered 2024-06-01
    with live.client(tokens["analyst"]) as analyst:
        before = make_run(analyst, folder, M1)
    assert json.loads(stored_rows(engine, before["run_id"]).set_index("entity_id").loc[serious, "features"])[
        "on_serious_violation_list"
    ]
    corrected = history(world, serious, M1)
    corrected["lists"] = [e for e in corrected["lists"] if e["list"] != "serious_violation"]
    _, [withdrawal] = correct_on_objection(live, tokens, serious, corrected, "已被复议撤销", "列入决定已被行政复议撤销")
    assert (withdrawal["kind"], withdrawal["list"], withdrawal["entered_on"]) == (
        "withdraw_listing",
        "serious_violation",
        "2024-06-01",
    )
    assert withdrawal["removed_on"] == withdrawal["decided_on"] == TODAY.isoformat()
    with live.client(tokens["analyst"]) as analyst:
        after = make_run(analyst, folder, M3)
    assert not json.loads(stored_rows(engine, after["run_id"]).set_index("entity_id").loc[serious, "features"])[
        "on_serious_violation_list"
    ]
    public = live.client().get("/v1/public/lists", params={"list": "serious_violation", "on": M3.isoformat()}).json()
    assert serious not in {e["entity_id"] for e in public["entries"]}
    # A second objection on the new row, with the same corrected history: the entry is withdrawn already,
    # and nothing more is recorded about it.
    _, decisions = correct_on_objection(live, tokens, serious, corrected, "再次异议", "同一更正")
    assert [d["kind"] for d in decisions].count("withdraw_listing") == 1


def test_a_withdrawn_red_list_entry_stops_counting_among_the_entries_ever_made(live, world, folder, tokens, engine):
    # An honour annulled on review (obtained on false materials): the red list's past entries say the
    # entity once qualified, which a withdrawn entry never did. From the decision on it no longer counts in
    # red_list_entries, as a red entry that ran its term still does; a run before the decision keeps it.
    red = world.lists[(world.lists.list == "red") & (pd.to_datetime(world.lists.entered_on) < pd.Timestamp(M1))]
    entry = red.iloc[0]
    eid, entered = entry.entity_id, pd.Timestamp(entry.entered_on).date()
    with live.client(tokens["analyst"]) as analyst:
        before = make_run(analyst, folder, M1)
    counted = json.loads(stored_rows(engine, before["run_id"]).set_index("entity_id").loc[eid, "features"])
    assert counted["red_list_entries"] >= 1
    withdrawal = {
        "kind": "withdraw_listing",
        "entity_id": eid,
        "list": "red",
        "entered_on": entered.isoformat(),
        "basis": "市市场监管局复核决定〔2025〕3号：撤销诚信红名单列入",
    }
    with live.client(tokens["reviewer"]) as reviewer:
        response = reviewer.post("/v1/ledger/decisions", json=withdrawal)
        assert response.status_code in (200, 201), response.text
        # the entry may have run its term; withdrawn once, it cannot be withdrawn again
        again = reviewer.post("/v1/ledger/decisions", json=withdrawal)
        assert again.status_code == 409 and f"was withdrawn on {TODAY.isoformat()} already" in again.json()["detail"]
    with live.client(tokens["analyst"]) as analyst:
        after = make_run(analyst, folder, M3)
        again = make_run(analyst, folder, M1)
    values = json.loads(stored_rows(engine, after["run_id"]).set_index("entity_id").loc[eid, "features"])
    assert values["red_list_entries"] == counted["red_list_entries"] - 1
    assert not values["on_red_list"]
    # as of M1, before the decision, the entry still counted: the past stays as it was
    past = json.loads(stored_rows(engine, again["run_id"]).set_index("entity_id").loc[eid, "features"])
    assert past["red_list_entries"] == counted["red_list_entries"]
    # the entity page's timeline says the entry was withdrawn, on what basis, and that the score left it out
    with live.client() as client:
        sign_in(client, tokens["supervisor"])
        page = " ".join(client.get(f"/ui/entities/{eid}").text.split())
    assert f"已于 {TODAY} 撤销 withdrawn on {TODAY}（{withdrawal['basis']}）：不计入本评分 not in this score" in page


def test_hostile_decisions_are_refused_with_the_field_and_the_rule(live, world, folder, tokens, serve, engine):
    record = repairable(world)
    eid = record.entity_id
    with live.client(tokens["analyst"]) as analyst:
        make_run(analyst, folder, M1)
        assert analyst.post("/v1/ledger/decisions", json={"kind": "repair"}).status_code == 403
    repair = repair_of(record)
    recorded = pd.Timestamp(record.recorded_on).date()
    too_early = (pd.Timestamp(recorded) + pd.DateOffset(months=2)).date()
    possible = (pd.Timestamp(recorded) + pd.DateOffset(months=6)).date()
    with live.client(tokens["reviewer"]) as reviewer:
        detail = _detail(reviewer.post("/v1/ledger/decisions", json=repair | {"repaired_on": too_early.isoformat()}))
        assert detail[0]["loc"] == ["body", "repaired_on"]
        assert "REPAIR_PENALTY" in detail[0]["msg"] and f"from {possible.isoformat()} on" in detail[0]["msg"]
        detail = _detail(reviewer.post("/v1/ledger/decisions", json=repair | {"evidence": ["credit_commitment"]}))
        assert detail[0]["loc"] == ["body", "evidence"] and "penalty_fulfilled" in detail[0]["msg"]
        detail = _detail(reviewer.post("/v1/ledger/decisions", json=repair | {"repaired_on": "2026-01-01"}))
        assert detail[0]["loc"] == ["body", "repaired_on"] and "after today" in detail[0]["msg"]
        before = (recorded.replace(day=1) - pd.Timedelta(days=1)).isoformat()
        detail = _detail(reviewer.post("/v1/ledger/decisions", json=repair | {"repaired_on": before}))
        assert any("before its record" in d["msg"] for d in detail)
        assert _detail(reviewer.post("/v1/ledger/decisions", json=repair | {"kind": "forgive"}))[0]["loc"] == [
            "body",
            "kind",
        ]
        assert _detail(reviewer.post("/v1/ledger/decisions", json=repair | {"basis": "x" * 3000}))[0]["loc"] == [
            "body",
            "basis",
        ]
        detail = _detail(reviewer.post("/v1/ledger/decisions", json=repair | {"event_id": "NO-SUCH-EVENT"}))
        assert detail[0]["loc"] == ["body", "event_id"]
        detail = _detail(reviewer.post("/v1/ledger/decisions", json=repair | {"removed_on": "2025-10-01"}))
        assert detail[0]["loc"] == ["body", "removed_on"]
        outside = reviewer.post("/v1/ledger/decisions", json=repair | {"dataset": "/etc"})
        assert _detail(outside)[0]["loc"] == ["body", "dataset"] and "/etc" not in outside.text
        positive = world.events[(world.events.entity_id == eid) & (world.events.event_type == "patent_filed")]
        if len(positive):
            detail = _detail(
                reviewer.post("/v1/ledger/decisions", json=repair | {"event_id": positive.event_id.iloc[0]})
            )
            assert "nothing to repair" in detail[0]["msg"]
        assert reviewer.get("/v1/ledger/decisions").json() == {"seq": 0, "decisions": []}
    # A token scoped to another region does not see the entity at all.
    region = world.entities.set_index("entity_id").loc[eid, "region"]
    foreign = "110000" if not str(region).startswith("11") else "310000"
    _, scoped = create_token(engine, "reviewer", "scoped-reviewer", region=foreign)
    with live.client(scoped) as reviewer:
        assert reviewer.post("/v1/ledger/decisions", json=repair).status_code == 404

    # A correction cannot add a list entry (the ledger only ends entries), nor break a repair rule.
    with live.client(tokens["analyst"]) as filer:
        current = filer.get(f"/v1/entities/{eid}/risk").json()
        objection = filer.post("/v1/objections", json={"score_id": current["score_id"], "grounds": "有误"}).json()
    corrected = history(world, eid, M1)
    del corrected["as_of"]
    added = {"entity_id": eid, "list": "red", "entered_on": "2025-01-01", "removed_on": None, "basis": "x"}
    early = json.loads(json.dumps(corrected))
    for event in early["events"]:
        if event["event_id"] == record.event_id:
            event["repaired_on"] = (pd.Timestamp(record.recorded_on) + pd.DateOffset(months=1)).date().isoformat()
    url = f"/v1/objections/{objection['objection_id']}/decision"
    with live.client(tokens["reviewer"]) as reviewer:
        listed = {**corrected, "lists": [*corrected["lists"], added]}
        detail = _detail(reviewer.post(url, json={"decision": "correct", "version": 1, "history": listed}))
        assert detail[0]["loc"][:3] == ["body", "history", "lists"] and "cannot add a list entry" in detail[0]["msg"]
        detail = _detail(reviewer.post(url, json={"decision": "correct", "version": 1, "history": early}))
        assert detail[0]["loc"] == ["body", "history", "events", detail[0]["loc"][3], "repaired_on"]
        assert "REPAIR_PENALTY" in detail[0]["msg"] and "can be repaired from" in detail[0]["msg"]
        assert reviewer.get("/v1/ledger/decisions").json()["seq"] == 0
        assert reviewer.get(f"/v1/objections/{objection['objection_id']}").json()["status"] == "open"
