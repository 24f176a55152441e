"""Relationships: the optional ``relations`` table is validated like the others, and the relationship
features see one hop over the links in force at D, the related records known and unrepaired at D, and
nothing recorded after D."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.build import build_features, build_features_from_frames
from features.catalogue import Related, RelatedMeasure, Side
from features.dataset import Dataset, load_dataset
from features.evidence import EntityHistory, evidence
from features.ledger import overlay_dataset
from features.relations import HIDDEN, counted_links, link_id, parse_link_id, relation_reason, visible_links
from features.schema import RELATIONS
from features.sql import DUCKDB, related_features, relation_query
from features.synth import generate
from features.validate import validate_dataset
from serving.cli import app
from tests.conftest import History
from tests.features.test_validate import problems_of

D = date(2024, 6, 30)
RELATED = [f.name for f in related_features()]


def link(entity_id, related_id, relation, from_on, to_on=None, recorded_on=None) -> dict:
    return {
        "entity_id": entity_id,
        "related_id": related_id,
        "relation": relation,
        "from_on": from_on,
        "to_on": to_on,
        "recorded_on": recorded_on or from_on,
    }


def links_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=RELATIONS.column_names)
    for column in ("from_on", "to_on", "recorded_on"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ms]")
    return frame


def dataset(history: History, rows: list[dict]) -> Dataset:
    f = history.frames()
    return Dataset.from_frames(f["entities"], f["events"], f["lists"], relations=links_frame(rows))


def related_row(history: History, rows: list[dict], entity_id: str, as_of: date = D) -> pd.Series:
    return build_features(dataset(history, rows), as_of).set_index("entity_id").loc[entity_id, RELATED]


# ---- the table ---------------------------------------------------------------------------------------


def test_a_dataset_without_relations_is_valid_and_keeps_its_fingerprint(history, tmp_path):
    a = history.entity()
    history.event(a, "infringement_penalty", date(2023, 1, 1))
    f = history.frames()
    without = Dataset.from_frames(f["entities"], f["events"], f["lists"])
    assert validate_dataset(without).ok
    history.write(tmp_path)
    folder = load_dataset(tmp_path)
    assert validate_dataset(folder).ok and "relations" not in folder.files
    features = build_features(folder, D)
    assert (features[RELATED] == 0).all().all()
    # An absent optional table adds nothing to the fingerprint; an empty one given is a table given.
    assert without.fingerprint == Dataset.from_frames(f["entities"], f["events"], f["lists"]).fingerprint
    assert without.fingerprint != dataset(history, []).fingerprint


def test_every_kind_of_link_problem_is_reported_where_it_is(history):
    agency = history.entity(kind="agency", industry="M")
    a, b = history.entity(), history.entity()
    unknown = "91210600MA0000000X"
    rows = [
        link(agency, a, "agency_client", date(2022, 1, 1)),  # 1: fine
        link(a, b, "agency_client", date(2022, 1, 1)),  # 2: an enterprise cannot be the agency
        link(a, a, "shared_address", date(2022, 1, 1)),  # 3: a self-link
        link(a, unknown, "shareholder", date(2022, 1, 1)),  # 4: unknown related_id
        link(unknown, a, "shareholder", date(2022, 1, 1)),  # 5: unknown entity_id
        link(a, b, "friends", date(2022, 1, 1)),  # 6: not a relation
        link(a, b, "shareholder", date(2022, 1, 1), to_on=date(2021, 1, 1)),  # 7: ends before it begins
        link(b, a, "shared_legal_representative", date(2020, 1, 1)),  # 8: fine
        link(a, b, "shared_legal_representative", date(2023, 1, 1)),  # 9: row 8 read from the other end
        link(agency, a, "agency_client", date(2022, 1, 1)),  # 10: row 1 again
        link(agency, b, "agency_client", date(2019, 1, 1), to_on=date(2020, 1, 1)),  # 11: fine
        link(agency, b, "agency_client", date(2020, 1, 1)),  # 12: fine, begins as 11 ends
    ]
    found = problems_of(dataset(history, rows))
    where = {(table, row, column): message for table, row, column, message in found}
    assert all(table == "relations" for table, *_ in found), found
    assert "must be an agency" in where[("relations", 2, "entity_id")]
    assert "its kind is enterprise" in where[("relations", 2, "entity_id")]
    assert "must differ from entity_id" in where[("relations", 3, "related_id")]
    assert "not in entities" in where[("relations", 4, "related_id")]
    assert "not in entities" in where[("relations", 5, "entity_id")]
    assert "must be one of agency_client" in where[("relations", 6, "relation")]
    assert "must be on or after from_on (2022-01-01)" in where[("relations", 7, "to_on")]
    assert "repeats the link of row 8" in where[("relations", 9, "from_on")]
    assert "repeats the link of row 1" in where[("relations", 10, "from_on")]
    assert len(found) == 8, found


def test_a_bad_relations_file_exits_2_and_a_missing_column_is_named(history, tmp_path):
    a, b = history.entity(), history.entity()
    history.write(tmp_path, fmt="csv")
    frame = links_frame([link(a, b, "shareholder", date(2022, 1, 1))])
    frame["from_on"] = "2022-02-30"
    frame.to_csv(tmp_path / "relations.csv", index=False, date_format="%Y-%m-%d")
    result = CliRunner().invoke(app, ["validate", "--data", str(tmp_path), "--json"])
    assert result.exit_code == 2
    assert '"table": "relations", "row": 1, "column": "from_on"' in result.output
    links_frame([link(a, b, "shareholder", date(2022, 1, 1))]).drop(columns="recorded_on").to_csv(
        tmp_path / "relations.csv", index=False, date_format="%Y-%m-%d"
    )
    found = problems_of(load_dataset(tmp_path))
    assert ("relations", None, "recorded_on", "required column is missing from the header") in found


def test_features_are_not_built_from_an_invalid_relations_table(history, tmp_path):
    a = history.entity()
    history.write(tmp_path)
    links_frame([link(a, a, "shared_address", date(2022, 1, 1))]).to_parquet(tmp_path / "relations.parquet")
    out = tmp_path / "features.parquet"
    result = CliRunner().invoke(app, ["features", "--data", str(tmp_path), "--as-of", "2024-06-30", "--out", str(out)])
    assert result.exit_code == 2 and "relations" in result.output
    assert not out.exists()


# ---- the features at D -------------------------------------------------------------------------------


def test_related_lists_and_records_count_as_the_entity_own_would(history):
    a, b, c = history.entity(), history.entity(), history.entity()
    history.listing(b, "serious_violation", date(2023, 1, 1))
    history.listing(c, "serious_violation", date(2020, 1, 1))  # lapsed three years on: not in force at D
    history.listing(c, "untrustworthy", date(2024, 1, 1), removed_on=D)  # removed on D: not in force
    history.event(b, "infringement_penalty", date(2024, 1, 1))  # in 12 months
    history.event(b, "infringement_penalty", date(2022, 1, 1))  # in 36 months only
    history.event(b, "counterfeit_patent_penalty", date(2024, 2, 1), repaired_on=D)  # repaired by D
    history.event(c, "infringement_judgment", date(2024, 3, 1), date(2024, 8, 1))  # recorded after D
    history.event(c, "complaint_received", date(2024, 3, 1))  # not adverse
    rows = [
        link(a, b, "shared_legal_representative", date(2021, 1, 1)),
        link(c, a, "shareholder", date(2021, 1, 1)),  # read from a's end too
        link(a, b, "shareholder", date(2021, 1, 1)),  # b again, through another tie: counted once
    ]
    got = related_row(history, rows, a)
    assert got["related_entities"] == 2
    assert got["related_serious_violation"] == 1
    assert got["related_untrustworthy"] == 0
    assert (got["related_adverse_12m"], got["related_adverse_36m"]) == (1, 2)
    # b sees a (nothing on record); c sees a as its shareholder's other end.
    assert related_row(history, rows, b)["related_entities"] == 1
    assert related_row(history, rows, c)["related_entities"] == 1
    assert related_row(history, rows, a, as_of=date(2024, 8, 1))["related_adverse_12m"] == 2


def test_a_link_recorded_after_d_or_ended_by_d_does_not_exist_at_d(history):
    a, b = history.entity(), history.entity()
    history.listing(b, "serious_violation", date(2023, 1, 1))
    late = [link(a, b, "shared_legal_representative", date(2021, 1, 1), recorded_on=D + timedelta(days=1))]
    assert related_row(history, late, a)["related_serious_violation"] == 0
    assert related_row(history, late, a, as_of=D + timedelta(days=1))["related_serious_violation"] == 1
    ended = [link(a, b, "shared_legal_representative", date(2021, 1, 1), to_on=D)]
    assert related_row(history, ended, a)["related_entities"] == 0
    assert related_row(history, ended, a, as_of=D - timedelta(days=1))["related_entities"] == 1
    future = [link(a, b, "shared_legal_representative", D + timedelta(days=1), recorded_on=date(2021, 1, 1))]
    assert related_row(history, future, a)["related_entities"] == 0


def test_an_agency_sees_its_clients_findings_through_it_and_a_client_its_agency(history):
    agency = history.entity(kind="agency", industry="M")
    c1, c2, c3, c4 = (history.entity() for _ in range(4))
    history.event(c1, "abnormal_patent_filing", date(2023, 5, 1), date(2023, 9, 1))  # through the agency
    history.event(c1, "malicious_trademark_filing", date(2023, 6, 1))  # through the agency
    history.event(c2, "abnormal_patent_filing", date(2021, 6, 1))  # before it was a client: not through it
    history.event(c3, "abnormal_patent_filing", date(2023, 6, 1))  # served then; left in 2024
    history.event(c4, "abnormal_patent_filing", date(2023, 6, 1), repaired_on=date(2024, 1, 1))  # repaired
    history.event(agency, "agency_misconduct", date(2023, 1, 1))
    history.event(agency, "agency_misconduct", date(2020, 1, 1))  # older than 36 months
    rows = [
        link(agency, c1, "agency_client", date(2022, 1, 1)),
        link(agency, c2, "agency_client", date(2022, 1, 1)),
        link(agency, c3, "agency_client", date(2022, 1, 1), to_on=date(2024, 1, 1)),
        link(agency, c4, "agency_client", date(2022, 1, 1)),
    ]
    got = related_row(history, rows, agency)
    assert got["agency_clients_36m"] == 4
    assert got["agency_client_findings_36m"] == 3  # c1 twice, c3 once
    assert got["agency_client_finding_share_36m"] == 0.5
    assert related_row(history, rows, c1)["client_agency_adverse_36m"] == 1
    assert related_row(history, rows, c3)["client_agency_adverse_36m"] == 0  # no longer its agency at D
    assert related_row(history, rows, agency)["related_entities"] == 0  # serving is not a control tie


def test_the_ledger_reaches_related_records(history):
    a, b = history.entity(), history.entity()
    penalty = history.event(b, "infringement_penalty", date(2024, 1, 1))
    rows = [link(a, b, "shared_address", date(2021, 1, 1))]
    ds = dataset(history, rows)
    assert build_features(ds, D).set_index("entity_id").loc[a, "related_adverse_12m"] == 1
    ledger = pd.DataFrame(
        [
            {
                "seq": 1,
                "kind": "repair",
                "decided_on": date(2024, 5, 1),
                "event_id": penalty,
                "repaired_on": date(2024, 5, 1),
            }
        ]
    )
    overlay_dataset(ds, ledger)
    assert build_features(ds, D).set_index("entity_id").loc[a, "related_adverse_12m"] == 0
    assert build_features(ds, date(2024, 4, 30)).set_index("entity_id").loc[a, "related_adverse_12m"] == 1


@pytest.fixture(scope="module")
def world():
    return generate(5000, seed=17)


def _known_at(world, as_of: date) -> dict[str, pd.DataFrame]:
    """The world as it was known at ``as_of``: everything recorded later removed, every later end unknown."""
    day = pd.Timestamp(as_of)
    events = world.events[world.events["recorded_on"] <= day].copy()
    events.loc[events["repaired_on"] > day, "repaired_on"] = pd.NaT
    lists = world.lists[world.lists["entered_on"] <= day].copy()
    lists.loc[lists["removed_on"] > day, "removed_on"] = pd.NaT
    relations = world.relations[(world.relations["recorded_on"] <= day)].copy()
    relations.loc[relations["to_on"] > day, "to_on"] = pd.NaT
    return {"entities": world.entities, "events": events, "lists": lists, "relations": relations}


@pytest.mark.parametrize("as_of", [date(2021, 3, 31), date(2024, 2, 29)])
def test_nothing_recorded_after_d_changes_a_relationship_feature_at_d(world, as_of):
    full = Dataset.from_frames(world.entities, world.events, world.lists, relations=world.relations)
    known = _known_at(world, as_of)
    past = Dataset.from_frames(known["entities"], known["events"], known["lists"], relations=known["relations"])
    got, expected = build_features(full, as_of), build_features(past, as_of)
    if as_of.year == 2024:
        assert (got[RELATED] != 0).any().all(), "every relationship feature is exercised by the world"
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_the_in_memory_build_and_the_relation_query_agree_with_the_dataset_build(world):
    ds = Dataset.from_frames(world.entities, world.events, world.lists, relations=world.relations)
    expected = build_features(ds, D)
    got = build_features_from_frames(world.entities, world.events, world.lists, D, relations=world.relations)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    alone = ds.query(relation_query(D, DUCKDB)).set_index("entity_id")
    linked = expected.set_index("entity_id").loc[alone.index, RELATED]
    pd.testing.assert_frame_equal(alone.astype("float64"), linked.astype("float64"), check_exact=True)
    without = build_features_from_frames(world.entities, world.events, world.lists, D)
    assert (without[RELATED] == 0).all().all()


# ---- the links behind a value, and what a reader sees of them -----------------------------------------


def _touching(world, entity_id: str):
    links = world.relations[(world.relations["entity_id"] == entity_id) | (world.relations["related_id"] == entity_id)]
    others = set(links["entity_id"]) | set(links["related_id"])
    others.discard(entity_id)
    related = tuple(frame[frame["entity_id"].isin(others)] for frame in (world.entities, world.events, world.lists))
    return links, related


def test_the_cited_links_are_the_ones_the_sql_counted(world):
    features = build_features(
        Dataset.from_frames(world.entities, world.events, world.lists, relations=world.relations), D
    ).set_index("entity_id")
    linked = sorted(set(world.relations["entity_id"]) | set(world.relations["related_id"]))
    checked = dict.fromkeys(RELATED, 0)
    for entity_id in linked[:: max(1, len(linked) // 150)]:
        if entity_id not in features.index:
            continue
        links, related = _touching(world, entity_id)
        for f in related_features():
            ids = counted_links(f.spec, entity_id, links, related, D)
            ends = {parse_link_id(i).other(entity_id) for i in ids}
            value = features.at[entity_id, f.name]
            if f.spec.measure in (RelatedMeasure.ENTITIES, RelatedMeasure.ON_LIST):
                assert len(ends) == value, (f.name, entity_id, ids)
            elif f.spec.measure is RelatedMeasure.SHARE:
                clients = counted_links(
                    Related(Side.CLIENTS, RelatedMeasure.ENTITIES, months=f.spec.months), entity_id, links, related, D
                )
                everyone = {parse_link_id(i).other(entity_id) for i in clients}
                assert (len(ends) / len(everyone) if everyone else 0.0) == value, (f.name, entity_id)
            else:
                assert bool(ids) == bool(value), (f.name, entity_id, ids, value)
            checked[f.name] += bool(ids)
    assert all(checked.values()), checked


def test_a_reason_counts_the_links_by_relation_and_shows_nothing_else(history):
    a, b, c = history.entity(), history.entity(region="410100"), history.entity()
    history.listing(b, "serious_violation", date(2023, 1, 1))
    history.listing(c, "serious_violation", date(2023, 1, 1))
    rows = [
        link(a, b, "shared_legal_representative", date(2021, 1, 1)),
        link(c, a, "shared_legal_representative", date(2022, 1, 1)),
        link(a, c, "shareholder", date(2022, 1, 1)),
    ]
    links = links_frame(rows)
    f = history.frames()
    related = tuple(frame[frame["entity_id"] != a] for frame in (f["entities"], f["events"], f["lists"]))
    spec = Related(Side.TIES, RelatedMeasure.ON_LIST, list_name="serious_violation")
    ids = counted_links(spec, a, links, related, D)
    assert ids == (
        link_id("shared_legal_representative", c, a, date(2022, 1, 1)),
        link_id("shareholder", a, c, date(2022, 1, 1)),
        link_id("shared_legal_representative", a, b, date(2021, 1, 1)),
    )
    zh, en = relation_reason("related_serious_violation", 2, ids, a)
    assert en == "related entities on the serious-violation list: 2 (shared legal representative 2, shareholder 1)"
    assert zh == "关联主体在严重违法失信名单 2个（同一法定代表人2个、股东关系1个）"
    # A reader scoped to 210600 sees the links to c, and of the link to b (Zhengzhou) only that it exists.
    regions = {a: "210600", b: "410100", c: "210600"}
    seen = visible_links(ids, a, regions, "210600")
    assert seen[:2] == list(ids[:2])
    assert seen[2] == f"shared_legal_representative:{a}>{HIDDEN}@2021-01-01" and b not in " ".join(seen)
    assert visible_links(ids, a, regions, None) == list(ids)
    with pytest.raises(ValueError, match="relation:entity_id>related_id@YYYY-MM-DD"):
        parse_link_id("shared_address:no-date")


def test_the_evidence_of_a_relationship_feature_cites_links_and_hides_other_regions(history):
    a, b, c = history.entity(), history.entity(region="410100"), history.entity()
    history.listing(b, "serious_violation", date(2023, 1, 1))
    history.listing(c, "serious_violation", date(2023, 1, 1))
    links = links_frame([link(a, b, "shared_address", date(2021, 1, 1)), link(a, c, "shareholder", date(2022, 1, 1))])
    f = history.frames()
    own = [frame[frame["entity_id"] == a] for frame in (f["entities"], f["events"], f["lists"])]
    related = tuple(frame[frame["entity_id"] != a] for frame in (f["entities"], f["events"], f["lists"]))
    found = evidence(EntityHistory(*own, relations=links, related=related), D)
    cited = found["related_serious_violation"]
    assert cited.table == "relations" and cited.count == 2
    assert cited.ids == (link_id("shareholder", a, c, date(2022, 1, 1)), f"shared_address:{a}>{HIDDEN}@2021-01-01")
    assert b not in " ".join(cited.ids)
    assert found["related_entities"].count == 2 and found["client_agency_adverse_36m"].count == 0
    # No score, tier or feature value of another entity is ever part of it: only link ids.
    assert all(i.count(":") == 1 and "@" in i for e in found.values() if e.table == "relations" for i in e.ids)
