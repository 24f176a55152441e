"""Every MLflow call of the project: log a training run, register, gate, promote, list, load.

- One run per training, in experiment ``ipcredit``: parameters, metrics, the evaluation tables, the plots,
  the feature catalogue, the policy, the training config and a model card; the model as a pyfunc with a
  signature from the catalogue and an input example.
- Each run registers a version of model ``ipcredit`` with alias ``challenger``. It becomes ``champion``
  only through the gate (``models.gate``: better out-of-time AUC than the champion on the same rows,
  calibration not worse, tier outcome rates rising A to D, no industry below an AUC floor), or by hand
  with ``promote``, which records the reason. The first version becomes champion automatically.
  Registry stages are deprecated in MLflow; aliases are used throughout.

Nothing happens at import: the tracking URI is set by ``connect``, from the settings passed in.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import numpy as np
import pandas as pd

from features.catalogue import catalogue_frame
from features.columns import feature_columns
from features.errors import InvalidInput, NotFound, Unavailable
from models.card import model_card
from models.evaluate import Evaluation, run_metrics
from models.gate import FIRST_VERSION, GateDecision, gate
from models.metrics import Resamples, auc_gain, binary_metrics, ece_increase
from models.monitoring import fairness_frame
from models.policy import Policy
from models.scorer import Scorer
from models.train import TrainedModel, search_summary

if TYPE_CHECKING:  # MLflow loads when it is first used (``connect``), not with this module
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

EXPERIMENT = "ipcredit"
MODEL_NAME = "ipcredit"
CHALLENGER = "challenger"
CHAMPION = "champion"
MODEL_ARTIFACT = "model"


class RegistryError(NotFound):
    """The registry has no such model version, or no version with that alias."""


# ---- connection --------------------------------------------------------------------------------------


def default_artifact_root(tracking_uri: str, fallback: str | None) -> str | None:
    """Where run artifacts go: beside an SQLite tracking database (``<dir>/artifacts``), else ``fallback``.

    Keeping artifacts next to the database means a temporary store (tests, the notebook) is self-contained.
    """
    if tracking_uri.startswith("sqlite:///"):
        # sqlite:///relative/path.db or sqlite:////absolute/path.db (SQLAlchemy's convention)
        path = Path(unquote(tracking_uri.removeprefix("sqlite:///").split("?", 1)[0])).resolve()
        return (path.parent / "artifacts").as_uri()
    return fallback


def connect(tracking_uri: str) -> MlflowClient:
    """Point MLflow at ``tracking_uri`` (tracking and registry) and return a client."""
    # Artifact downloads are a handful of small files; MLflow's per-file progress bars only add noise.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(client: MlflowClient, artifact_root: str | None, name: str = EXPERIMENT) -> str:
    """The id of experiment ``name``, created with its artifact location under ``artifact_root``."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = f"{artifact_root.rstrip('/')}/{name}" if artifact_root else None
    return client.create_experiment(name, artifact_location=location)


MONITORING_EXPERIMENT = "ipcredit-monitoring"


def log_report(folder: Path, report: dict[str, Any], *, tracking_uri: str, artifact_root: str | None) -> str:
    """Log a monthly report (``models/report.py``) as a run of experiment ``ipcredit-monitoring``, tagged
    with the model version it watched, with its headline figures as metrics; return the run id."""
    client = connect(tracking_uri)
    experiment_id = ensure_experiment(client, default_artifact_root(tracking_uri, artifact_root), MONITORING_EXPERIMENT)
    run = client.create_run(
        experiment_id,
        run_name=f"report {report['as_of']}",
        tags={"model_version": report["model_version"], "as_of": report["as_of"], "score_run": str(report["run_id"])},
    )
    drift = {row["feature"]: row["psi"] for row in report["drift"]}
    metrics = {
        "entities": report["entities"],
        "drift_flagged": len(report["drift_flagged"]),
        "psi_score": drift.get("score", math.nan),
        **{f"tier_share_{t}": n / max(report["entities"], 1) for t, n in report["tiers"].items()},
    }
    for row in report["expected"]:
        if row["tier"] == "all" and row["expected_auc"] is not None:
            metrics["expected_auc"] = row["expected_auc"]
    for key, value in metrics.items():
        if value is not None and math.isfinite(value):
            client.log_metric(run.info.run_id, key, float(value))
    for name in ("report.html", "report.json"):
        client.log_artifact(run.info.run_id, str(folder / name))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


