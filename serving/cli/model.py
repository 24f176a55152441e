"""CLI commands for models: ``train``, ``score``, ``models``, ``promote``.

Thin wrappers: they read files and settings, call ``features`` and ``models``, print, and write outputs
atomically. Every command validates its dataset first and exits with status 2, having written nothing,
when the dataset (or an option) is invalid.
"""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from serving.cli.app import (
    EXIT_FAILED,
    EXIT_INVALID,
    app,
    check_output_path,
    exit_code,
    fail,
    open_dataset,
    parse_date,
    warn,
    write_frame,
)
from serving.cli.ledger import LedgerFile, LedgerSeq, NoLedger, apply_ledger, spark_folder

if TYPE_CHECKING:  # the commands import the model code when they run, so `ipcredit --help` stays quick
    from features.snapshots import SnapshotPlan
    from models.evaluate import Evaluation
    from models.train import TrainedModel

# Tables are wide; when stdout is not a terminal (a log, a pipe) do not squeeze them to 80 columns.
out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True)


def _parse_date(value: str, option: str) -> date:
    # The one date rule of the service (not after today, not before 1900): serving.dates via the CLI.
    return parse_date(value, option)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )


def _settings_and_policy():
    """The settings, the validated policy and the text it was parsed from (read once: a stored run keeps both)."""
    from models.policy import PolicyError, read_policy
    from serving.settings import load_settings

    settings = load_settings()
    try:
        policy, text = read_policy(settings.policy_path)
    except PolicyError as exc:
        raise fail(exc) from None
    return settings, policy, text


def _artifact_root(settings) -> str | None:
    # With MLFLOW_TRACKING_URI set, artifacts live beside that store (models.registry decides), not in the
    # project's mlruns/ folder.
    return settings.artifact_root if settings.mlflow_tracking_uri is None else None


