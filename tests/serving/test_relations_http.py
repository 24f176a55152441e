"""Relationships through the real HTTP API (issue 16, item 3): a dataset with ``relations`` is scored by a
model that reads the relationship features, and an explanation cites the links behind them without
telling a region-scoped reader anything about an entity outside its region, nor anyone another entity's
score or tier."""

from __future__ import annotations

from datetime import date

import pytest

from features.build import build_features
from features.dataset import Dataset
from features.relations import HIDDEN
from features.sql import related_features
from features.synth import generate
from serving.tokens import create_token
from tests.serving.conftest import train_scorer
from tests.serving.test_scoring import AS_OF, make_run

RELATED = [f.name for f in related_features()]


@pytest.fixture(scope="module")
def world():
    return generate(3000, seed=16)


@pytest.fixture(scope="module")
def model_dir(world, tmp_path_factory):
    """A small scorer trained with the relationship features (so they carry contributions)."""
    snapshots = (date(2021, 12, 31), date(2022, 12, 31), date(2023, 6, 30))
    return train_scorer(world, snapshots, tmp_path_factory.mktemp("model"), model_version="16", relations=True)


@pytest.fixture
def dataset_dir(world, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("entities", "events", "lists", "relations"):
        getattr(world, name).to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def _cross_region_entity(world) -> tuple[str, str, set[str]]:
    """An entity with a related entity on record in another region: its id, its region, the others' ids."""
    ds = Dataset.from_frames(world.entities, world.events, world.lists, relations=world.relations)
    features = build_features(ds, AS_OF).set_index("entity_id")
    region = world.entities.set_index("entity_id")["region"]
    links = world.relations
    for entity_id in features.index[(features["related_adverse_36m"] > 0).to_numpy()]:
        touching = links[(links.entity_id == entity_id) | (links.related_id == entity_id)]
        others = (set(touching.entity_id) | set(touching.related_id)) - {entity_id}
        outside = {o for o in others if region[o] != region[entity_id]}
        if outside:
            return entity_id, region[entity_id], outside
    raise AssertionError("the world has an entity linked to another region")


def test_an_explanation_cites_links_and_leaks_no_other_region_score_or_tier(
    serve, model_dir, dataset_dir, world, engine, tokens
):
    live = serve(model_uri=str(model_dir))
    with live.client(tokens["analyst"]) as analyst:
        run = make_run(analyst, {"dataset": str(dataset_dir), "as_of": AS_OF.isoformat()})
    entity_id, region, outside = _cross_region_entity(world)
    _, scoped = create_token(engine, "reviewer", "scoped-reviewer", region=region)
    with live.client(scoped) as reviewer:
        response = reviewer.get(f"/v1/entities/{entity_id}/explanation")
        assert response.status_code == 200, response.text
        explained = response.json()
        other = sorted(outside)[0]
        assert reviewer.get(f"/v1/entities/{other}/explanation").status_code in (403, 404)
    assert explained["as_of"] == AS_OF.isoformat() and run["run_id"]
    by_feature = {c["feature"]: c for c in explained["contributions"]}
    cited = by_feature["related_adverse_36m"]
    assert cited["value"] > 0
    [records] = cited["records"]
    assert records["table"] == "relations" and records["count"] >= 1
    assert any(HIDDEN in i for i in records["ids"]), records
    # The reason names the relations of the links it cites, e.g. "(shared legal representative 1)".
    assert cited["text_en"].startswith("unrepaired adverse records of related entities in the last 36 months: ")
    assert cited["text_en"].endswith(")") and "（" in cited["text_zh"]
    text = response.text
    for other in outside:
        assert other not in text, f"the explanation names {other}, an entity outside region {region}"
    # Nothing of another entity but the existence of its link: no score, tier or feature value of it.
    for name in RELATED:
        for part in by_feature[name]["records"] or []:
            assert part["table"] == "relations"
            assert all(
                i.split(":", 1)[0] in {"agency_client", "shared_legal_representative", "shareholder", "shared_address"}
                for i in part["ids"]
            )
    assert explained["entity_id"] == entity_id
