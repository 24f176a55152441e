"""The score file (CONTRACT section 4): its columns, and the rows as ``ipcredit score`` writes them.

``Scorer.score`` returns these columns in this order; the service's store saves them, and a score file
written by ``ipcredit score`` can be imported back into a run because it has them.
"""

from __future__ import annotations

import pandas as pd

# The score file of CONTRACT section 4, then what this project adds to every row.
SCORE_COLUMNS: tuple[str, ...] = (
    "entity_id",
    "as_of",
    "score",
    "model_tier",
    "tier",
    "rules",
    "review",
    "model_version",
    "reasons",
)
EXTRA_COLUMNS: tuple[str, ...] = ("policy_version", "feature_version", "base_value", "log_odds")
# The full explanation of each row: stored with a run, too large for the file.
DETAIL_COLUMNS: tuple[str, ...] = ("contributions", "features")
# The ``model_version`` of rows scored by a model that is not registered.
UNREGISTERED = "unregistered"


def score_file(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``scores`` (``Scorer.score``) as the score file holds them: without the detail columns."""
    return scores.drop(columns=[c for c in DETAIL_COLUMNS if c in scores.columns])
