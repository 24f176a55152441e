"""Score runs the service makes from files on the server (``POST /v1/score-runs``): a dataset folder scored
with the champion, or a score file written by ``ipcredit score`` imported as it is (the dataset still
supplies the entities and list entries). Paths are paths on the server; ``dataset_root`` confines them.

Every problem is ``InvalidInput`` at the request field it comes from: ``("dataset",)``, a dataset's
``("dataset", table, row, column)``, ``("score_file",)``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from features.dataset import Dataset, DatasetError
from features.errors import InvalidInput
from features.validate import load_valid_dataset
from models.policy import Policy
from models.scorefile import SCORE_COLUMNS
from models.scorer import Scorer
from serving import scoring
from serving.store import ScoreRunRecord


def dataset_folder(path: str, root: str | Path | None) -> Path:
    """The dataset folder ``path`` names, resolved; it must exist and, with a ``root``, lie under it."""
    try:
        folder = Path(path).expanduser().resolve()
        readable = folder.is_dir()
    except (OSError, ValueError, RuntimeError):
        readable = False
    if not readable:
        raise InvalidInput.at("dataset", "must be a dataset folder on the server", path)
    if root is not None and not folder.is_relative_to(Path(root).resolve()):
        raise InvalidInput.at("dataset", f"must be under {root}", path)
    return folder


def open_dataset(folder: Path) -> Dataset:
    """The dataset in ``folder``, validated; its problems at ``("dataset", table, row, column)``."""
    try:
        return load_valid_dataset(folder, threads=2)
    except DatasetError as exc:
        raise exc.under("dataset") from exc


def read_score_file(path: Path) -> pd.DataFrame:
    """A score file (``.parquet`` or ``.csv``) with the CONTRACT section 4 columns."""
    try:
        exists = path.is_file()
    except (OSError, ValueError):
        exists = False
    if not exists:
        raise InvalidInput.at("score_file", "must be a score file on the server", str(path))
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"rules": str})
    except Exception as exc:
        message = f"cannot read the score file: {exc.__class__.__name__}: {exc}"
        raise InvalidInput.at("score_file", message, str(path)) from exc
    missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
    if missing:
        message = f"must have the score columns of CONTRACT section 4; missing {missing}"
        raise InvalidInput.at("score_file", message, str(path))
    return frame


def scored_run(
    ds: Dataset, as_of: date, scorer: Scorer, policy: Policy, policy_text: str, *, created_by: str | None
) -> ScoreRunRecord:
    """Every entity of ``ds`` scored as of ``as_of`` with ``scorer`` under ``policy``, as a run to save."""
    frame = scoring.score_dataset(scorer, policy, ds, as_of)
    return _run(ds, as_of, frame, str(scorer.model_version), policy, policy_text, created_by)


def imported_run(
    ds: Dataset, as_of: date, score_file: Path, policy: Policy, policy_text: str, *, created_by: str | None
) -> ScoreRunRecord:
    """The rows of ``score_file`` (one model version, scored under ``policy``) as a run to save."""
    frame = read_score_file(score_file)
    versions = set(frame["model_version"].astype(str))
    if len(versions) != 1:
        raise InvalidInput.at("score_file", f"must hold one model_version; got {sorted(versions)[:5]}")
    if "policy_version" in frame.columns and set(frame["policy_version"].astype(str)) != {policy.version_tag}:
        raise InvalidInput.at(
            "score_file",
            f"was scored under policy {sorted(set(frame['policy_version'].astype(str)))[:3]}; "
            f"the service runs policy {policy.version_tag}",
        )
    return _run(ds, as_of, frame, versions.pop(), policy, policy_text, created_by)


def _run(
    ds: Dataset,
    as_of: date,
    frame: pd.DataFrame,
    model_version: str,
    policy: Policy,
    policy_text: str,
    created_by: str | None,
) -> ScoreRunRecord:
    return ScoreRunRecord(
        scores=frame,
        entities=ds.entities,
        lists=ds.table("lists"),
        as_of=as_of,
        dataset_fingerprint=ds.fingerprint,
        data_source=ds.source,
        policy_text=policy_text,
        policy_version=policy.version_tag,
        model_version=model_version,
        feature_version=scoring.feature_version_of(frame),
        created_by=created_by,
    )