def _rich_table(frame: pd.DataFrame, title: str, *, percent: tuple[str, ...] = (), digits: int = 4) -> Table:
    table = Table(title=title, title_justify="left")
    for column in frame.columns:
        table.add_column(str(column), justify="right" if pd.api.types.is_numeric_dtype(frame[column]) else "left")
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            if isinstance(value, bool | np.bool_):
                cells.append("yes" if value else "no")
            elif isinstance(value, float):
                cells.append(
                    "" if math.isnan(value) else f"{value:.1%}" if column in percent else f"{value:.{digits}f}"
                )
            else:
                cells.append(f"{value:,}" if isinstance(value, int) else str(value))
        table.add_row(*cells)
    return table


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="dataset folder (entities, events, lists)")],
    as_of_end: Annotated[
        str | None, typer.Option("--as-of-end", help="last snapshot date YYYY-MM-DD (default: latest complete)")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file laid over models/train.toml")] = None,
    quarters: Annotated[
        int,
        typer.Option(
            min=4,
            max=400,
            help="at most this many quarterly snapshots: the latest dates whose outcomes the data shows",
        ),
    ] = 40,
    max_rows: Annotated[
        int,
        typer.Option(
            "--max-rows",
            min=0,
            help="dates older than the latest 16 are added only while the snapshot rows stay within this",
        ),
    ] = 1_000_000,
    run_name: Annotated[str | None, typer.Option(help="MLflow run name")] = None,
    ledger_file: LedgerFile = None,
    ledger_seq: LedgerSeq = None,
    no_ledger: NoLedger = False,
) -> None:
    """Build point-in-time snapshots, train, evaluate out of time, log to MLflow and register a version.

    The decision ledger is laid over the dataset first (features, and outcomes on each record's final
    version): the service database's, ``--ledger FILE``, or none with ``--no-ledger``.

    The last line printed is one JSON object: run_id, model_version, promoted, gate and the metrics.
    """
    from features.build import FEATURE_VERSION
    from features.snapshots import build_snapshots, plan_snapshots
    from models import registry
    from models.config import ConfigError, load_config
    from models.evaluate import evaluate_model, run_metrics
    from models.gate import FIRST_VERSION, failed_gate_words
    from models.train import TrainingError, train_model

    end = _parse_date(as_of_end, "--as-of-end") if as_of_end else None
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise fail(exc) from None
    settings, policy, _ = _settings_and_policy()
    ds = open_dataset(data)
    applied = apply_ledger(ds, ledger_file, ledger_seq, no_ledger)
    plan = plan_snapshots(ds, as_of_end=end, count=quarters, max_rows=max_rows)
    for line in plan.describe():
        err.print(line)
    dates = plan.dates
    needed = cfg.split.min_dates()
    if len(dates) < needed:
        raise fail(_no_design(data, plan, needed, end), code=2)
    t0 = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("building snapshots", total=len(dates))
        snapshots = build_snapshots(
            ds, dates, progress=lambda d: progress.update(task, advance=1, description=f"snapshot {d}")
        )
    err.print(f"{len(snapshots):,} snapshot rows over {len(dates)} as-of dates in {time.perf_counter() - t0:.1f} s")
    try:
        with err.status("training") as status:
            model = train_model(
                snapshots,
                policy,
                config=cfg,
                feature_version=FEATURE_VERSION,
                data={
                    "source": str(data),
                    "fingerprint": ds.fingerprint,
                    "snapshot_plan": plan.describe(),
                    "ledger_seq": applied.seq,
                },
                progress=lambda message: status.update(message),
            )
            evaluation = evaluate_model(
                model,
                snapshots,
                policy,
                groups=ds.entities[["entity_id", "region", "kind"]],
                progress=lambda message: status.update(message),
            )
    except TrainingError as exc:
        raise fail(f"cannot train on {data}: {exc}; nothing was logged") from None
    _print_evaluation(model, evaluation)
    with err.status("logging the run to MLflow and registering the model"):
        registration = registry.log_training(
            model,
            evaluation,
            policy=policy,
            policy_path=settings.policy_path,
            tracking_uri=settings.tracking_uri,
            artifact_root=_artifact_root(settings),
            run_name=run_name,
        )
    verdict = "promoted to champion" if registration.promoted else "kept as challenger"
    out.print(f"registered {registry.MODEL_NAME} version {registration.model_version} ({verdict})")
    out.print(registration.decision.describe())
    if registration.promoted and not registration.decision.passed:  # the first version, champion gate or no gate
        warn(failed_gate_words(registration.model_version, registration.decision.failed, FIRST_VERSION))
    summary = {
        "run_id": registration.run_id,
        "model_version": registration.model_version,
        "promoted": registration.promoted,
        "gate": "passed" if registration.decision.passed else "failed",
        "baselines_unavailable": model.unavailable,
        "metrics": {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in run_metrics(model, evaluation).items()
        },
    }
    typer.echo(json.dumps(summary, sort_keys=True))


