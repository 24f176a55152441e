"""The monthly report in the service: its inputs read from the database (``models/report.py`` computes and
renders), and the reports as issued, kept once each and read back by the routes and ``/metrics``.

For an as-of date D: the newest batch run at or before D and the one before it; random-draw inspection
results recorded in the twelve months up to D with the tier and inclusion probability each selected
entity was drawn with; the objections decided in the month; and, when a dataset is given whose records
reach twelve months past it, the batch run of a year before with its realised outcomes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, and_, func, select

from features.build import conform
from features.catalogue import FEATURE_NAMES
from features.dataset import Dataset, stale_caveat
from features.errors import NotFound, Unavailable
from features.snapshots import OUTCOME_MONTHS, build_outcomes
from models.gate import gate_caveat
from models.monitoring import Reference
from models.policy import TIERS
from models.report import MonthInputs, render_html, report_json
from models.scorer import Scorer
from serving import plans
from serving.db import (
    draw_selections,
    entities,
    inspection_results,
    ledger,
    monitoring_reports,
    objections,
    score_runs,
    scores,
)


def _run_before(conn, as_of: date, *, strictly: bool = False) -> dict | None:
    condition = score_runs.c.as_of < as_of if strictly else score_runs.c.as_of <= as_of
    stmt = (
        select(score_runs)
        .where(and_(score_runs.c.kind == "batch", condition))
        .order_by(score_runs.c.as_of.desc(), score_runs.c.id.desc())
        .limit(1)
    )
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def _rows(conn, run_id: int) -> pd.DataFrame:
    """A run's rows with their features and the entity's groups."""
    stmt = (
        select(
            scores.c.entity_id,
            scores.c.score,
            scores.c.tier,
            scores.c.rules,
            scores.c.features,
            entities.c.region,
            entities.c.kind,
        )
        .select_from(scores.outerjoin(entities, entities.c.entity_id == scores.c.entity_id))
        .where(scores.c.run_id == run_id)
        .order_by(scores.c.entity_id)
    )
    frame = pd.DataFrame(conn.execute(stmt).mappings().all())
    if frame.empty:
        return frame
    # Industry and online selling are features too: the group columns come from the stored values.
    values = pd.DataFrame([json.loads(text) if text else {} for text in frame.pop("features")])
    return pd.concat([frame, conform(values.reindex(columns=FEATURE_NAMES))], axis=1)


def month_inputs(
    engine: Engine,
    as_of: date,
    load_scorer: Callable[[str], Scorer],
    *,
    dataset: Dataset | None = None,
) -> MonthInputs:
    """Collect one month's inputs. ``load_scorer(model_version)`` gives the run's model (its reference)."""
    with engine.connect() as conn:
        run = _run_before(conn, as_of)
        if run is None:
            raise NotFound(f"no batch score run at or before {as_of}: store one with ipcredit score --store")
        scorer = load_scorer(run["model_version"])
        if "reference" not in scorer.metadata:
            raise Unavailable(
                f"model {run['model_version']} was trained before drift references were stored with models; "
                "retrain it (ipcredit train) to monitor it"
            )
        reference = Reference.from_dict(scorer.metadata["reference"])
        rows = _rows(conn, run["id"])
        previous_run = _run_before(conn, run["as_of"], strictly=True)
        previous = (
            pd.DataFrame(
                conn.execute(select(scores.c.entity_id, scores.c.tier).where(scores.c.run_id == previous_run["id"]))
                .mappings()
                .all()
            )
            if previous_run
            else None
        )
        since = as_of - relativedelta(months=12)
        inspected = pd.DataFrame(
            conn.execute(
                select(
                    inspection_results.c.entity_id,
                    inspection_results.c.event_type,
                    draw_selections.c.tier,
                    draw_selections.c.inclusion_probability,
                )
                .select_from(
                    inspection_results.join(
                        draw_selections,
                        and_(
                            draw_selections.c.draw_id == inspection_results.c.draw_id,
                            draw_selections.c.entity_id == inspection_results.c.entity_id,
                        ),
                    )
                )
                .where(and_(inspection_results.c.recorded_on > since, inspection_results.c.recorded_on <= as_of))
            )
            .mappings()
            .all()
        )
        inspections = (
            inspected.assign(finding=(inspected["event_type"] == "inspection_failed").astype(int), random=True)
            if len(inspected)
            else None
        )
        month_start = as_of - relativedelta(months=1)
        decided = conn.execute(
            select(objections.c.decision, func.count())
            .where(and_(objections.c.decided_at.is_not(None), func.date(objections.c.decided_at) > month_start))
            .group_by(objections.c.decision)
        ).all()
        matured = None
        matured_run = _run_before(conn, as_of - relativedelta(months=OUTCOME_MONTHS))
        if dataset is not None and matured_run is not None:
            end = dataset.data_end()
            if end is not None and matured_run["as_of"] + relativedelta(months=OUTCOME_MONTHS) <= end:
                past = _rows(conn, matured_run["id"])
                outcomes = build_outcomes(dataset, matured_run["as_of"])
                matured = past.merge(outcomes, on="entity_id", how="inner")
        ledger_decided = conn.execute(
            select(ledger.c.kind, func.count())
            .where(and_(ledger.c.decided_on > month_start, ledger.c.decided_on <= as_of))
            .group_by(ledger.c.kind)
        ).all()
        plan_progress = [
            {"region": plan["region"], "plan_id": plan["plan_id"], **plan["progress"]["total"]}
            for plan in plans.list_plans(conn, None, year=as_of.year, on=as_of)
        ]
    regions = rows.get("region", pd.Series(dtype=object)).astype(str)
    tiers_by_region = (
        pd.crosstab(regions, rows["tier"].astype(str)).reindex(columns=list(TIERS), fill_value=0)
        if len(rows)
        else pd.DataFrame(columns=list(TIERS))
    )
    provincial = {
        "run_id": run["id"],
        "run_as_of": run["as_of"].isoformat(),
        "objections_decided_this_month": {str(decision): int(n) for decision, n in decided},
        "ledger_decisions_this_month": {str(kind): int(n) for kind, n in sorted(ledger_decided)},
        "tiers_by_region": [
            {"region": region, **{t: int(n) for t, n in counts.items()}}
            for region, counts in tiers_by_region.sort_index().iterrows()
        ],
        "plans": sorted(plan_progress, key=lambda p: (p["region"], p["plan_id"])),
    }
    return MonthInputs(
        as_of=as_of,
        run_id=run["id"],
        model_version=str(run["model_version"]),
        policy_version=str(run["policy_version"]),
        reference=reference,
        run=rows,
        previous=previous,
        inspections=inspections,
        matured=matured,
        provincial=provincial,
        data_caveat=stale_caveat(run["as_of"], run.get("data_end")),
        model_caveat=gate_caveat(scorer.metadata, str(run["model_version"])),
    )


# ---- reports as issued --------------------------------------------------------------------------------------

REPORT_SUMMARY = ("id", "as_of", "run_id", "model_version", "policy_version", "created_at", "created_by", "sha256")


def store_report(engine: Engine, figures: dict[str, Any], created_by: str) -> int:
    """Keep a report (its ``report.json`` text and its page) and return its id; a report with the same
    figures is kept once, and storing it again returns the first one's id."""
    text = report_json(figures)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with engine.begin() as conn:
        existing = conn.execute(select(monitoring_reports.c.id).where(monitoring_reports.c.sha256 == digest)).all()
        if existing:
            return int(existing[0][0])
        result = conn.execute(
            monitoring_reports.insert().values(
                as_of=date.fromisoformat(figures["as_of"]),
                run_id=int(figures["run_id"]),
                model_version=str(figures["model_version"]),
                policy_version=str(figures["policy_version"]),
                created_at=datetime.now(UTC),
                created_by=created_by,
                sha256=digest,
                figures=text,
                html=render_html(figures),
            )
        )
        return int(result.inserted_primary_key[0])


def list_reports(conn, *, limit: int, offset: int) -> list[dict[str, Any]]:
    """Reports as issued, newest month first (and the latest issued first within a month)."""
    columns = [monitoring_reports.c[name] for name in REPORT_SUMMARY]
    query = (
        select(*columns)
        .order_by(monitoring_reports.c.as_of.desc(), monitoring_reports.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [dict(row) for row in conn.execute(query).mappings().all()]


def report_row(conn, report_id: int) -> dict[str, Any]:
    """One report as issued with its figures and page; NotFound when there is none."""
    rows = conn.execute(select(monitoring_reports).where(monitoring_reports.c.id == report_id)).mappings().all()
    if not rows:
        raise NotFound(f"no monitoring report {report_id}")
    return dict(rows[0])


def latest_report_id(conn) -> int | None:
    """The id of the report issued last, or None before the first."""
    rows = conn.execute(select(func.max(monitoring_reports.c.id))).all()
    return None if rows[0][0] is None else int(rows[0][0])