# ---- logging a training run -----------------------------------------------------------------------------


@dataclass
class Registration:
    run_id: str
    model_version: str
    decision: GateDecision
    promoted: bool


def _champion_on_candidate_rows(
    client: MlflowClient, model: TrainedModel, evaluation: Evaluation, policy: Policy
) -> tuple[str, dict[str, float], str] | None:
    """The current champion, measured on the candidate's test rows when it can score them, else its
    recorded metrics."""
    try:
        version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except Exception:
        return None
    test = evaluation.test_frame
    try:
        scorer = _load_version(client, version.version)
        scorer.check_compatible(model.scorer.feature_version)
        y, theirs = test["outcome"].to_numpy(dtype=float), scorer.predict_proba(test)
        bins = model.config.evaluation.ece_bins
        m = binary_metrics(y, theirs, ece_bins=bins)
        resamples = Resamples(test["entity_id"].to_numpy(), model.config.evaluation.bootstrap, seed=0)
        mine = test["score"].to_numpy(dtype=float)
        low, high = resamples.interval(auc_gain, y, mine, theirs)
        ece_low, ece_high = resamples.interval(lambda *a: ece_increase(*a, bins=bins), y, mine, theirs)
        flags = math.nan
        if len(evaluation.fairness_flags):
            groups = evaluation.fairness_flags[["group"]].drop_duplicates()["group"].tolist()
            frame = fairness_frame(
                y,
                theirs,
                policy.tiering(theirs, feature_columns(test)).tier,
                evaluation.fairness_groups[groups],
                min_rows=model.config.evaluation.min_group_rows,
                n_boot=model.config.evaluation.bootstrap,
                seed=model.config.lightgbm.seed,
            )
            flags = float(frame["flagged"].sum())
        return (
            version.version,
            {
                "auc": m["auc"],
                "ece": m["ece"],
                "gain_low": low,
                "gain_high": high,
                "ece_increase_low": ece_low,
                "ece_increase_high": ece_high,
                "fairness_flags": flags,
            },
            "champion re-scored on the candidate's test rows",
        )
    except Exception as exc:  # an incompatible or unreadable champion: fall back to what it recorded
        recorded = client.get_run(version.run_id).data.metrics
        if "test_auc" not in recorded:
            raise Unavailable(f"champion version {version.version} cannot be compared: {exc}") from exc
        return (
            version.version,
            {"auc": recorded["test_auc"], "ece": recorded.get("test_ece", float("inf"))},
            f"champion's recorded metrics ({type(exc).__name__}: cannot re-score)",
        )