def _no_design(data: Path, plan: SnapshotPlan, needed: int, end: date | None = None) -> str:
    """Why ``train`` cannot plan its out-of-time design on ``data`` (up to ``--as-of-end`` ``end``, when
    given), and what would fix it."""
    from features.schema import ADVERSE_CODES

    head = f"cannot train on {data}: "
    if not plan.records:
        return head + "the events table holds no record; deliver the events (CONTRACT section 1); nothing was logged"
    if not plan.adverse_records:
        return (
            head + f"none of its {plan.records:,} records (from {plan.first_record} to {plan.data_end}) is adverse, "
            f"and the outcome the model learns is an adverse record within 12 months ({', '.join(ADVERSE_CODES)}). "
            "Deliver more history, or the findings, penalties and judgments the delivery left out, under those "
            "event types; nothing was logged"
        )
    cut = (
        f"; --as-of-end {end} keeps only the outcome windows closed by it, so a later --as-of-end, or none, uses more"
        if end is not None and plan.data_end is not None and end < plan.data_end
        else ""
    )
    reasons = plan.skipped_by_reason()
    left_out = (
        "; of the other quarter ends with a year of history before them, "
        + "; ".join(f"{n:,}: {r}" for r, n in reasons)
        if reasons
        else ""
    )
    adverse = f", {plan.adverse_records:,} of its {plan.records:,} records adverse"
    return (
        head + f"the out-of-time design needs at least {needed} quarterly as-of dates whose 12-month outcome window "
        f"the data covers and holds an adverse record, with a year of recorded history before each; the data has "
        f"{len(plan.dates)} (records from {plan.first_record or '-'} to {plan.data_end or '-'}{adverse}{cut})"
        f"{left_out}. Deliver more history, or the adverse records the delivery left out, or lay a smaller "
        "design over models/train.toml with --config (split.test_quarters, split.valid_quarters, "
        "split.min_train_quarters, split.purge_overlap = false); nothing was logged"
    )


