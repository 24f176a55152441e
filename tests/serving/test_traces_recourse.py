"""Traceable reasons, recourse and the review queue through the real HTTP API (issue 9, items 4-6).

A small LightGBM scorer trained on the synthetic world serves a real uvicorn server (the fixtures of
``test_scoring.py``); a score run is made from the world's dataset folder through ``POST /v1/score-runs``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from itertools import combinations
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from features.build import build_features
from features.dataset import Dataset
from features.evidence import unprovided
from models.policy import load_policy, parse_policy
from models.scorer import Scorer
from serving import scoring
from serving.store import ScoreRunRecord, save_score_run
from serving.tokens import create_token
from tests.serving import test_scoring as scoring_tests
from tests.serving.conftest import POLICY_PATH, make_entities, make_scores
from tests.serving.test_scoring import AS_OF, history, make_run

# The fixtures of test_scoring.py: the world, its small trained scorer, its dataset folder, a live server.
world = scoring_tests.world
model_dir = scoring_tests.model_dir
dataset_dir = scoring_tests.dataset_dir
live = scoring_tests.live

TIERS = "ABCD"


@pytest.fixture
def scored(live, dataset_dir, tokens):
    with live.client(tokens["analyst"]) as analyst:
        return make_run(analyst, {"dataset": str(dataset_dir), "as_of": AS_OF.isoformat()})


def _rows(engine, run_id: int) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text("SELECT * FROM scores WHERE run_id = :r ORDER BY id"), conn, params={"r": run_id})


def _counted(world, entity_id: str) -> pd.DataFrame:
    events = world.events[world.events.entity_id == entity_id]
    stamp = pd.Timestamp(AS_OF)
    repaired = pd.to_datetime(events.repaired_on)
    return events[(pd.to_datetime(events.recorded_on) <= stamp) & (repaired.isna() | (repaired > stamp))]


def test_explanations_name_the_records_behind_each_contribution_and_rule(live, world, scored, tokens, engine):
    rows = _rows(engine, scored["run_id"])
    flagged = rows[rows.rules.str.len() > 0]
    entity_id = flagged.entity_id.iloc[0]
    with live.client(tokens["reviewer"]) as reviewer:
        explained = reviewer.get(f"/v1/entities/{entity_id}/explanation").json()
    assert explained["trace"] == {"traced": True, "verified": True, "note": None}
    counted = _counted(world, entity_id)
    by_feature = {c["feature"]: c for c in explained["contributions"]}
    adverse = by_feature["adverse_all"]["records"][0]
    assert adverse["table"] == "events" and adverse["count"] == by_feature["adverse_all"]["value"]
    assert set(adverse["ids"]) <= set(counted.event_id) and len(adverse["ids"]) == min(5, adverse["count"])
    assert by_feature["age_years"]["records"] == [{"table": "entities", "ids": [entity_id], "count": 1}]
    for rule in explained["rules"]:
        assert rule["records"], rule["code"]
        for part in rule["records"]:
            if part["table"] == "events":
                assert set(part["ids"]) <= set(counted.event_id)
            elif part["table"] == "lists":
                lists = world.lists[world.lists.entity_id == entity_id]
                entered = {f"{r.list}@{pd.Timestamp(r.entered_on).date()}" for r in lists.itertuples()}
                assert set(part["ids"]) <= entered


def test_what_if_names_the_posted_records(live, world, tokens):
    entity_id = _counted(world, world.events.entity_id.iloc[0]).entity_id.iloc[0]
    body = {"as_of": AS_OF.isoformat(), **history(world, entity_id)}
    with live.client(tokens["reviewer"]) as reviewer:
        scored = reviewer.post("/v1/score", json=body).json()
    assert scored["trace"]["traced"] is True
    posted = {e["event_id"] for e in body["events"]}
    for contribution in scored["contributions"]:
        if contribution["feature"] in unprovided():  # a family that has not registered its provider yet
            continue
        for part in contribution["records"]:
            if part["table"] == "events":
                assert set(part["ids"]) <= posted


def test_a_repair_naming_a_record_that_did_not_feed_the_row_is_refused(live, world, scored, tokens, engine):
    events = world.events
    later = events[pd.to_datetime(events.recorded_on) > pd.Timestamp(AS_OF)]
    rows = _rows(engine, scored["run_id"])
    scored_ids = set(rows.entity_id)
    entity_id = next(e for e in later.entity_id if e in scored_ids)
    not_fed = later[later.entity_id == entity_id].event_id.iloc[0]
    with live.client(tokens["analyst"]) as filer:
        row = filer.get(f"/v1/entities/{entity_id}/risk").json()
        objection = filer.post("/v1/objections", json={"score_id": row["score_id"], "grounds": "已修复"}).json()
    with live.client(tokens["reviewer"]) as reviewer:
        decision = {"decision": "repair", "version": 1, "repairs": [{"event_id": not_fed, "repaired_on": "2025-12-01"}]}
        response = reviewer.post(f"/v1/objections/{objection['objection_id']}/decision", json=decision)
        assert response.status_code == 422, response.text
        [problem] = response.json()["detail"]
        assert problem["loc"] == ["body", "repairs", 0, "event_id"] and not_fed in problem["msg"]
        assert f"did not feed score row {row['score_id']}" in problem["msg"]
        detail = reviewer.get(f"/v1/objections/{objection['objection_id']}").json()
        assert detail["status"] == "open"
        # The snapshot objected to names its records too: the ids a repair may take.
        snapshot = detail["explanation"]
        assert snapshot["trace"]["traced"] and snapshot["score_id"] == row["score_id"]
        adverse = next(c for c in snapshot["contributions"] if c["feature"] == "adverse_all")["records"][0]
        assert not_fed not in adverse["ids"] and adverse["count"] == next(
            c["value"] for c in snapshot["contributions"] if c["feature"] == "adverse_all"
        )


def _what_if(client, world, entity_id: str, as_of, steps, model_version: str, policy_version: str) -> dict:
    """The what-if of doing ``steps``: each event repaired, each list entry removed on its date."""
    body = {
        "as_of": str(as_of),
        "model_version": model_version,
        "policy_version": policy_version,
        **history(world, entity_id),
    }
    for step in steps:
        if step["table"] == "events":
            for event in body["events"]:
                if event["event_id"] == step["id"]:
                    event["repaired_on"] = min(filter(None, [event["repaired_on"], step["possible_from"]]))
        else:
            name, entered = step["id"].split("@")
            for entry in body["lists"]:
                if entry["list"] == name and entry["entered_on"] == entered:
                    entry["removed_on"] = min(filter(None, [entry["removed_on"], step["possible_from"]]))
    response = client.post("/v1/score", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_recourse_promises_what_doing_it_gives(live, world, scored, tokens, engine):
    rows = _rows(engine, scored["run_id"])
    plans = []
    with live.client(tokens["reviewer"]) as reviewer:
        for row in rows[rows.tier.isin(["C", "D"])].itertuples():
            answer = reviewer.get(f"/v1/scores/{row.id}/recourse")
            if answer.status_code == 409:  # too many candidates to try every set: said, not guessed
                assert "candidate" in answer.json()["detail"]
                continue
            assert answer.status_code == 200, answer.text
            answer = answer.json()
            assert answer["model_version"] == row.model_version and answer["policy_version"] == row.policy_version
            if answer["plan"] is not None:
                plans.append((row, answer))
            if len(plans) >= 3:
                break
        assert plans, "some C/D row of the world can be lowered"
        for row, answer in plans:
            plan = answer["plan"]
            assert TIERS.index(plan["tier"]) < TIERS.index(row.tier)
            assert plan["on"] == max([str(row.as_of), *(s["possible_from"] for s in plan["steps"])])
            candidate_ids = {c["id"] for c in answer["candidates"]}
            assert {s["id"] for s in plan["steps"]} <= candidate_ids
            # Doing what recourse says gives the promised tier, with the row's own model and policy.
            done = _what_if(
                reviewer, world, row.entity_id, plan["on"], plan["steps"], row.model_version, row.policy_version
            )
            assert done["tier"] == plan["tier"] and done["score"] == pytest.approx(plan["score"], rel=1e-9)
            assert done["model_version"] == row.model_version
            # Smallest: no smaller set of candidates lowers the tier (each tried as recourse tries it).
            smaller = len(plan["steps"]) - 1
            for subset in combinations(answer["candidates"], smaller) if smaller else []:
                on = max([str(row.as_of), *(s["possible_from"] for s in subset)])
                tried = _what_if(reviewer, world, row.entity_id, on, subset, row.model_version, row.policy_version)
                assert TIERS.index(tried["tier"]) >= TIERS.index(row.tier), [s["id"] for s in subset]


def test_recourse_refuses_hostile_and_out_of_role_requests(live, world, scored, tokens, engine):
    rows = _rows(engine, scored["run_id"])
    row = rows.iloc[0]
    region = world.entities.set_index("entity_id").region[row.entity_id]
    other = next(r for r in ("110000", "650000") if not region.startswith(r[:2]))
    _, elsewhere = create_token(engine, "reviewer", "elsewhere", region=other)
    with live.client(tokens["reviewer"]) as reviewer:
        for bad in ("0", "-1", str(10**30), str(rows.id.max() + 1000)):
            assert reviewer.get(f"/v1/scores/{bad}/recourse").status_code == 404, bad
        assert reviewer.get("/v1/scores/abc/recourse").status_code == 422
        assert reviewer.get("/v1/objections/999999/recourse").status_code == 404
    with live.client(elsewhere) as outsider:
        assert outsider.get(f"/v1/scores/{row.id}/recourse").status_code == 404
    with live.client(tokens["supervisor"]) as supervisor:
        assert supervisor.get(f"/v1/scores/{row.id}/recourse").status_code == 403
    with live.client() as anonymous:
        assert anonymous.get(f"/v1/scores/{row.id}/recourse").status_code == 401


def test_what_if_names_only_versions_it_has(live, world, scored, tokens):
    body = {"as_of": AS_OF.isoformat(), **history(world, world.entities.entity_id.iloc[0])}
    with live.client(tokens["reviewer"]) as reviewer:
        for field, value in (("model_version", "999"), ("policy_version", "1999.1+deadbeef")):
            response = reviewer.post("/v1/score", json={**body, field: value})
            assert response.status_code == 422, response.text
            [problem] = response.json()["detail"]
            assert problem["loc"] == ["body", field] and value in problem["msg"]
        response = reviewer.post("/v1/score", json={**body, "model_version": "../../etc/passwd"})
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "model_version"]


def test_the_review_queue_holds_each_item_until_it_is_decided(live, world, scored, tokens, engine):
    rows = _rows(engine, scored["run_id"])
    gap = (rows.tier.map(TIERS.index) - rows.model_tier.map(TIERS.index)).abs()
    flagged = rows[rows.review | (gap >= 2)]
    assert len(flagged) >= 2
    with live.client(tokens["reviewer"]) as reviewer:
        queue = reviewer.get("/v1/review-queue", params={"limit": 500}).json()
        assert queue["total"] == len(flagged) == len(queue["items"])
        assert {i["score_id"] for i in queue["items"]} == set(flagged.id)
        since = [i["since"] for i in queue["items"]]
        assert since == sorted(since)
        for item in queue["items"]:
            reasons = {r["reason"] for r in item["reasons"]}
            assert item["kind"] == "row" and reasons and reasons <= {"disagreement", "policy_review"}
            assert all(r["detail"] and r["since"] for r in item["reasons"])
        # Pages are consecutive slices of the one order.
        first, second = (reviewer.get("/v1/review-queue", params={"limit": 2, "offset": o}).json() for o in (0, 2))
        assert [i["score_id"] for i in first["items"] + second["items"]] == [i["score_id"] for i in queue["items"][:4]]
        region = queue["items"][0]["region"]
        regional = reviewer.get("/v1/review-queue", params={"region": region, "limit": 500}).json()
        assert regional["items"] and all(i["region"].startswith(region) for i in regional["items"])

    target = queue["items"][0]
    with live.client(tokens["analyst"]) as filer:
        objection = filer.post("/v1/objections", json={"score_id": target["score_id"], "grounds": "请复核"}).json()
        plain = rows[~rows.id.isin(flagged.id)].iloc[0]
        other = filer.post("/v1/objections", json={"score_id": int(plain.id), "grounds": "数据有误"}).json()
    with live.client(tokens["reviewer"]) as reviewer:
        queue = reviewer.get("/v1/review-queue", params={"limit": 500}).json()
        assert queue["total"] == len(flagged) + 1
        items = {(i["kind"], i["score_id"]): i for i in queue["items"]}
        merged = items[("objection", target["score_id"])]
        assert merged["objection_id"] == objection["objection_id"]
        assert {r["reason"] for r in merged["reasons"]} >= {"objection"}
        assert merged["since"] == target["since"], "the row waited before the objection was filed"
        filed = next(r for r in merged["reasons"] if r["reason"] == "objection")
        assert filed["since"][:19] == objection["filed_at"][:19] and filed["since"] > target["since"]
        assert ("row", target["score_id"]) not in items
        assert items[("objection", int(plain.id))]["reasons"][0]["reason"] == "objection"
        only = reviewer.get("/v1/review-queue", params={"reason": "objection"}).json()
        assert {i["objection_id"] for i in only["items"]} == {objection["objection_id"], other["objection_id"]}
        for decided in (objection, other):
            response = reviewer.post(
                f"/v1/objections/{decided['objection_id']}/decision",
                json={"decision": "uphold", "version": decided["version"], "note": "复核：等级维持"},
            )
            assert response.status_code == 200, response.text
        after = reviewer.get("/v1/review-queue", params={"limit": 500}).json()
        assert after["total"] == len(flagged) - 1
        assert target["score_id"] not in {i["score_id"] for i in after["items"]}


def test_the_review_queue_refuses_hostile_paging_and_other_regions(live, world, scored, tokens, engine):
    _, scoped = create_token(engine, "reviewer", "dandong", region="210600")
    with live.client(tokens["reviewer"]) as reviewer:
        for params in (
            {"limit": 0},
            {"limit": 501},
            {"offset": -1},
            {"offset": 10**7},
            {"limit": "ten"},
            {"region": "21060"},
            {"region": "2106000"},
            {"region": "abcdef"},
            {"reason": "everything"},
        ):
            response = reviewer.get("/v1/review-queue", params=params)
            assert response.status_code == 422, params
            assert response.json()["detail"][0]["loc"][:2] == ["query", next(iter(params))]
    with live.client(scoped) as regional:
        mine = regional.get("/v1/review-queue", params={"limit": 500}).json()
        assert all(i["region"].startswith("2106") for i in mine["items"])
        response = regional.get("/v1/review-queue", params={"region": "440300"})
        assert response.status_code == 403 and "region" in response.json()["detail"]
        assert regional.get("/v1/review-queue", params={"region": "210602"}).status_code == 200
    for role in ("supervisor", "analyst"):
        with live.client(tokens[role]) as client:
            assert client.get("/v1/review-queue").status_code == 403
    with live.client() as anonymous:
        assert anonymous.get("/v1/review-queue").status_code == 401
    assert json.loads(json.dumps(mine))["total"] == len(mine["items"])


def test_rows_of_linked_entities_are_traced_and_reproduced_with_their_links(live, world, tokens, tmp_path, engine):
    """With the optional relations table, a row's history brings the links and the linked entities'
    records, so its features (relationship features included) are rebuilt exactly and recourse starts
    from the row itself."""
    folder = tmp_path / "linked"
    folder.mkdir()
    for name in ("entities", "events", "lists", "relations"):
        getattr(world, name).to_parquet(folder / f"{name}.parquet", index=False)
    with live.client(tokens["analyst"]) as analyst:
        run = make_run(analyst, {"dataset": str(folder), "as_of": AS_OF.isoformat()})
    rows = _rows(engine, run["run_id"]).set_index("entity_id")
    links = world.relations
    linked = [e for e in dict.fromkeys([*links.entity_id, *links.related_id]) if e in rows.index]
    chosen = [e for e in linked if rows.loc[e, "tier"] in ("C", "D")][:3] or linked[:3]
    assert chosen
    with live.client(tokens["reviewer"]) as reviewer:
        for entity_id in chosen:
            explained = reviewer.get(f"/v1/entities/{entity_id}/explanation").json()
            assert explained["trace"]["traced"] and explained["trace"]["verified"], explained["trace"]
            answer = reviewer.get(f"/v1/scores/{int(rows.loc[entity_id, 'id'])}/recourse")
            assert answer.status_code in (200, 409), answer.text
            if answer.status_code == 409:
                assert "candidate" in answer.json()["detail"], answer.json()["detail"]


def _register(scorer_dir, tracking_uri: str) -> str:
    """Register a scorer directory as a version of model ``ipcredit`` in the MLflow store, as
    ``models.registry.log_training`` logs one (models from code, the scorer and the policy as artifacts)."""
    import mlflow

    from models import registry

    client = registry.connect(tracking_uri)
    experiment = registry.ensure_experiment(client, registry.default_artifact_root(tracking_uri, None))
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pyfunc.log_model(
            name=registry.MODEL_ARTIFACT,
            python_model=str(Path(registry.__file__).with_name("mlflow_model.py")),
            artifacts={"scorer": str(scorer_dir), "policy": str(POLICY_PATH)},
            registered_model_name=registry.MODEL_NAME,
            await_registration_for=0,
        )
    return str(info.registered_model_version)


def test_recourse_uses_the_rows_own_model_not_the_champion(
    serve, world, model_dir, dataset_dir, tokens, engine, tmp_path
):
    """Two registered versions in a real MLflow store: the row was scored by version 1, the champion is
    version 2. Recourse loads version 1 from the registry (with version 2 the row would not even be
    reproduced), and what-if with the row's model version gives exactly the promised tier and score."""
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    own = Scorer.load(model_dir)
    ds = Dataset.from_frames(world.entities, world.events, world.lists)
    matrix = own.matrix(build_features(ds, AS_OF))
    labels = np.arange(len(matrix)) % 7 == 0  # another model: trees fitted to other labels
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1, "seed": 2}, lgb.Dataset(matrix, label=labels), 15
    )
    other = Scorer(booster, own.calibrator, own.feature_names, own.feature_version)
    assert _register(model_dir, tracking_uri) == "1"
    assert _register(other.save(tmp_path / "other"), tracking_uri) == "2"
    live = serve(model_uri="models:/ipcredit/2")

    scorer = Scorer.load(model_dir, model_version="1")
    rows = scoring.score_dataset(scorer, load_policy(POLICY_PATH), ds, AS_OF)
    policy_text = POLICY_PATH.read_text(encoding="utf-8")
    save_score_run(
        engine,
        ScoreRunRecord(
            scores=rows,
            entities=world.entities,
            as_of=AS_OF,
            dataset_fingerprint="world",
            data_source=str(dataset_dir),
            policy_text=policy_text,
            policy_version=load_policy(POLICY_PATH).version_tag,
            model_version="1",
            feature_version=scoring.feature_version_of(rows),
        ),
    )
    with engine.connect() as conn:
        stored = pd.read_sql(text("SELECT * FROM scores ORDER BY id"), conn)
    with live.client(tokens["reviewer"]) as reviewer:
        assert reviewer.get("/health").json()["model_version"] == "2"
        found = None
        for row in stored[stored.tier.isin(["C", "D"])].itertuples():
            answer = reviewer.get(f"/v1/scores/{row.id}/recourse")
            assert answer.status_code in (200, 409), answer.text
            if answer.status_code == 200 and answer.json()["plan"]:
                found = (row, answer.json())
                break
        assert found, "a C/D row with a plan"
        row, answer = found
        assert answer["model_version"] == "1"
        plan = answer["plan"]
        done = _what_if(reviewer, world, row.entity_id, plan["on"], plan["steps"], "1", row.policy_version)
        assert done["model_version"] == "1" and done["tier"] == plan["tier"]
        assert done["score"] == pytest.approx(plan["score"], rel=1e-9)
        body = {"as_of": str(row.as_of), **history(world, row.entity_id)}
        with_champion = reviewer.post("/v1/score", json=body).json()
        assert with_champion["model_version"] == "2" and with_champion["score"] != pytest.approx(row.score)


