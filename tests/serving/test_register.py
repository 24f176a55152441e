"""Draws nobody can steer: no caller seed, a seed derived from inputs fixed before the draw, every draw in
a public append-only register that anyone can check, population commitments that reveal no tier.

The checks recompute what the register publishes with their own code (hashlib and json), not the
service's, so they hold the published format to its description.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.serving.conftest import make_entities, roster, store_run


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def seed_of(inputs: dict) -> int:
    return int.from_bytes(hashlib.sha256(canonical(inputs)).digest()[:8], "big") >> 1


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def world(engine):
    entities = make_entities(240, seed=21)
    store_run(engine, entities)
    return entities


@pytest.fixture
def live(serve, world, tokens):
    server = serve()
    with server.client(tokens["admin"]) as admin:
        assert admin.put("/v1/admin/inspectors", json={"inspectors": roster(), "replace": True}).status_code == 200
    return server


def test_a_seed_in_the_request_is_refused(live, tokens):
    with live.client(tokens["supervisor"]) as client:
        for seed in (1, 20261121, None, "x"):
            response = client.post("/v1/sampling/draws", json={"seed": seed})
            assert response.status_code == 422, response.text
            item = response.json()["detail"][0]
            assert item["loc"] == ["body", "seed"] and "derives" in item["msg"]
        for field in ("secret", "sequence", "previous_hash", "random_state"):
            response = client.post("/v1/sampling/draws", json={field: 1})
            assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", field]
    with live.client() as public:
        assert public.get("/v1/public/draws").json()["total"] == 0, "a refused request draws nothing"


def test_the_seed_comes_from_inputs_committed_before_the_draw(live, tokens):
    with live.client() as public:
        before = public.get("/v1/public/draws").json()
    committed = before["next_secret_hash"]
    assert committed and len(committed) == 64
    with live.client(tokens["supervisor"]) as client:
        draw = client.post("/v1/sampling/draws", json={"ratios": {"D": 0.9}, "filter": {"kind": "enterprise"}})
        assert draw.status_code == 201, draw.text
        draw = draw.json()
    inputs = draw["seed_inputs"]
    assert committed not in json.dumps(before["draws"]) and inputs["secret"] not in json.dumps(before)
    assert sha256(bytes.fromhex(inputs["secret"])) == committed, "the secret revealed is the one committed before"
    assert draw["seed"] == seed_of(inputs), "the seed is the hash of the published inputs"
    assert inputs["sequence"] == draw["sequence"] == before["next_sequence"] == 1
    assert inputs["previous_hash"] == "0" * 64
    assert inputs["filter"] == {"kind": "enterprise"} and inputs["ratios"] == {"D": 0.9}
    assert inputs["population_size"] == draw["population_size"] and inputs["roster_hash"] == draw["roster_hash"]


def test_the_same_request_twice_gets_two_seeds_and_both_stay_in_the_register(live, tokens):
    with live.client(tokens["supervisor"]) as client:
        made = [client.post("/v1/sampling/draws", json={}).json() for _ in range(3)]
    assert len({d["seed"] for d in made}) == 3, "drawing again does not repeat (or let anyone pick) a seed"
    with live.client() as public:
        register = public.get("/v1/public/draws").json()
        assert register["total"] == 3
        assert [d["draw_id"] for d in register["draws"]] == [d["draw_id"] for d in reversed(made)], "newest first"
        page = public.get("/v1/public/draws", params={"limit": 1, "offset": 1}).json()
        assert [d["draw_id"] for d in page["draws"]] == [made[1]["draw_id"]] and page["total"] == 3
        everyone = public.get(f"/v1/public/draws/{made[0]['draw_id']}").json()["selected"]
        pages = [
            public.get(f"/v1/public/draws/{made[0]['draw_id']}", params={"limit": 5, "offset": o}).json()["selected"]
            for o in range(0, len(everyone), 5)
        ]
        assert [s for p in pages for s in p] == everyone and all(len(p) <= 5 for p in pages), "selected entities page"
        entries = sorted(register["draws"], key=lambda d: d["sequence"])
        assert [d["sequence"] for d in entries] == [1, 2, 3]
        for previous, entry in itertools.pairwise(entries):
            assert entry["seed_inputs"]["previous_hash"] == previous["record_hash"], "a hash chain"
            assert sha256(bytes.fromhex(entry["seed_inputs"]["secret"])) == previous["next_secret_hash"]
        assert register["next_secret_hash"] == entries[-1]["next_secret_hash"]
        for entry in entries:
            assert entry["seed"] == seed_of(entry["seed_inputs"])
            verification = public.get(f"/v1/public/draws/{entry['draw_id']}/verify").json()
            assert verification["verified"] is True, verification
            assert all(verification["checks"].values()) and len(verification["checks"]) >= 8
            published = public.get(f"/v1/public/draws/{entry['draw_id']}").json()
            ids = sorted(s["entity_id"] for s in published["selected"])
            assert sha256("\n".join(ids).encode()) == verification["selection_hash"]
            record = {
                "draw_id": entry["draw_id"],
                "sequence": entry["sequence"],
                "created_at": published["created_at"].replace("Z", "+00:00"),
                "seed_inputs": entry["seed_inputs"],
                "seed": entry["seed"],
                "population_size": entry["population_size"],
                "population_hash": entry["population_hash"],
                "selected_count": entry["selected_count"],
                "selection_hash": verification["selection_hash"],
                "next_secret_hash": entry["next_secret_hash"],
            }
            assert sha256(canonical(record)) == entry["record_hash"], "anyone can recompute the record's hash"
        text_ = json.dumps(register)
        assert '"tier"' not in text_ and '"score"' not in text_ and '"population_salt"' not in text_


def test_population_commitments_are_salted_per_draw_and_reveal_no_tier(live, tokens):
    with live.client(tokens["supervisor"]) as client:
        first = client.post("/v1/sampling/draws", json={}).json()
        second = client.post("/v1/sampling/draws", json={}).json()
        population = client.get(f"/v1/sampling/draws/{first['draw_id']}/population")
    rows = [line.split(",") for line in population.text.splitlines()[1:]]
    ids = np.array([r[0] for r in rows], dtype="S18").tobytes()
    tiers = np.array([r[1] for r in rows], dtype="S1").tobytes()
    assert first["population_size"] == second["population_size"] == len(rows)
    assert first["population_hash"] != second["population_hash"], "the same population, two commitments"
    assert sha256(ids + tiers) not in (first["population_hash"], second["population_hash"]), (
        "a guess of the tiers can no longer be confirmed against the published hash"
    )
    salt = population.headers["x-population-salt"]
    assert sha256(bytes.fromhex(salt) + ids + tiers) == first["population_hash"], "those who hold it can check it"
    with live.client() as public:
        published = public.get(f"/v1/public/draws/{first['draw_id']}").json()
    assert published["population_hash"] == first["population_hash"] and salt not in json.dumps(published)


def test_draws_their_selections_secrets_snapshots_and_results_are_append_only(live, tokens, engine):
    with live.client(tokens["supervisor"]) as client:
        draw = client.post("/v1/sampling/draws", json={}).json()
        chosen = draw["selected"][0]["entity_id"]
        result = {"entity_id": chosen, "outcome": "failed", "inspected_on": "2026-01-05"}
        posted = client.post(f"/v1/sampling/draws/{draw['draw_id']}/results", json={"results": [result]})
        assert posted.status_code == 201, posted.text
    for statement in (
        "UPDATE draws SET seed = 1",
        "DELETE FROM draws",
        "UPDATE draw_selections SET entity_id = 'x'",
        "DELETE FROM draw_selections",
        "UPDATE populations SET size = 0",
        "DELETE FROM populations",
        "UPDATE draw_secrets SET secret = 'x'",
        "DELETE FROM draw_secrets",
        "UPDATE inspection_results SET event_type = 'inspection_passed'",
        "DELETE FROM inspection_results",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with live.client() as public:
        assert public.get(f"/v1/public/draws/{draw['draw_id']}/verify").json()["verified"] is True


def test_concurrent_draws_keep_one_unbroken_chain(live, tokens):
    barrier = threading.Barrier(4)
    answers: list[int] = []

    def draw() -> None:
        with live.client(tokens["supervisor"]) as client:
            barrier.wait()
            answers.append(client.post("/v1/sampling/draws", json={}).status_code)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [201] * 4, answers
    with live.client() as public:
        entries = sorted(public.get("/v1/public/draws").json()["draws"], key=lambda d: d["sequence"])
        assert [d["sequence"] for d in entries] == [1, 2, 3, 4]
        for previous, entry in itertools.pairwise(entries):
            assert entry["seed_inputs"]["previous_hash"] == previous["record_hash"]
        assert all(public.get(f"/v1/public/draws/{d['draw_id']}/verify").json()["verified"] for d in entries)


def test_a_county_supervisor_draws_within_its_region(serve, world, tokens):
    live = serve()
    with live.client(tokens["admin"]) as admin:
        assert admin.put("/v1/admin/inspectors", json={"inspectors": roster(), "replace": True}).status_code == 200
        county = admin.post("/v1/admin/tokens", json={"role": "supervisor", "region": "210600"}).json()["token"]
    with live.client(county) as client:
        draw = client.post("/v1/sampling/draws", json={}).json()
        assert draw["filter"] == {"region": "2106"} and draw["selected"]
        assert all(s["entity_id"][2:6] == "2106" for s in draw["selected"])
        response = client.post("/v1/sampling/draws", json={"filter": {"region": "41"}})
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "filter", "region"]
    with live.client(tokens["supervisor"]) as national:
        other = national.post("/v1/sampling/draws", json={"filter": {"region": "4101"}}).json()
    with live.client(county) as client:
        for path in ("", "/population", "/verify"):
            assert client.get(f"/v1/sampling/draws/{other['draw_id']}{path}").status_code == 404
        assert client.get(f"/v1/sampling/draws/{draw['draw_id']}").status_code == 200