def _print_evaluation(model: TrainedModel, ev: Evaluation) -> None:
    split = model.split.describe()
    out.print(
        f"out-of-time split — train {split['train']} · purged {split['purged']} · valid {split['valid']} · "
        f"test {split['test']}; {model.trees_text()}; "
        f"{model.scorer.calibrator!r}"
    )
    if len(model.search) > 1:
        from models.train import search_summary

        out.print(f"chosen on the validation fold: {search_summary(model.search)}")
    out.print(_rich_table(ev.metrics, "Test fold: model vs baselines"))
    if len(ev.intervals):
        out.print(_rich_table(ev.intervals, "95 % bootstrap intervals on the test fold (resampling entities)"))
    rates = ("share", "outcome_rate", "rate_low", "rate_high", "mean_score")
    out.print(_rich_table(ev.tiers, "Tiers (final, after rules)", percent=rates))
    out.print(_rich_table(ev.model_tiers, "Tiers (model alone)", percent=("share", "outcome_rate", "mean_score")))
    out.print(_rich_table(ev.agreement, "Rules vs model", percent=("share", "outcome_rate", "model_agrees")))
    s = ev.agreement_summary
    out.print(
        f"rule-flagged rows the model alone puts in C/D: {s['rule_flagged_model_CD_share']:.1%}; rule-free rows "
        f"the model puts in D: {s['rule_free_model_D_rows']:,} (outcome rate {s['rule_free_model_D_outcome_rate']:.1%} "
        f"vs {s['rule_free_outcome_rate']:.1%} for all rule-free rows)"
    )
    for group in ("industry", "region", "kind"):
        part = ev.fairness[ev.fairness["group"] == group].drop(columns=["group"])
        if len(part):
            out.print(
                _rich_table(
                    part, f"Fairness by {group}", percent=("share", "outcome_rate", "mean_score", "share_D", "share_CD")
                )
            )
    out.print("checks: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in ev.checks.items()))


def _versions_that_can(tracking_uri: str, feature_version: str) -> str:
    """Where the champion cannot score features of ``feature_version``: the newest registered version that
    can (a challenger the gate kept back, say), as advice the user can act on; empty when none can."""
    from models.registry import MODEL_NAME, list_versions

    versions = list_versions(tracking_uri=tracking_uri)
    able = versions[versions["feature_version"] == feature_version] if not versions.empty else versions
    if able.empty:
        return ""
    v = able.iloc[0]  # newest first
    gate = f", gate {v['gate']}" if v["gate"] else ""
    return (
        f" Version {v['version']} ({v['aliases'] or 'no alias'}{gate}) was trained on these features: score with "
        f"--model models:/{MODEL_NAME}/{v['version']}, or make it champion with "
        f"ipcredit promote {v['version']} --reason TEXT."
    )


@app.command()
def score(
    data: Annotated[Path, typer.Option(help="dataset folder")],
    as_of: Annotated[str, typer.Option("--as-of", help="as-of date YYYY-MM-DD")],
    out_file: Annotated[Path, typer.Option("--out", help="score file, .parquet or .csv")],
    model: Annotated[str | None, typer.Option(help="model URI (default: models:/ipcredit@champion)")] = None,
    store: Annotated[bool, typer.Option("--store", help="also save the run in the service database")] = False,
    chunk_size: Annotated[int, typer.Option(min=1, help="entities per scoring chunk")] = 100_000,
    top_k: Annotated[int, typer.Option(min=0, max=20, help="reasons per entity")] = 5,
    engine: Annotated[str, typer.Option(help="duckdb, or spark (pip install '.[spark]'; IPCREDIT_SPARK_*)")] = "duckdb",
    parts: Annotated[
        Path | None, typer.Option(help="with --engine spark: keep the executors' partitioned Parquet here")
    ] = None,
    ledger_file: LedgerFile = None,
    ledger_seq: LedgerSeq = None,
    no_ledger: NoLedger = False,
) -> None:
    """Score every entity registered by the as-of date; write the score file (CONTRACT section 4).

    The decision ledger is laid over the dataset first: the service database's (every decision, or up to
    ``--ledger-seq``), ``--ledger FILE``, or none with ``--no-ledger``; the score file and a stored run
    record the seq in ``ledger_seq``, and disagreements between folder and ledger are printed."""
    if engine not in ("duckdb", "spark"):
        raise fail(f"--engine must be duckdb or spark; got {engine!r}")
    from features.build import FEATURE_VERSION, build_features
    from models.gate import gate_caveat
    from models.registry import load_scorer
    from models.scorefile import score_file
    from models.scorer import ModelError

    day = _parse_date(as_of, "--as-of")
    check_output_path(out_file)
    settings, policy, policy_text = _settings_and_policy()
    ds = open_dataset(data)
    applied = apply_ledger(ds, ledger_file, ledger_seq, no_ledger)
    warn(ds.span_caveat(day))
    uri = model or settings.serving_model_uri
    try:
        with err.status(f"loading {uri}"):
            scorer = load_scorer(uri, settings.tracking_uri)
        scorer.check_compatible(FEATURE_VERSION)
    except ModelError as exc:
        raise fail(f"{exc}{'' if model else _versions_that_can(settings.tracking_uri, FEATURE_VERSION)}") from None
    except Exception as exc:
        raise fail(f"cannot load the model {uri}: {exc}", EXIT_FAILED) from None
    warn(gate_caveat(scorer.metadata, scorer.model_version))
    if not store and out_file.suffix.lower() == ".parquet":  # streamed: one row group in memory at a time
        streamed = _StreamedScore(ds, data, day, scorer, policy, applied, top_k=top_k, chunk_size=chunk_size)
        written = streamed.spark(parts, out_file) if engine == "spark" else streamed.duckdb(out_file)
        _said_written(out_file, written, day, scorer, policy, streamed.seconds_features, streamed.seconds_score)
        return
    t0 = time.perf_counter()
    if engine == "spark":  # features and scores in one Spark job: its time is reported as scoring
        with spark_folder(ds, data, applied, out_file) as (folder, overlaid):
            scores = _spark_scores(
                folder,
                day,
                scorer,
                policy,
                top_k=top_k,
                details=store,
                parts=parts,
                out_file=out_file,
                withdrawals=overlaid,
            )
        seconds_features = 0.0
    else:
        with err.status(f"building features as of {day}"):
            features = build_features(ds, day)
        seconds_features = time.perf_counter() - t0
        t0 = time.perf_counter()
        with _progress() as progress:
            task = progress.add_task(f"scoring with model {scorer.model_version}", total=len(features))
            scores = scorer.score(
                features,
                policy,
                top_k=top_k,
                details=store,
                chunk_size=chunk_size,
                progress=lambda rows: progress.update(task, advance=rows),
            )
    seconds_score = time.perf_counter() - t0
    if applied.seq is not None:
        scores["ledger_seq"] = applied.seq  # an extra column of the score file: the decisions it applied
    if store and scores.empty:
        raise fail(f"no entity of {data} is registered by {day}: no run to store; nothing was written")
    if store:
        from serving.auth import cli_principal
        from serving.db import open_store
        from serving.store import ScoreRunRecord, StoreError, save_audited

        run = ScoreRunRecord(
            scores=scores,
            entities=ds.entities,
            lists=ds.table("lists"),
            as_of=day,
            dataset_fingerprint=ds.fingerprint,
            data_source=str(data),
            policy_text=policy_text,
            policy_version=policy.version_tag,
            model_version=str(scorer.model_version),
            feature_version=scorer.feature_version,
            ledger_seq=applied.seq,
            ledger_conflicts=applied.conflicts,
            data_end=ds.data_end(),
        )
        with err.status("saving the run in the service database"):
            try:
                # The run and its audit row (actor cli:<user>) in one transaction.
                run_id = save_audited(open_store(settings.db_url), run, cli_principal())
            except StoreError as exc:
                raise fail(f"cannot store the run: {exc}; nothing was written", exit_code(exc)) from None
        err.print(f"stored score run {run_id}")
    write_frame(score_file(scores), out_file)
    written = (len(scores), scores["tier"].value_counts().to_dict(), int(scores["review"].sum()))
    _said_written(out_file, written, day, scorer, policy, seconds_features, seconds_score)


def _said_written(out_file: Path, written: tuple[int, dict, int], day: date, scorer, policy, features_s, score_s):
    from models.scorefile import UNREGISTERED

    rows, tiers, review = written
    err.print(
        f"wrote {out_file}: {rows:,} entities as of {day} with model {scorer.model_version or UNREGISTERED}, policy "
        f"{policy.version_tag} — "
        + " ".join(f"{t}:{tiers.get(t, 0):,}" for t in "ABCD")
        + f", review {review:,} (features {features_s:.1f} s, "
        f"scoring {score_s:.1f} s, {rows / max(score_s, 1e-9):,.0f} rows/s)"
    )
    if rows and not tiers.get("A"):
        warn(
            f"no entity is in tier A, which holds calibrated probabilities below {policy.tiers.upper_bounds['A']:g} "
            f"of a confirmed violation in the next 12 months (policy {policy.version_tag}, [tiers] upper_bounds). "
            "On a record whose outcome rate is high no entity may score that low; the tier table of `ipcredit "
            "train` and the model card show each tier's share and observed rate, and the bounds are the "
            "regulator's to set in the policy file (IPCREDIT_POLICY_PATH)."
        )


class _StreamedScore:
    """A Parquet score file written as it is scored (``models.scorefile.ScoreFileWriter``): DuckDB's
    features scored a chunk at a time, or Spark's part files merged in ``entity_id`` order; either way the
    same bytes, and the rows of one row group in memory rather than the run's."""

    def __init__(self, ds, data: Path, day: date, scorer, policy, applied, *, top_k: int, chunk_size: int) -> None:
        self.ds, self.data, self.day, self.scorer, self.policy, self.applied = ds, data, day, scorer, policy, applied
        self.top_k, self.chunk_size = top_k, chunk_size
        self.seconds_features = self.seconds_score = 0.0

    def _writer(self, out_file: Path):
        from models.scorefile import ScoreFileWriter, score_schema

        return ScoreFileWriter(out_file, score_schema(ledger=self.applied.seq is not None))

    def _with_seq(self, table):
        import pyarrow as pa

        if self.applied.seq is None:
            return table
        return table.append_column("ledger_seq", pa.array([self.applied.seq] * table.num_rows, pa.int64()))

    def duckdb(self, out_file: Path) -> tuple[int, dict, int]:
        import pyarrow as pa

        from features.build import build_features
        from models.scorefile import score_batch, score_schema

        t0 = time.perf_counter()
        with err.status(f"building features as of {self.day}"):
            features = build_features(self.ds, self.day)
        self.seconds_features = time.perf_counter() - t0
        t0 = time.perf_counter()
        schema = score_schema()
        with _progress() as progress, self._writer(out_file) as writer:
            task = progress.add_task(f"scoring with model {self.scorer.model_version}", total=len(features))
            for start in range(0, len(features), self.chunk_size):
                chunk = features.iloc[start : start + self.chunk_size]
                columns = self.scorer.score_columns(chunk, self.policy, top_k=self.top_k, details=False)
                writer.write(self._with_seq(pa.Table.from_batches([score_batch(columns, schema)])))
                progress.update(task, advance=len(chunk))
        self.seconds_score = time.perf_counter() - t0
        return writer.written, writer.tiers, writer.review

    def spark(self, parts: Path | None, out_file: Path) -> tuple[int, dict, int]:
        """Features and scores in one Spark job (its time is reported as scoring), then the parts merged."""
        import pyarrow as pa

        from features.errors import Unavailable
        from models.scorefile import score_schema

        spark_job, spark_scoring = _spark_modules()
        merged_scores, read_scores = spark_scoring.merged_scores, spark_scoring.read_scores
        remove_scores, score_to_parts = spark_scoring.remove_scores, spark_scoring.score_to_parts

        t0 = time.perf_counter()
        folder = parts or out_file.parent / f".{out_file.name}.parts"
        try:
            with (
                spark_folder(self.ds, self.data, self.applied, out_file) as (data, overlaid),
                err.status(f"scoring on Spark with model {self.scorer.model_version}"),
                spark_job() as spark,
            ):
                score_to_parts(
                    spark,
                    data,
                    self.day,
                    self.scorer,
                    self.policy,
                    parts=folder,
                    top_k=self.top_k,
                    withdrawals=overlaid,
                )
            names = score_schema().names
            with self._writer(out_file) as writer:
                groups = merged_scores(folder, names, writer.rows)
                if groups is None:  # not sorted per file: read whole
                    groups = [pa.Table.from_pandas(read_scores(folder), preserve_index=False)]
                for table in groups:
                    writer.write(self._with_seq(table))
        except Unavailable as exc:
            raise fail(exc) from None
        finally:
            if parts is None:
                remove_scores(folder)
        self.seconds_score = time.perf_counter() - t0
        return writer.written, writer.tiers, writer.review


def _spark_modules():
    """``features.spark.spark_job`` and ``models.spark_scoring``, or the error that says pyspark is missing."""
    try:
        from features.spark import spark_job
        from models import spark_scoring
    except ImportError:
        raise fail("--engine spark needs pyspark: pip install '.[spark]' (and Java 17)", EXIT_FAILED) from None
    return spark_job, spark_scoring


def _spark_scores(
    data: Path,
    day: date,
    scorer,
    policy,
    *,
    top_k: int,
    details: bool,
    parts: Path | None,
    out_file: Path,
    withdrawals: bool,
) -> pd.DataFrame:
    """Features and score rows computed by Spark's executors (models/spark_scoring.py), read back from the
    partitioned Parquet they wrote: ``parts``, or a temporary folder beside the score file."""
    from features.errors import Unavailable

    spark_job, spark_scoring = _spark_modules()
    read_scores, remove_scores, score_to_parts = (
        spark_scoring.read_scores,
        spark_scoring.remove_scores,
        spark_scoring.score_to_parts,
    )
    folder = parts or out_file.parent / f".{out_file.name}.parts"
    try:
        with err.status(f"scoring on Spark with model {scorer.model_version}"), spark_job() as spark:
            score_to_parts(
                spark, data, day, scorer, policy, parts=folder, top_k=top_k, details=details, withdrawals=withdrawals
            )
        return read_scores(folder)  # on the driver once the session (and its memory) is gone
    except Unavailable as exc:
        raise fail(exc) from None
    finally:
        if parts is None:
            remove_scores(folder)


@app.command("models")
def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="print the versions as JSON")] = False,
) -> None:
    """List the registered versions of model ipcredit with their metrics, aliases and gate outcome."""
    from models.registry import list_versions
    from serving.settings import load_settings

    versions = list_versions(tracking_uri=load_settings().tracking_uri)
    if as_json:
        typer.echo(versions.to_json(orient="records", force_ascii=False))
        return
    if versions.empty:
        err.print("no registered versions yet (run ipcredit train)")
        return
    shown = versions.drop(columns=["run_id", "feature_version"]).assign(
        promotion_reason=versions["promotion_reason"].str.slice(0, 60)
    )
    out.print(_rich_table(shown, "Registered versions of ipcredit"))


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="registered version number to make champion")],
    reason: Annotated[str, typer.Option(help="why (recorded with the version)")],
) -> None:
    """Make VERSION the champion by hand, recording the reason (the gate is bypassed, not forgotten)."""
    from features.errors import InvalidInput
    from models.registry import RegistryError
    from models.registry import promote as promote_version
    from serving.settings import load_settings

    if not reason.strip():
        raise fail("--reason must not be empty")
    try:
        previous = promote_version(version, reason, tracking_uri=load_settings().tracking_uri)
    except (RegistryError, InvalidInput) as exc:
        raise fail(str(exc), EXIT_INVALID) from None
    out.print(f"version {version} is now champion" + (f" (replaces version {previous})" if previous else ""))