def log_training(
    model: TrainedModel,
    evaluation: Evaluation,
    *,
    policy: Policy,
    policy_path: Path,
    tracking_uri: str,
    artifact_root: str | None,
    run_name: str | None = None,
) -> Registration:
    """Log a trained ``model`` with its ``evaluation`` as one run, register it, alias it ``challenger`` and
    apply the gate."""
    # MLflow and matplotlib take seconds to import: they load when a run is logged, not with the module.
    import mlflow

    from models import plots
    from models.pyfunc import input_example, signature

    client = connect(tracking_uri)
    experiment_id = ensure_experiment(client, default_artifact_root(tracking_uri, artifact_root))
    metrics = {k: v for k, v in run_metrics(model, evaluation).items() if v is not None and math.isfinite(v)}
    params = {
        **model.config.flat(),
        "feature_version": model.scorer.feature_version,
        "policy_version": policy.version_tag,
        "best_iteration": model.best_iteration,
        "tree_search": search_summary(model.search),
        "calibration": repr(model.scorer.calibrator),
        **{f"split.{k}": v for k, v in model.split.describe().items()},
        **{f"data.{k}": v for k, v in model.data.items() if isinstance(v, str | int | float)},
    }
    with tempfile.TemporaryDirectory(prefix="ipcredit-run-") as tmp:
        tmp = Path(tmp)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            mlflow.set_tags(
                {
                    "feature_version": model.scorer.feature_version,
                    "policy_version": policy.version_tag,
                    "data_fingerprint": str(model.data.get("fingerprint", "")),
                }
            )
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics(metrics)
            _log_tables(model, evaluation, tmp / "evaluation")
            mlflow.log_artifacts(str(tmp / "evaluation"), "evaluation")
            plots.save_plots(evaluation, tmp / "plots")
            mlflow.log_artifacts(str(tmp / "plots"), "plots")
            catalogue_frame().to_csv(tmp / "feature_catalogue.csv", index=False)
            mlflow.log_artifact(str(tmp / "feature_catalogue.csv"))
            mlflow.log_artifact(str(policy_path), "policy")
            (tmp / "train_config.json").write_text(json.dumps(model.config.model_dump(), indent=2), encoding="utf-8")
            mlflow.log_artifact(str(tmp / "train_config.json"))
            scorer_dir = model.scorer.save(tmp / "scorer")
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=str(Path(__file__).with_name("mlflow_model.py")),
                artifacts={"scorer": str(scorer_dir), "policy": str(policy_path)},
                signature=signature(),
                input_example=input_example(evaluation.test_frame),
                pip_requirements=_requirements(),
                registered_model_name=MODEL_NAME,
                await_registration_for=0,
            )
            version = str(info.registered_model_version)
            (tmp / "model_card.md").write_text(
                model_card(model, evaluation, policy, run_id=run.info.run_id, model_version=version),
                encoding="utf-8",
            )
            mlflow.log_artifact(str(tmp / "model_card.md"))
            run_id = run.info.run_id
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, version)
    champion = _champion_on_candidate_rows(client, model, evaluation, policy)
    summary = evaluation.summary()
    candidate = {
        "auc": evaluation.metric("model", "auc"),
        "ece": evaluation.metric("model", "ece"),
        "tier_rates_rise": float(evaluation.checks["tier_rates_rise"]),
        "tier_rates": evaluation.tier_rates,
        "ece_chance": evaluation.ece_chance,
        "industry_auc_min": evaluation.industry_auc_min(),
        "fairness_flags": summary.get("fairness_flags", math.nan),
        "score_psi": summary.get("test_score_psi", math.nan),
    }
    decision = gate(candidate, None if champion is None else champion[1], model.config.gate)
    decision.champion_version = None if champion is None else champion[0]
    decision.comparison = "first version: no champion" if champion is None else f"{champion[2]}, version {champion[0]}"
    for key, value in {
        "run_id": run_id,
        "feature_version": model.scorer.feature_version,
        "policy_version": policy.version_tag,
        "test_auc": f"{candidate['auc']:.4f}",
        "test_ece": f"{candidate['ece']:.4f}",
        "gate": "passed" if decision.passed else "failed",
        "gate_failed": ",".join(decision.failed),
        "gate_detail": decision.describe()[:5000],
    }.items():
        client.set_model_version_tag(MODEL_NAME, version, key, value)
    promoted = False
    if champion is None:
        promote(version, f"{FIRST_VERSION}; " + decision.describe(), tracking_uri=tracking_uri)
        promoted = True
    elif decision.passed:
        promote(version, decision.describe(), tracking_uri=tracking_uri)
        promoted = True
    return Registration(run_id=run_id, model_version=version, decision=decision, promoted=promoted)


