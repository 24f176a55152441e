"""Score rows: the CONTRACT columns, reasons a reviewer can read, JSON that parses."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from features.build import FEATURE_VERSION
from features.catalogue import FEATURE_NAMES, FEATURES
from features.errors import Unavailable
from models.scorefile import DETAIL_COLUMNS, EXTRA_COLUMNS, SCORE_COLUMNS, UNREGISTERED, score_file
from models.scorer import ModelError


def test_columns_follow_the_contract(scorer, policy, factory_snapshots):
    scored = scorer.score(factory_snapshots.head(50), policy)
    assert list(scored.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    assert {"policy_version", "feature_version", "base_value", "log_odds", "contributions", "features"} <= set(
        scored.columns
    )
    assert scored["score"].between(0, 1).all()
    assert set(scored["tier"]) <= set("ABCD") and scored["review"].dtype == bool
    assert (scored["policy_version"] == policy.version_tag).all()
    lean = scorer.score(factory_snapshots.head(50), policy, details=False)
    assert "contributions" not in lean.columns
    assert lean.equals(scored.drop(columns=["contributions", "features"]))


def test_reasons_are_the_top_contributions_with_bilingual_text(scorer, policy, factory_snapshots):
    rows = factory_snapshots.head(200).copy()
    rows.loc[rows.index[:20], "registered_capital"] = np.nan
    scored = scorer.score(rows, policy, top_k=3)
    for reasons_text, contributions_text, features_text in zip(
        scored["reasons"], scored["contributions"], scored["features"], strict=True
    ):
        reasons = json.loads(reasons_text)
        contributions = json.loads(contributions_text)
        values = json.loads(features_text)
        assert set(contributions) == set(FEATURE_NAMES) == set(values)
        expected = sorted((c for c in contributions.items() if c[1] != 0), key=lambda kv: -abs(kv[1]))[:3]
        assert [r["feature"] for r in reasons] == [name for name, _ in expected]
        for reason in reasons:
            assert reason["contribution"] == contributions[reason["feature"]]
            assert reason["value"] == values[reason["feature"]]
            zh, en = FEATURES[reason["feature"]].describe(reason["value"])
            assert (reason["text_zh"], reason["text_en"]) == (zh, en)
    capital = [json.loads(v)["registered_capital"] for v in scored["features"].head(20)]
    assert capital == [None] * 20  # NaN is JSON null, never the invalid token NaN


def test_a_reason_sentence():
    zh, en = FEATURES["abnormal_patent_filing_12m"].describe(3)
    assert zh == "近12个月非正常专利申请 3次"
    assert en == "abnormal patent filings found in the last 12 months: 3"


def test_no_rows_and_no_reasons(scorer, policy, factory_snapshots):
    empty = scorer.score(factory_snapshots.head(0), policy)
    assert len(empty) == 0 and list(empty.columns[:9]) == list(SCORE_COLUMNS)
    none = scorer.score(factory_snapshots.head(5), policy, top_k=0)
    assert (none["reasons"] == "[]").all()


def test_scores_do_not_depend_on_chunking(scorer, policy, factory_snapshots):
    rows = factory_snapshots.head(900)
    whole = scorer.score(rows, policy)
    parts = pd.concat([scorer.score(rows.iloc[i : i + 250], policy) for i in range(0, 900, 250)], ignore_index=True)
    pd.testing.assert_frame_equal(whole.reset_index(drop=True), parts)
    assert all(math.isfinite(v) for v in whole["log_odds"])


def test_the_score_file_is_the_rows_without_their_details(scorer, policy, factory_snapshots):
    scored = scorer.score(factory_snapshots.head(20), policy)
    assert list(scored.columns) == [*SCORE_COLUMNS, *EXTRA_COLUMNS, *DETAIL_COLUMNS]
    rows = score_file(scored)
    assert list(rows.columns) == [*SCORE_COLUMNS, *EXTRA_COLUMNS]
    assert rows.equals(scorer.score(factory_snapshots.head(20), policy, details=False))
    assert score_file(rows).equals(rows)  # a lean frame is already the file's rows
    assert (rows["model_version"] == UNREGISTERED).all()  # the session's scorer is not registered


def test_a_model_that_cannot_score_these_features_is_unavailable(scorer):
    with pytest.raises(Unavailable, match="features version") as caught:
        scorer.check_compatible(FEATURE_VERSION + "-other")
    assert isinstance(caught.value, ModelError) and caught.value.retry_after > 0


def test_chunked_scoring_writes_the_same_bytes(scorer, policy, factory_snapshots, tmp_path):
    rows = factory_snapshots.head(1500)  # enough distinct reasons for Parquet to fall back from a dictionary
    whole = scorer.score(rows, policy)
    seen: list[int] = []
    chunked = scorer.score(rows, policy, chunk_size=97, progress=seen.append)
    assert seen == [97] * 15 + [45]
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
    for name, frame in (("whole", whole), ("chunked", chunked)):
        score_file(frame).to_parquet(tmp_path / f"{name}.parquet", index=False)
    assert (tmp_path / "chunked.parquet").read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert scorer.score(rows.head(0), policy, chunk_size=10).columns.tolist() == whole.columns.tolist()
