"""Score runs the service makes from files on the server (``POST /v1/score-runs``, ``ipcredit
import-scores``): a dataset folder scored with the champion, or a score file written by ``ipcredit score``
imported (the dataset still supplies the entities and list entries).

**Paths are confined.** Every path names a file or folder under the import root (``Settings.import_root``:
``IPCREDIT_DATASET_ROOT``, else the data folder); relative paths are taken from it. A path, or a table file
inside a dataset folder, that resolves outside the root — ``..``, an absolute path elsewhere, a symbolic
link out of it, ``/proc`` — is refused, and no answer ever names a server path: not the root, not the
resolved path, not a reader's error message.

**A score file is validated like a dataset** (``check_score_file``) before anything is stored: each
problem at ``("score_file", row, column)`` (1-based data rows) — tiers ``A``–``D``, scores in [0, 1],
entity ids valid and in the dataset, every row's ``as_of`` the run's, fired rules the policy's, reasons
and contributions readable JSON, one model version and the service's policy version. An invalid file is
``InvalidInput`` (422, exit 2) and nothing is stored.

Every problem is ``InvalidInput`` at the request field it comes from: ``("dataset",)``, a dataset's
``("dataset", table, row, column)``, ``("score_file", …)``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from features import uscc
from features.dataset import Dataset, DatasetError
from features.errors import InvalidInput, Problem
from features.validate import load_valid_dataset
from models.policy import TIERS, Policy
from models.scorefile import SCORE_COLUMNS
from models.scorer import Scorer
from serving import dates, ledger, scoring
from serving.auth import Principal
from serving.errors import PROBLEM_LIMIT
from serving.store import ScoreRunRecord, save_audited

_TABLE_SUFFIXES = (".parquet", ".csv")
_UNDER_ROOT = "under the service's import root (IPCREDIT_DATASET_ROOT)"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([ T][0-9:.+-]*)?")


def confined(path: str, root: Path, field: str, *, folder: bool) -> Path:
    """The existing folder (or regular file) ``path`` names, resolved; ``InvalidInput`` at ``field`` when
    it does not exist or resolves outside ``root`` (symbolic links followed). Relative paths are taken
    from the root. The message names neither the path nor the root."""
    what = "a dataset folder" if folder else "a score file (.parquet or .csv)"
    refused = InvalidInput.at(field, f"must be {what} {_UNDER_ROOT}")
    try:
        candidate = Path(path).expanduser()
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve(strict=True)
        kind_ok = resolved.is_dir() if folder else resolved.is_file() and resolved.suffix in _TABLE_SUFFIXES
    except (OSError, RuntimeError, ValueError):
        raise refused from None
    if not kind_ok or not resolved.is_relative_to(root):
        raise refused
    return resolved


def dataset_folder(path: str, root: Path) -> Path:
    """The dataset folder ``path`` names under ``root``; every table file in it must resolve under the
    root too (a link from inside the folder to a file elsewhere is refused)."""
    folder = confined(path, root, "dataset", folder=True)
    for entry in sorted(folder.iterdir()):
        if entry.suffix in _TABLE_SUFFIXES:
            try:
                inside = entry.resolve(strict=True).is_relative_to(root)
            except (OSError, RuntimeError):
                inside = False
            if not inside:
                raise InvalidInput.at(("dataset", entry.name), f"must be a file {_UNDER_ROOT}, not a link out of it")
    return folder


def _scrub(text: str, folder: Path, root: Path) -> str:
    """A reader's message without the server's paths in it."""
    return text.replace(str(folder), "<dataset>").replace(str(root), "<import root>")


def open_dataset(folder: Path, root: Path) -> Dataset:
    """The dataset in ``folder``, validated; its problems at ``("dataset", table, row, column)``."""
    try:
        return load_valid_dataset(folder, threads=2, latest=dates.today())
    except DatasetError as exc:
        problems = [Problem(p.loc, _scrub(p.msg, folder, root), p.input) for p in exc.under("dataset").problems]
        raise InvalidInput(problems, total=exc.total) from None


def read_score_file(path: Path) -> pd.DataFrame:
    """A score file (``.parquet`` or ``.csv``) with the CONTRACT section 4 columns."""
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype={"rules": str, "entity_id": str, "as_of": str}, keep_default_na=False)
    except Exception as exc:  # any reader failure; its message may quote the file or name a path
        raise InvalidInput.at("score_file", f"cannot be read as a score file ({exc.__class__.__name__})") from None
    missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidInput.at("score_file", f"must have the score columns of CONTRACT section 4; missing {missing}")
    return frame.reset_index(drop=True)


@dataclass
class _Problems:
    found: list[tuple[int, int, str, Any, str]]  # (row index, column order, column, value, message)
    columns: list[str]

    def add(self, column: str, bad: np.ndarray, values: pd.Series, message: str | Callable[[Any], str]) -> None:
        order = self.columns.index(column) if column in self.columns else len(self.columns)
        for i in np.flatnonzero(bad):
            value = values.iloc[i]
            text = message(value) if callable(message) else message
            self.found.append((int(i), order, column, _plain(value), text))

    def raise_if_any(self) -> None:
        if not self.found:
            return
        self.found.sort(key=lambda p: (p[0], p[1]))
        shown = [Problem(("score_file", i + 1, column), msg, value) for i, _, column, value, msg in self.found]
        raise InvalidInput(shown[:PROBLEM_LIMIT], total=len(shown))


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, int | float | bool) else str(value)[:200]


def _row_dates(values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.date
    return values.map(_one_date)


def _one_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    if not _ISO_DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _json_of(kind: type) -> Callable[[Any], bool]:
    def ok(value: Any) -> bool:
        if isinstance(value, kind):
            return True
        if not isinstance(value, str):
            return False
        try:
            return isinstance(json.loads(value), kind)
        except ValueError:
            return False

    return ok


def check_score_file(frame: pd.DataFrame, entity_ids: set[str], policy: Policy, as_of: date) -> None:
    """Every row of a score file to import: ``InvalidInput`` listing each problem at
    ``("score_file", row, column)`` (the first ``PROBLEM_LIMIT``, with the total)."""
    found = _Problems([], list(frame.columns))
    ids = frame["entity_id"].astype(str)
    malformed = ids.map(lambda v: uscc.problem(v) is not None).to_numpy(bool)
    found.add("entity_id", malformed, ids, lambda v: f"entity_id {uscc.problem(str(v))}")
    unknown = ~malformed & ~ids.isin(entity_ids).to_numpy(bool)
    found.add("entity_id", unknown, ids, "refers to an entity that is not in the dataset's entities")
    repeated = ids.duplicated().to_numpy(bool)
    found.add("entity_id", repeated, ids, "is not unique: the score file has one row per entity")

    day = _row_dates(frame["as_of"])
    unreadable = day.isna().to_numpy(bool)
    found.add("as_of", unreadable, frame["as_of"], "must be a date written YYYY-MM-DD")
    bounded = day.map(lambda d: d is not None and dates.problem(d) is not None).to_numpy(bool)
    found.add("as_of", bounded, day, lambda d: dates.problem(d) or "")
    other = ~unreadable & ~bounded & (day != as_of).to_numpy(bool)
    found.add("as_of", other, day, f"must be the run's as_of {as_of.isoformat()}")

    score = pd.to_numeric(frame["score"], errors="coerce").astype(float)
    found.add(
        "score",
        ~(np.isfinite(score) & (score >= 0) & (score <= 1)).to_numpy(bool),
        frame["score"],
        "must lie in [0, 1]",
    )
    for column in ("model_tier", "tier"):
        values = frame[column].astype(str)
        found.add(column, ~values.isin(TIERS).to_numpy(bool), frame[column], f"must be one of {', '.join(TIERS)}")

    known_rules = {r.code for r in policy.rules}
    rules = frame["rules"].fillna("").astype(str)
    bad_rules = rules.map(lambda text: any(c and c not in known_rules for c in text.split(";"))).to_numpy(bool)
    found.add("rules", bad_rules, rules, "must be ';'-joined rule codes of the service's policy")
    review = frame["review"]
    if review.dtype != bool:
        review_ok = review.astype(str).str.strip().str.lower().isin(["true", "false", "1", "0", "yes", "no"])
        found.add("review", ~review_ok.to_numpy(bool), review, "must be true or false")
    reasons_ok = frame["reasons"].map(_json_of(list)).to_numpy(bool)
    found.add("reasons", ~reasons_ok, frame["reasons"], "must be a JSON list of reasons")
    for column in ("contributions", "features"):
        if column in frame.columns:
            values = frame[column]
            ok = (values.isna() | values.map(_json_of(dict))).to_numpy(bool)
            found.add(column, ~ok, values, "must be a JSON object")
    for column in ("base_value", "log_odds"):
        if column in frame.columns:
            number = pd.to_numeric(frame[column], errors="coerce").astype(float)
            bad = (frame[column].notna() & ~np.isfinite(number)).to_numpy(bool)
            found.add(column, bad, frame[column], "must be a finite number")
    found.raise_if_any()

    versions = set(frame["model_version"].astype(str))
    if len(versions) != 1:
        raise InvalidInput.at(("score_file", "model_version"), f"must be one model version; got {sorted(versions)[:5]}")
    if "policy_version" in frame.columns and set(frame["policy_version"].astype(str)) != {policy.version_tag}:
        raise InvalidInput.at(
            ("score_file", "policy_version"),
            f"was scored under policy {sorted(set(frame['policy_version'].astype(str)))[:3]}; "
            f"the service runs policy {policy.version_tag}",
        )
    if "feature_version" in frame.columns and frame["feature_version"].astype(str).nunique() > 1:
        raise InvalidInput.at(("score_file", "feature_version"), "must be one feature version")


def scored_run(
    ds: Dataset, as_of: date, scorer: Scorer, policy: Policy, policy_text: str, *, created_by: str | None
) -> ScoreRunRecord:
    """Every entity of ``ds`` scored as of ``as_of`` with ``scorer`` under ``policy``, as a run to save."""
    frame = scoring.score_dataset(scorer, policy, ds, as_of)
    return _run(ds, as_of, frame, str(scorer.model_version), policy, policy_text, created_by)


def imported_run(
    ds: Dataset, as_of: date, score_file: Path, policy: Policy, policy_text: str, *, created_by: str | None
) -> ScoreRunRecord:
    """The rows of ``score_file``, validated against ``ds`` and ``policy`` (``check_score_file``), as a
    run to save."""
    frame = read_score_file(score_file)
    check_score_file(frame, set(ds.entities["entity_id"].astype(str)), policy, as_of)
    frame = frame.assign(as_of=as_of)
    return _run(ds, as_of, frame, str(frame["model_version"].iloc[0]), policy, policy_text, created_by)


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
        data_end=ds.data_end(),
    )


@dataclass(frozen=True)
class RunRequest:
    """A score run to make: paths already confined (``dataset_folder``, ``confined``)."""

    folder: Path
    root: Path
    as_of: date
    score_file: Path | None = None


def make_run(
    engine: Engine,
    request: RunRequest,
    scorer: Scorer | None,
    policy: Policy,
    policy_text: str,
    principal: Principal | None,
    *,
    statement_timeout_ms: int = 0,
) -> int:
    """Validate, score (or import) and store one run with its audit row in one transaction; its id.

    The decision ledger, every decision up to its latest seq, is laid over the dataset first
    (``serving/ledger.py``): the run records that seq and where folder and ledger disagree. An imported
    score file was scored elsewhere: its rows keep the ``ledger_seq`` column they carry (if any), and the
    stored list entries still follow the ledger."""
    dates.check_at(request.as_of, "as_of")
    ds = open_dataset(request.folder, request.root)
    with engine.connect() as conn:
        report = ledger.apply(ds, conn)
    created_by = principal.actor if principal else None
    if request.score_file is not None:
        run = imported_run(ds, request.as_of, request.score_file, policy, policy_text, created_by=created_by)
        run = replace(run, ledger_seq=_file_ledger_seq(run.scores))
    elif scorer is not None:
        run = scored_run(ds, request.as_of, scorer, policy, policy_text, created_by=created_by)
        run = replace(run, ledger_seq=report.seq, ledger_conflicts=ledger.conflicts_json(report))
    else:
        raise ValueError("a run needs a scorer or a score file")
    return save_audited(
        engine,
        run,
        principal,
        statement_timeout_ms=statement_timeout_ms,
        imported=request.score_file is not None,
        ledger_seq=run.ledger_seq,
        ledger_conflicts=len(report.conflicts),
    )


def _file_ledger_seq(frame: pd.DataFrame) -> int | None:
    """The one ``ledger_seq`` an imported score file's rows carry, else ``None``."""
    if "ledger_seq" not in frame.columns or not len(frame):
        return None
    values = pd.to_numeric(frame["ledger_seq"], errors="coerce").dropna().unique()
    if len(values) != 1 or values[0] < 0 or values[0] != int(values[0]):
        raise InvalidInput.at(("score_file", "ledger_seq"), "must be one whole number >= 0 throughout")
    return int(values[0])
