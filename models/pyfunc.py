"""The MLflow pyfunc wrapper: the registered model answers with score, tier and reasons.

The wrapper holds the scorer files (``Scorer.save``) and the policy file the model was evaluated with,
both as MLflow artifacts, so ``mlflow.pyfunc.load_model("models:/ipcredit@champion").predict(features)``
works anywhere the project's packages are installed. The CLI and the service do not go through it: they
read the same scorer files with ``models.registry.load_scorer`` and apply the current policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModelContext
from mlflow.types import ColSpec, Schema

from features.build import conform
from features.catalogue import CATALOGUE, FEATURE_NAMES
from models.policy import load_policy
from models.scorer import Scorer

_COLUMN_TYPES = {"float": "double", "int": "long", "bool": "boolean", "category": "string"}
OUTPUT_COLUMNS = ("entity_id", "as_of", "score", "model_tier", "tier", "rules", "review", "reasons")


def signature() -> ModelSignature:
    """Inputs from the feature catalogue (plus optional ``entity_id``/``as_of``); the score row as output."""
    inputs = Schema(
        [
            ColSpec("string", "entity_id", required=False),
            ColSpec("string", "as_of", required=False),
            *(ColSpec(_COLUMN_TYPES[f.dtype], f.name) for f in CATALOGUE),
        ]
    )
    outputs = Schema(
        [
            ColSpec("string", "entity_id"),
            ColSpec("string", "as_of"),
            ColSpec("double", "score"),
            ColSpec("string", "model_tier"),
            ColSpec("string", "tier"),
            ColSpec("string", "rules"),
            ColSpec("boolean", "review"),
            ColSpec("string", "reasons"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(features: pd.DataFrame, rows: int = 3) -> pd.DataFrame:
    """A few feature rows in the signature's types (strings for ids, dates and the industry)."""
    example = features[["entity_id", "as_of", *FEATURE_NAMES]].head(rows).copy()
    example["entity_id"] = example["entity_id"].astype(str)
    example["as_of"] = pd.to_datetime(example["as_of"]).dt.strftime("%Y-%m-%d")
    for f in CATALOGUE:
        if f.dtype == "category":
            example[f.name] = example[f.name].astype(object).astype(str)
        elif f.dtype == "int":
            example[f.name] = example[f.name].astype("int64")
    return example.reset_index(drop=True)


class IPCreditModel(mlflow.pyfunc.PythonModel):
    """Score rows of point-in-time features: calibrated score, model tier, final tier, rules, reasons."""

    def load_context(self, context: PythonModelContext) -> None:
        self.scorer = Scorer.load(Path(context.artifacts["scorer"]))
        self.policy = load_policy(Path(context.artifacts["policy"]))

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = pd.DataFrame(model_input).copy()
        for column in ("entity_id", "as_of"):
            if column not in frame.columns:
                frame[column] = None
        frame = conform(frame)
        top_k = int((params or {}).get("top_k", 5))
        scored = self.scorer.score(frame, self.policy, top_k=top_k, details=False)
        scored["as_of"] = scored["as_of"].map(lambda d: None if d is None or pd.isna(d) else str(d)[:10])
        return scored[list(OUTPUT_COLUMNS)]