def test_what_if_tiers_with_a_policy_a_stored_run_used(live, world, tokens, engine):
    """A run stored under another policy version (its text kept with the run): what-if can tier with it."""
    text_now = POLICY_PATH.read_text(encoding="utf-8")
    older = text_now.replace('version = "', 'version = "1999.', 1).replace(
        "A = 0.03, B = 0.10, C = 0.30", "A = 0.5, B = 0.6, C = 0.7"
    )
    assert older != text_now
    policy = parse_policy(older, source="older")
    entities = world.entities.iloc[:3]
    scores = make_scores(entities)
    scores["policy_version"] = policy.version_tag
    save_score_run(
        engine,
        ScoreRunRecord(
            scores=scores,
            entities=entities,
            as_of=AS_OF,
            dataset_fingerprint="older",
            data_source="tests",
            policy_text=older,
            policy_version=policy.version_tag,
            model_version="7",
            feature_version="test",
        ),
    )
    entity_id = _counted(world, world.events.entity_id.iloc[0]).entity_id.iloc[0]
    body = {"as_of": AS_OF.isoformat(), **history(world, entity_id)}
    with live.client(tokens["reviewer"]) as reviewer:
        now = reviewer.post("/v1/score", json=body).json()
        then = reviewer.post("/v1/score", json={**body, "policy_version": policy.version_tag, "model_version": "7"})
        assert then.status_code == 200, then.text
        then = then.json()
    assert then["policy_version"] == policy.version_tag != now["policy_version"]
    assert then["score"] == now["score"] and then["model_tier"] == policy.model_tiers([then["score"]])[0]


