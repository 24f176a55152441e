"""Feature columns: the values the model and the rules read, of the catalogue's types, however they come."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import conform
from features.catalogue import CATEGORIES, FEATURE_NAMES, FEATURES
from features.columns import decoded, feature_columns
from tests.models.factories import feature_frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return feature_frame(80, seed=2).drop(columns=["outcome"])


def _equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b) == FEATURE_NAMES
    for name in FEATURE_NAMES:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_a_few_rows_read_at_once_are_the_rows_read_column_by_column(frame):
    whole = feature_columns(frame)  # more rows than the one-call path takes
    for rows in ([0], [3, 1, 40], list(range(64))):
        _equal(feature_columns(frame.iloc[rows]), {k: v[rows] for k, v in whole.items()})


def test_columns_of_other_types_are_conformed_first(frame):
    loose = frame.astype({name: object for name in FEATURE_NAMES[:10]})
    loose["industry"] = loose["industry"].astype(object).where(np.arange(len(loose)) % 5 > 0, "not a code")
    expected = conform(loose)
    columns = feature_columns(loose)
    for rows in (slice(None), slice(0, 3)):
        got = feature_columns(loose.iloc[rows])
        for name in FEATURE_NAMES:
            if FEATURES[name].dtype != "category":
                np.testing.assert_array_equal(got[name], expected[name].to_numpy()[rows], err_msg=name)
    assert (columns["industry"][::5] == -1).all() and (columns["industry"][1::5] >= 0).all()


def test_decoded_gives_categories_back_and_other_features_as_they_are(frame):
    columns = feature_columns(frame)
    industry = decoded(columns, "industry")
    assert industry.tolist() == frame["industry"].astype(object).tolist()
    assert set(industry) <= {*CATEGORIES["industry"], None}
    assert decoded({"industry": np.array([-1, 0], np.int16)}, "industry").tolist() == [None, CATEGORIES["industry"][0]]
    assert decoded(columns, "age_years") is columns["age_years"]


def test_every_catalogue_feature_is_required(frame):
    with pytest.raises(ValueError, match="missing"):
        feature_columns(frame.drop(columns=[FEATURE_NAMES[3]]))