@app.command()
def report(
    as_of: Annotated[str, typer.Option("--as-of", help="the month's as-of date YYYY-MM-DD")],
    out_dir: Annotated[Path, typer.Option("--out", help="folder for report.html and report.json")],
    data: Annotated[
        Path | None, typer.Option(help="dataset folder, to compare the run of a year before with its outcomes")
    ] = None,
    log: Annotated[bool, typer.Option(help="also log the report to MLflow (experiment ipcredit-monitoring)")] = True,
    store: Annotated[
        bool, typer.Option(help="also keep the report in the service database (served at /v1/reports, /metrics)")
    ] = True,
) -> None:
    """The monthly monitoring report of the stored run at or before the date: drift, expected and
    realised performance, random-draw violation rates, fairness, provincial summary."""
    from features.errors import IPCreditError
    from models import registry
    from models.report import build_report, write_report
    from serving.db import open_store
    from serving.reports import month_inputs

    day = _parse_date(as_of, "--as-of")
    settings, _, _ = _settings_and_policy()
    ds = open_dataset(data) if data else None
    engine = open_store(settings.db_url)
    try:
        with err.status("reading the month from the service database"):
            inputs = month_inputs(
                engine,
                day,
                lambda version: registry.load_scorer(f"models:/{registry.MODEL_NAME}/{version}", settings.tracking_uri),
                dataset=ds,
            )
        with err.status("computing the report"):
            figures = build_report(inputs)
    except IPCreditError as exc:
        raise fail(exc) from None
    json_path, html_path = write_report(figures, out_dir)
    if store:
        from serving.auth import cli_principal
        from serving.reports import store_report

        report_id = store_report(engine, figures, cli_principal().actor)
        err.print(f"kept as report {report_id} in the service database")
    if log:
        run_id = registry.log_report(
            out_dir, figures, tracking_uri=settings.tracking_uri, artifact_root=_artifact_root(settings)
        )
        err.print(f"logged to MLflow run {run_id}")
    flagged = ", ".join(figures["drift_flagged"]) or "none"
    out.print(f"wrote {html_path} and {json_path} (run {figures['run_id']}, drift flagged: {flagged})")