def test_a_flagged_rows_wait_counts_from_the_start_of_its_unbroken_series(serve, tokens, engine):
    """Three monthly runs: an entity flagged in all three waits since the first; one flagged, then not,
    then flagged again, since the third; one whose flagged row was decided (upheld), since the run after."""
    entities = make_entities(6, seed=3)
    ids = entities.entity_id.tolist()
    flags = {ids[0]: (True, True, True), ids[1]: (True, False, True), ids[2]: (True, True, True)}
    policy = load_policy(POLICY_PATH)
    runs = []
    for month, as_of in enumerate((date(2025, 9, 30), date(2025, 10, 31), date(2025, 11, 30))):
        scores = make_scores(entities, as_of=as_of, seed=month)
        scores["review"] = [flags.get(e, (False,) * 3)[month] for e in ids]
        scores["tier"] = scores["model_tier"]  # no disagreement: only the policy's flag puts a row in
        record = ScoreRunRecord(
            scores=scores,
            entities=entities,
            as_of=as_of,
            dataset_fingerprint=f"m{month}",
            data_source="tests",
            policy_text=POLICY_PATH.read_text(encoding="utf-8"),
            policy_version=policy.version_tag,
            model_version="1",
            feature_version="test",
        )
        runs.append(save_score_run(engine, record))
        if month == 0:  # the first row of ids[2] is decided: upheld after an objection
            with engine.begin() as conn:
                score_id = conn.execute(
                    text("SELECT id FROM scores WHERE run_id = :r AND entity_id = :e"), {"r": runs[0], "e": ids[2]}
                ).scalar_one()
                conn.execute(
                    text(
                        "INSERT INTO objections (score_id, entity_id, grounds, filed_by, filed_at, status, version)"
                        " VALUES (:s, :e, 'x', 'a#1', :t, 'upheld', 2)"
                    ),
                    {"s": score_id, "e": ids[2], "t": datetime.now(UTC)},
                )
    with engine.connect() as conn:
        created = dict(conn.execute(text("SELECT id, created_at FROM score_runs")).all())
    live = serve()
    with live.client(tokens["reviewer"]) as reviewer:
        queue = reviewer.get("/v1/review-queue").json()
    since = {i["entity_id"]: i["since"] for i in queue["items"]}
    assert set(since) == {ids[0], ids[1], ids[2]}

    def same(a: str, b) -> bool:
        return pd.Timestamp(a).tz_localize(None) == pd.Timestamp(b).tz_localize(None)

    assert same(since[ids[0]], created[runs[0]])
    assert same(since[ids[1]], created[runs[2]])
    assert same(since[ids[2]], created[runs[1]])
    assert queue["items"][0]["entity_id"] == ids[0], "the longest wait comes first"


def test_a_delivery_changed_after_a_trace_is_traced_afresh(live, world, scored, dataset_dir, tokens, engine):
    """The service keeps a row's trace, keyed by the dataset folder's files: rewriting the delivery after the
    row was explained makes the next explanation trace it again and say the records no longer match."""
    rows = _rows(engine, scored["run_id"])
    entity_id = rows[rows.rules.str.len() > 0].entity_id.iloc[0]
    with live.client(tokens["reviewer"]) as reviewer:
        first = reviewer.get(f"/v1/entities/{entity_id}/explanation").json()
        again = reviewer.get(f"/v1/entities/{entity_id}/explanation").json()
        assert first["trace"] == again["trace"] == {"traced": True, "verified": True, "note": None}
        assert first["contributions"] == again["contributions"]
        counted = _counted(world, entity_id)
        changed = world.events[world.events.event_id != counted.event_id.iloc[0]]
        changed.to_parquet(dataset_dir / "events.parquet", index=False)  # one counted record gone
        after = reviewer.get(f"/v1/entities/{entity_id}/explanation").json()
    assert after["trace"]["traced"] is False and after["trace"]["verified"] is False
    assert "differ" in after["trace"]["note"] or "changed" in after["trace"]["note"], after["trace"]
