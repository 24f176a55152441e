"""Feature columns: a feature frame read once into numpy arrays of the catalogue's types.

Scoring and the policy engine read features as columns, never the frame again: the rules compare the
same conformed values the model predicts on, and one request costs microseconds rather than the tens of
microseconds pandas spends per column access. ``feature_columns`` turns a frame into them, ``decoded``
turns a categorical feature's codes back into its values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.build import conform
from features.catalogue import CATEGORICAL, CATEGORIES, FEATURE_NAMES, FEATURES

FeatureColumns = Mapping[str, np.ndarray]

_NUMPY_TYPES = {"bool": np.dtype(bool), "int": np.dtype(np.int64), "float": np.dtype(np.float64)}
# Up to this many rows (a what-if request is one) the frame is read in one call instead of column by
# column: pandas costs tens of microseconds per column access, which is most of scoring one row.
_FEW_ROWS = 64
_CATEGORY_CODES = {name: {value: code for code, value in enumerate(CATEGORIES[name])} for name in CATEGORICAL}


def feature_columns(features: pd.DataFrame) -> dict[str, np.ndarray]:
    """The catalogue features of ``features`` as numpy columns of the catalogue's types, read once.

    ``bool``, ``int64`` and ``float64`` arrays; a categorical feature as ``int16`` codes into its fixed
    categories (``features.catalogue.CATEGORIES``), ``-1`` when missing or unknown. A column that already
    has the catalogue's type (as ``features.build`` writes it) is taken as it is; any other goes through
    ``features.build.conform``, so these are exactly the values ``model_matrix`` gives the model.
    """
    missing = [name for name in FEATURE_NAMES if name not in features.columns]
    if missing:
        raise ValueError(f"features must include every catalogue feature; missing {missing}")
    if len(features) <= _FEW_ROWS and features.columns.is_unique:
        few = _few_rows(features)
        if few is not None:
            return few
    columns: dict[str, np.ndarray] = {}
    for name in FEATURE_NAMES:
        column = features[name]
        if not _has_catalogue_type(column.dtype, name):
            column = conform(features[[name]])[name]
        if FEATURES[name].dtype == "category":
            columns[name] = column.cat.codes.to_numpy().astype(np.int16)
        else:
            columns[name] = column.to_numpy()
    return columns


def decoded(columns: FeatureColumns, name: str) -> np.ndarray:
    """Feature ``name`` of ``feature_columns`` as plain values: a category as its value (``None`` when
    missing), any other feature as it is."""
    if FEATURES[name].dtype == "category":
        return np.asarray([*CATEGORIES[name], None], dtype=object)[columns[name]]
    return columns[name]


def _has_catalogue_type(dtype: np.dtype | pd.api.extensions.ExtensionDtype, name: str) -> bool:
    if FEATURES[name].dtype == "category":
        return isinstance(dtype, pd.CategoricalDtype) and list(dtype.categories) == CATEGORIES[name]
    return dtype == _NUMPY_TYPES[FEATURES[name].dtype]


def _few_rows(features: pd.DataFrame) -> dict[str, np.ndarray] | None:
    """``feature_columns`` of a small frame whose catalogue columns all have their catalogue types, from
    one ``to_numpy(dtype=object)``; ``None`` when some column would need ``conform``."""
    dtypes = dict(zip(features.columns, features.dtypes, strict=True))
    if not all(_has_catalogue_type(dtypes[name], name) for name in FEATURE_NAMES):
        return None
    values = features.to_numpy(dtype=object)
    position = {name: i for i, name in enumerate(features.columns)}
    return _typed({name: values[:, position[name]].tolist() for name in FEATURE_NAMES})


def value_columns(values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """``feature_columns`` of one row given as plain values by name (``features.single.feature_values``: a
    category as its value or ``None``): the one-row frame is neither built nor read back."""
    return _typed({name: [values[name]] for name in FEATURE_NAMES})


def _typed(cells: Mapping[str, list]) -> dict[str, np.ndarray]:
    """Each catalogue feature's cells (plain values) as a column of its catalogue type."""
    columns: dict[str, np.ndarray] = {}
    for name in FEATURE_NAMES:
        dtype = FEATURES[name].dtype
        if dtype == "category":
            codes = _CATEGORY_CODES[name]
            columns[name] = np.array([codes.get(v, -1) if isinstance(v, str) else -1 for v in cells[name]], np.int16)
        else:
            columns[name] = np.array(cells[name], dtype=_NUMPY_TYPES[dtype])
    return columns
