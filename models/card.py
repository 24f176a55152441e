"""The model card: a Markdown page a reviewer can read without running anything.

Rendered from a trained model and its evaluation only (the run's numbers, never hand-typed), logged with
the run and shown by the notebook.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from features.catalogue import CATALOGUE
from models.evaluate import Evaluation
from models.policy import Policy
from models.train import TrainedModel, search_summary


def markdown_table(frame: pd.DataFrame, *, floatfmt: str = ".4f") -> str:
    """A GitHub Markdown table of ``frame`` (no external dependency)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else format(value, floatfmt)
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def model_card(
    model: TrainedModel,
    evaluation: Evaluation,
    policy: Policy,
    *,
    run_id: str | None = None,
    model_version: str | None = None,
) -> str:
    """The card of one training run: ``model`` as trained, measured by ``evaluation``."""
    ev = evaluation
    split = model.split.describe()
    data = model.data
    metrics = ev.metrics.set_index("scorer")
    ours = metrics.loc["model"]
    industry = ev.fairness[ev.fairness["group"] == "industry"]
    region = ev.fairness[ev.fairness["group"] == "region"]
    monotone = sum(1 for f in CATALOGUE if f.direction)
    lines = [
        f"# Model card — ipcredit {('version ' + model_version) if model_version else '(unregistered)'}",
        "",
        f"MLflow run `{run_id or '-'}` · features `{model.scorer.feature_version}` · policy "
        f"`{policy.version_tag}` · LightGBM, {model.trees_text()}"
        f"{_search_text(model)} · calibration {model.scorer.calibrator!r}",
        "",
        "## Intended use",
        "The calibrated probability that a market entity gets at least one confirmed adverse IP record "
        "(CONTRACT section 2) in the 12 months after the as-of date. It proposes a risk tier (A-D) that the "
        'qualitative rules of the policy may raise or cap; the final tier allocates "双随机" inspections. '
        "It is an internal reference for supervision, not a public credit rating, and it never decides a "
        "list entry or a penalty.",
        "",
        "## Data and period",
        f"- Source `{data.get('source', '-')}`, fingerprint `{data.get('fingerprint', '-')}`.",
        f"- Quarterly point-in-time snapshots. Train {split['train']}; purged {split['purged']} (outcome windows "
        f"overlapping the held-out period); validation {split['valid']} (early stopping, calibration); "
        f"test {split['test']} (evaluation only).",
        f"- Rows: {', '.join(f'{k} {v:,}' for k, v in data.get('rows', {}).items())}; outcome rate: "
        f"{', '.join(f'{k} {v:.2%}' for k, v in data.get('outcome_rate', {}).items())}.",
        f"- {len(CATALOGUE)} catalogue features, {monotone} with a monotone constraint (one more unrepaired "
        "violation never lowers the score). Region is not a feature.",
        "",
        "## Out-of-time performance (test fold)",
        markdown_table(ev.metrics.drop(columns=["rows"])),
        "",
        f"The model's AUC is {ours['auc']:.4f} against {_baseline_auc(ev, model, 'binned_scorecard')} for the "
        f"optbinning scorecard and {_baseline_auc(ev, model, 'rules_points_card')} for the points card built "
        f"from the rules alone; its ECE is {ours['ece']:.4f} (equal-mass bins"
        + (
            f"; a perfectly calibrated model reaches up to {ev.ece_chance:.4f} on these rows by chance)."
            if ev.ece_chance > 0
            else ")."
        ),
        "",
        "95 % bootstrap intervals (resampling entities, all their rows together; the same resamples for every "
        "scorer; `auc_lead` is the model's AUC minus the scorer's, its interval paired):",
        markdown_table(ev.intervals) if len(ev.intervals) else "(no resamples configured)",
        "",
        "## Tiers (final, after the rules)",
        markdown_table(ev.tiers),
        "",
        "Model tier against final tier (rows: model, columns: final):",
        "",
        markdown_table(ev.crosstab.reset_index()),
        "",
        "## Rules and model",
        markdown_table(ev.agreement),
        "",
        f"Of the rows a risk-raising rule flags, the model alone puts "
        f"{ev.agreement_summary['rule_flagged_model_CD_share']:.1%} in C or D. Among rows no rule fires on, the "
        f"model puts {ev.agreement_summary['rule_free_model_D_rows']:,} in D; their outcome rate is "
        f"{ev.agreement_summary['rule_free_model_D_outcome_rate']:.1%} against "
        f"{ev.agreement_summary['rule_free_outcome_rate']:.1%} for all rule-free rows.",
        "",
        "## Fairness (one standard for all)",
        f"- Industry: AUC from {industry['auc'].min():.3f} to {industry['auc'].max():.3f}; calibration gap "
        f"(mean score - outcome rate) from {industry['calibration_gap'].min():+.3f} to "
        f"{industry['calibration_gap'].max():+.3f}.",
    ]
    if len(region):
        lines.append(
            f"- Region: AUC from {region['auc'].min():.3f} to {region['auc'].max():.3f}; calibration gap from "
            f"{region['calibration_gap'].min():+.3f} to {region['calibration_gap'].max():+.3f}."
        )
    lines += [
        "",
        markdown_table(ev.fairness[ev.fairness["group"] != "region"]),
        "",
        "## What drives the score (mean |SHAP|, log-odds)",
        markdown_table(ev.importance.head(12)),
        "",
        "## Limitations",
        "- The outcome is a *recorded* violation: entities inspected more often have more chances to be "
        "recorded, and tiers drive inspections. Expect the observed rate of low tiers to understate their true "
        "rate; keep the minimum inspection probability of the policy above zero (不免抽) so the loop stays open.",
        "- Calibration holds for the period it was fitted on; base rates drift. Refit quarterly (docs/model.md) "
        "and watch the calibration gap per group.",
        "- Groups below the evaluation's minimum size show no AUC; their rates are noisy.",
        "- Repaired records are ignored by construction (features exclude them), as the rules require.",
        "- On the demo world, all numbers describe synthetic data.",
    ]
    return "\n".join(lines) + "\n"


def _baseline_auc(ev: Evaluation, model: TrainedModel, name: str) -> str:
    """A baseline's test AUC with the model's lead over it and the paired interval of the lead, or why the
    baseline could not be fitted."""
    if name in model.unavailable:
        return f"nothing (unavailable: {model.unavailable[name]})"
    auc = f"{ev.metric(name, 'auc'):.4f}"
    lead = ev.intervals[(ev.intervals["scorer"] == name) & (ev.intervals["metric"] == "auc_lead")]
    if lead.empty or math.isnan(lead["low"].iloc[0]):
        return auc
    row = lead.iloc[0]
    return f"{auc} (lead {row['value']:+.4f}, paired 95 % interval [{row['low']:+.4f}, {row['high']:+.4f}])"


def _search_text(model: TrainedModel) -> str:
    """How the tree size was chosen, when more than one was fitted."""
    return f" (chosen on the validation fold among {search_summary(model.search)})" if len(model.search) > 1 else ""