def _log_tables(model: TrainedModel, evaluation: Evaluation, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    ev = evaluation
    tables = {
        "metrics": ev.metrics,
        "folds": ev.folds,
        "tiers": ev.tiers,
        "model_tiers": ev.model_tiers,
        "tier_crosstab": ev.crosstab.reset_index(),
        "fairness": ev.fairness,
        "rules_agreement": ev.agreement,
        "calibration": ev.calibration,
        "importance": ev.importance,
    }
    for name, table in tables.items():
        table.to_csv(directory / f"{name}.csv", index=False)
    for name, reason in model.unavailable.items():
        (directory / f"{name}.txt").write_text(f"baseline unavailable: {reason}", encoding="utf-8")
    for name, baseline in model.baselines.items():
        try:
            baseline.table().to_csv(directory / f"{name}.csv", index=False)
        except Exception as exc:  # a baseline's own table is a convenience; the metrics are what matter
            (directory / f"{name}.txt").write_text(f"table unavailable: {exc}", encoding="utf-8")
    summary = {
        "metrics": run_metrics(model, evaluation),
        "agreement": ev.agreement_summary,
        "checks": ev.checks,
        "baselines_unavailable": model.unavailable,
        "split": model.split.describe(),
        "timings_seconds": {**model.timings, "evaluate": evaluation.seconds},
        "data": model.data,
    }
    (directory / "evaluation.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")


def _requirements() -> list[str]:
    from importlib.metadata import version

    packages = (
        "lightgbm",
        "numpy",
        "pandas",
        "numba",
        "scikit-learn",
        "pydantic",
        "duckdb",
        "python-dateutil",
        "pyarrow",
        "mlflow",
    )
    return [f"{p}=={version(p)}" for p in packages]


# ---- promotion and listing ------------------------------------------------------------------------------


def _check_version(client: MlflowClient, version: str) -> ModelVersion:
    try:
        return client.get_model_version(MODEL_NAME, str(version))
    except Exception as exc:
        raise RegistryError(f"model {MODEL_NAME} has no version {version!r}") from exc


def promote(version: str, reason: str, *, tracking_uri: str) -> str | None:
    """Make ``version`` the champion, recording ``reason``; return the version it replaced (if any)."""
    if not reason.strip():
        raise InvalidInput("a promotion needs a reason")
    client = connect(tracking_uri)
    model_version = _check_version(client, version)
    try:
        previous = client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version
    except Exception:
        previous = None
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    client.set_model_version_tag(MODEL_NAME, str(version), "promoted_at", stamp)
    client.set_model_version_tag(MODEL_NAME, str(version), "promotion_reason", reason[:5000])
    client.set_model_version_tag(MODEL_NAME, str(version), "replaced_version", str(previous or ""))
    if previous and previous != str(version):
        client.set_model_version_tag(MODEL_NAME, previous, "replaced_at", stamp)
        client.set_model_version_tag(MODEL_NAME, previous, "replaced_by", str(version))
    description = (model_version.description or "").strip()
    entry = f"[{stamp}] promoted to champion: {reason}"
    client.update_model_version(MODEL_NAME, str(version), description=f"{description}\n{entry}".strip())
    return previous


def list_versions(*, tracking_uri: str) -> pd.DataFrame:
    """Every registered version with its aliases, key metrics and gate outcome, newest first."""
    client = connect(tracking_uri)
    try:
        versions = client.search_model_versions(f"name='{MODEL_NAME}'")
        # search results do not carry aliases on every store; the registered model does
        alias_map = client.get_registered_model(MODEL_NAME).aliases or {}
    except Exception:
        versions, alias_map = [], {}
    aliases: dict[str, list[str]] = {}
    for alias, number in alias_map.items():
        aliases.setdefault(str(number), []).append(alias)
    rows = []
    for v in versions:
        try:
            metrics = client.get_run(v.run_id).data.metrics if v.run_id else {}
        except Exception:
            metrics = {}
        rows.append(
            {
                "version": str(v.version),
                "aliases": ",".join(sorted(aliases.get(str(v.version), []))),
                "created": datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).strftime("%Y-%m-%d %H:%M"),
                "test_auc": metrics.get("test_auc", np.nan),
                "test_ece": metrics.get("test_ece", np.nan),
                "scorecard_auc": metrics.get("scorecard_test_auc", np.nan),
                "rules_card_auc": metrics.get("rules_card_test_auc", np.nan),
                "tier_rates_rise": bool(metrics.get("check_tier_rates_rise", 0)),
                "gate": (v.tags or {}).get("gate", ""),
                "feature_version": (v.tags or {}).get("feature_version", ""),
                "promotion_reason": (v.tags or {}).get("promotion_reason", ""),
                "run_id": v.run_id or "",
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=[
            "version",
            "aliases",
            "created",
            "test_auc",
            "test_ece",
            "scorecard_auc",
            "rules_card_auc",
            "tier_rates_rise",
            "gate",
            "feature_version",
            "promotion_reason",
            "run_id",
        ],
    )
    return frame.sort_values("version", key=lambda s: s.astype(int), ascending=False, ignore_index=True)


# ---- loading --------------------------------------------------------------------------------------------


def _download_scorer(model_uri: str, *, model_version: str | None) -> Scorer:
    import mlflow
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="ipcredit-model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        config = Model.load(str(local)).flavors["python_function"]
        scorer_path = local / config["artifacts"]["scorer"]["path"]
        return Scorer.load(scorer_path, model_version=model_version)


def _load_version(client: MlflowClient, version: str) -> Scorer:
    return _download_scorer(f"models:/{MODEL_NAME}/{version}", model_version=str(version))


def _gate_tags(tags: dict[str, str]) -> dict[str, Any]:
    """What a registered version's tags say of its gate and its promotion, for ``gate_caveat``."""
    if "gate" not in tags:
        return {}
    failed = tags.get("gate_failed")
    if failed is None:  # registered before the failed checks had a tag of their own: read them from the detail
        failed = ",".join(re.findall(r"FAIL (\w+):", tags.get("gate_detail", "")))
    return {
        "gate": tags["gate"],
        "gate_failed": [name for name in failed.split(",") if name],
        "promotion_reason": tags.get("promotion_reason", ""),
    }


def version_gate(version: str, tracking_uri: str) -> dict[str, Any]:
    """What registered ``version``'s tags say of its gate and its promotion (``gate_caveat`` reads it),
    without loading the model; ``RegistryError`` when there is no such version."""
    return _gate_tags(_check_version(connect(tracking_uri), version).tags or {})


def load_scorer(model_uri: str, tracking_uri: str) -> Scorer:
    """The scorer of ``model_uri``: ``models:/ipcredit@champion``, ``models:/ipcredit/3`` or ``runs:/<id>/model``.

    ``model_version`` is set to the registered version number (``"3"``), or ``run:<run id>`` for a run URI.
    """
    client = connect(tracking_uri)
    t0 = time.perf_counter()
    if model_uri.startswith("models:/"):
        name_part = model_uri.removeprefix("models:/")
        if "@" in name_part:
            name, alias = name_part.split("@", 1)
            try:
                found = client.get_model_version_by_alias(name, alias)
            except Exception as exc:
                raise RegistryError(f"model {name} has no version with alias {alias!r} ({model_uri})") from exc
        else:
            name, _, number = name_part.partition("/")
            found = _check_version(client, number)
        version = str(found.version)
        scorer = _download_scorer(f"models:/{name}/{version}", model_version=version)
        scorer.metadata = {**scorer.metadata, **_gate_tags(found.tags or {})}  # the version's tags, already read
    elif model_uri.startswith("runs:/"):
        run_id = model_uri.removeprefix("runs:/").split("/", 1)[0]
        scorer = _download_scorer(model_uri, model_version=f"run:{run_id}")
    else:
        scorer = _download_scorer(model_uri, model_version=None)
    scorer.metadata = {**scorer.metadata, "loaded_from": model_uri, "load_seconds": time.perf_counter() - t0}
    return scorer
