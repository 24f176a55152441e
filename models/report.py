"""The monthly monitoring report: ``report.json`` with every figure and ``report.html`` to look at.

``build_report`` composes ``models/monitoring.py`` over one month's inputs (the stored run, the previous
run, the model's training reference, random-draw inspection results with their inclusion probabilities,
and, where outcomes have matured, the run of twelve months before with its realised outcomes). The
service and ``ipcredit report`` collect those inputs from the database; this module only computes and
renders, so the same inputs always give the same bytes (plots are SVG with fixed ids and no dates).
"""

from __future__ import annotations

import html
import io
import json
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.catalogue import FEATURES
from models.metrics import auc_or_nan
from models.monitoring import (
    Reference,
    drift_table,
    expected_performance,
    fairness_frame,
    group_violation_rates,
    migration_matrix,
    violation_rates,
)
from models.policy import TIER_LABELS, TIERS

GROUPS = ("industry", "region", "kind", "online_seller")


@dataclass
class MonthInputs:
    """Everything one month's report reads.

    ``run``: one row per entity of the month's stored run: ``entity_id``, ``score``, ``tier``, ``rules``
    (``;``-joined codes) and every catalogue feature, plus the group columns (``industry``, ``region``,
    ``kind``, ``online_seller``). ``previous``: ``entity_id`` and ``tier`` of the run before (or None).
    ``inspections``: random-draw results: ``entity_id``, ``tier`` at the draw, ``finding`` (0/1),
    ``inclusion_probability``, ``random`` (targeted ones are dropped here). ``matured``: the run of 12
    months before with ``score``, ``tier`` and the realised ``outcome`` (or None). ``data_caveat``: what
    the run's scores should be read with (``features.dataset.stale_caveat``: scored long after its
    delivery's last record, drift then says as much about the delivery as about the entities), or None.
    ``model_caveat``: that the run's model failed its promotion gate and why it scored all the same
    (``models.gate.gate_caveat``), or None.
    """

    as_of: date
    run_id: int | str
    model_version: str
    policy_version: str
    reference: Reference
    run: pd.DataFrame
    previous: pd.DataFrame | None = None
    inspections: pd.DataFrame | None = None
    matured: pd.DataFrame | None = None
    provincial: dict[str, Any] = field(default_factory=dict)
    min_group_rows: int = 300
    data_caveat: str | None = None
    model_caveat: str | None = None


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as JSON-ready records (NaN as null)."""
    return json.loads(frame.to_json(orient="records", force_ascii=False, double_precision=10))


def build_report(inputs: MonthInputs, *, n_boot: int = 200) -> dict[str, Any]:
    """Every figure of the month as a JSON-ready dict (deterministic for the same inputs)."""
    run = inputs.run
    scores = run["score"].to_numpy(dtype=float)
    tiers = run["tier"].astype(str).to_numpy()
    drift = drift_table(inputs.reference, run, scores)
    codes = [c for c in inputs.reference.rule_rates]
    fired = run["rules"].fillna("").astype(str).str.split(";")
    rule_rates = pd.DataFrame(
        {
            "rule": codes,
            "reference_rate": [inputs.reference.rule_rates[c] for c in codes],
            "rate": [float(fired.map(lambda r, c=c: c in r).mean()) if len(run) else math.nan for c in codes],
        }
    )
    groups = pd.DataFrame({g: run[g].astype(str) for g in GROUPS if g in run.columns})
    tier_mix = (
        pd.concat([groups[g].rename("value").to_frame().assign(group=g, tier=tiers) for g in groups], ignore_index=True)
        .groupby(["group", "value", "tier"])
        .size()
        .unstack("tier", fill_value=0)
        .reindex(columns=list(TIERS), fill_value=0)
        .reset_index()
        if len(groups.columns)
        else pd.DataFrame()
    )
    report: dict[str, Any] = {
        "as_of": inputs.as_of.isoformat(),
        "run_id": inputs.run_id,
        "model_version": inputs.model_version,
        "policy_version": inputs.policy_version,
        "entities": len(run),
        "tiers": {t: int((tiers == t).sum()) for t in TIERS},
        "drift": _records(drift),
        "drift_flagged": drift.loc[drift["flagged"], "feature"].tolist(),
        "rule_rates": _records(rule_rates),
        "tier_mix": _records(tier_mix),
        "expected": _records(expected_performance(scores, tiers)),
        "fairness": _records(fairness_frame(None, scores, tiers, groups, min_rows=inputs.min_group_rows, n_boot=n_boot))
        if len(groups.columns)
        else [],
        "provincial": inputs.provincial,
    }
    if inputs.data_caveat:
        report["data_caveat"] = inputs.data_caveat
    if inputs.model_caveat:
        report["model_caveat"] = inputs.model_caveat
    if inputs.previous is not None and len(inputs.previous):
        matrix = migration_matrix(
            inputs.previous.set_index("entity_id")["tier"], run.set_index("entity_id")["tier"].astype(str)
        )
        report["migration"] = {"tiers": list(TIERS), "counts": matrix.to_numpy().tolist()}
    if inputs.inspections is not None and len(inputs.inspections):
        random = inputs.inspections[inputs.inspections["random"].astype(bool)]
        rates = violation_rates(
            random["tier"].astype(str).to_numpy(),
            random["finding"].to_numpy(dtype=float),
            random["inclusion_probability"].to_numpy(dtype=float),
        )
        expected = expected_performance(scores, tiers).set_index("tier")["expected_rate"]
        rates["predicted_rate"] = rates["tier"].map(expected)
        report["violation_rates"] = _records(rates)
        report["targeted_excluded"] = int((~inputs.inspections["random"].astype(bool)).sum())
        inspected_groups = groups.assign(entity_id=run["entity_id"].to_numpy()).merge(
            random[["entity_id", "finding", "inclusion_probability"]], on="entity_id", how="inner"
        )
        if len(inspected_groups) and len(groups.columns):
            report["fairness_findings"] = _records(
                group_violation_rates(
                    inspected_groups[list(groups.columns)],
                    inspected_groups["finding"].to_numpy(dtype=float),
                    inspected_groups["inclusion_probability"].to_numpy(dtype=float),
                )
            )
    if inputs.matured is not None and len(inputs.matured):
        m = inputs.matured
        y = m["outcome"].to_numpy(dtype=float)
        past = expected_performance(m["score"].to_numpy(dtype=float), m["tier"].astype(str).to_numpy())
        realised = m.assign(y=y).groupby(m["tier"].astype(str))["y"].mean().reindex(list(TIERS))
        past["realised_rate"] = past["tier"].map(realised.to_dict() | {"all": float(y.mean())})
        past.loc[past["tier"] == "all", "realised_auc"] = auc_or_nan(y, m["score"].to_numpy(dtype=float))
        report["matured"] = _records(past)
        matured_groups = pd.DataFrame({g: m[g].astype(str) for g in GROUPS if g in m.columns})
        if len(matured_groups.columns):
            report["fairness_matured"] = _records(
                fairness_frame(
                    y,
                    m["score"].to_numpy(dtype=float),
                    m["tier"].astype(str).to_numpy(),
                    matured_groups,
                    min_rows=inputs.min_group_rows,
                    n_boot=n_boot,
                )
            )
    return report


def report_json(report: dict[str, Any]) -> str:
    """The text of ``report.json``: the same figures give the same bytes."""
    return json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True)


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out`` atomically (temporary files, then renames)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (
        ("report.json", report_json(report)),
        ("report.html", render_html(report)),
    ):
        target = out / name
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
        paths.append(target)
    return paths[0], paths[1]


# ---- HTML ------------------------------------------------------------------------------------------------


def _axes(width: float, height: float):
    """A figure of its own (no pyplot state, no display backend) and its axes."""
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "ipcredit", "svg.fonttype": "none"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _tier_plot(report: dict[str, Any]) -> str:
    fig, ax = _axes(5, 2.6)
    counts = [report["tiers"][t] for t in TIERS]
    ax.bar(list(TIERS), counts, color=["#2e7d32", "#9e9d24", "#ef6c00", "#c62828"])
    ax.set_title("tiers")
    ax.set_ylabel("entities")
    return _svg(fig)


def _psi_plot(report: dict[str, Any]) -> str:
    drift = pd.DataFrame(report["drift"]).sort_values("psi", ascending=True).tail(20)
    fig, ax = _axes(6, 0.25 * len(drift) + 1)
    colours = ["#c62828" if f else "#607d8b" for f in drift["flagged"]]
    ax.barh(drift["feature"], drift["psi"], color=colours)
    for x in (0.1, 0.25):
        ax.axvline(x, color="#999", linestyle="--", linewidth=0.8)
    ax.set_title("PSI against the training reference (red: flagged)")
    return _svg(fig)


def _migration_plot(report: dict[str, Any]) -> str:
    counts = np.asarray(report["migration"]["counts"], dtype=float)
    fig, ax = _axes(3.6, 3.2)
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(4), TIERS)
    ax.set_yticks(range(4), TIERS)
    ax.set_xlabel("this month")
    ax.set_ylabel("previous run")
    for i in range(4):
        for j in range(4):
            ax.text(j, i, f"{int(counts[i, j]):,}", ha="center", va="center", fontsize=8)
    ax.set_title("tier migration")
    return _svg(fig)


def _rates_plot(report: dict[str, Any]) -> str:
    rates = pd.DataFrame(report["violation_rates"])
    fig, ax = _axes(5, 2.8)
    x = np.arange(len(rates))
    ax.errorbar(
        x,
        rates["rate"],
        yerr=[rates["rate"] - rates["low"], rates["high"] - rates["rate"]],
        fmt="o",
        label="random draws (95 %)",
    )
    ax.plot(x, rates["predicted_rate"], "s", label="model's expected rate")
    ax.set_xticks(x, rates["tier"])
    ax.set_title("violation rate per tier")
    ax.legend(fontsize=7)
    return _svg(fig)


def _table(records: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not records:
        return "<p>—</p>"
    columns = columns or list(records[0])
    head = "".join(f"<th scope='col'>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>" for r in records
    )
    # Wide tables (fairness) scroll in their own box, which the keyboard can reach, instead of the page.
    return (
        "<div class='scroll' tabindex='0' role='region' aria-label='表格 · table'>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _provincial(summary: dict[str, Any]) -> list[str]:
    """Tiers by region, the month's decisions (objections and the ledger) and each plan's progress."""
    flat = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
    parts = [_table([flat])]
    for key, title in (
        ("objections_decided_this_month", "本月异议决定 · objections decided this month"),
        ("ledger_decisions_this_month", "本月台账决定（修复、更正、移出、检查结果）· ledger decisions this month"),
    ):
        if key in summary:
            decided = summary[key]
            parts += [f"<h3>{title}</h3>", _table([decided]) if decided else "<p>无 · none</p>"]
    if "tiers_by_region" in summary:
        parts += ["<h3>分地区分级 · tiers by region</h3>", _table(summary["tiers_by_region"])]
    if "plans" in summary:
        parts += [
            "<h3>抽查计划进度 · inspection plan progress</h3>",
            _table(summary["plans"]) if summary["plans"] else "<p>本年无计划 · no plan this year</p>",
        ]
    return parts


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (inline SVG, no script, no external asset)."""
    drift_rows = [
        {**r, "label": FEATURES[r["feature"]].label_zh if r["feature"] in FEATURES else "分数"} for r in report["drift"]
    ]
    sections = [
        f"<h1>月度监测报告 · monthly monitoring report — {report['as_of']}</h1>",
        f"<p>run {html.escape(str(report['run_id']))} · model {html.escape(report['model_version'])} · policy "
        f"{html.escape(report['policy_version'])} · {report['entities']:,} entities</p>",
        *(
            f"<p><strong>{title}</strong>: {html.escape(report[key])}</p>"
            for key, title in (("model_caveat", "模型说明 · model caveat"), ("data_caveat", "数据说明 · data caveat"))
            if report.get(key)
        ),
        "<h2>分级分布 · tiers</h2>",
        _tier_plot(report),
        _table([{"tier": t, "label": TIER_LABELS[t], "entities": report["tiers"][t]} for t in TIERS]),
        "<h2>漂移 · drift</h2>",
        f"<p>flagged: {html.escape(', '.join(report['drift_flagged']) or 'none')}</p>",
        _psi_plot(report),
        _table(
            drift_rows,
            ["feature", "label", "psi", "band", "noise_floor", "flagged", "seasonal", "missing_ref", "missing_now"],
        ),
        "<h2>规则触发率 · rule firing rates</h2>",
        _table(report["rule_rates"]),
    ]
    if "migration" in report:
        sections += ["<h2>等级迁移 · tier migration</h2>", _migration_plot(report)]
    sections += ["<h2>预期表现 · expected performance (before outcomes)</h2>", _table(report["expected"])]
    if "violation_rates" in report:
        sections += [
            "<h2>随机抽查违法率 · violation rates from random draws</h2>",
            f"<p>targeted inspections excluded: {report['targeted_excluded']}</p>",
            _rates_plot(report),
            _table(report["violation_rates"]),
        ]
    if "matured" in report:
        sections += ["<h2>成熟结果 · estimate vs realised (12 months on)</h2>", _table(report["matured"])]
    sections += ["<h2>公平性 · fairness</h2>", _table(report["fairness"])]
    if report.get("fairness_findings"):
        sections += [
            "<h3>随机抽查发现率（按组）· findings rate among random inspections, by group</h3>",
            _table(report["fairness_findings"]),
        ]
    if report.get("provincial"):
        sections += ["<h2>全省汇总 · provincial summary</h2>", *_provincial(report["provincial"])]
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:1rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0}td,th{border:1px solid #ccc;padding:2px 6px}"
        "svg{max-width:100%;height:auto}.scroll{overflow-x:auto;max-width:100%}"
    )
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>ipcredit report {report['as_of']}</title><style>{style}</style></head><body><main>"
        + "\n".join(sections)
        + "</main></body></html>\n"
    )
