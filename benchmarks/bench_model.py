"""Benchmark: training on 100,000 entities (16 quarterly snapshots) and scoring 1,000,000 entities.

Targets (issue 3) on a 2-core machine:
- training, from the dataset to a registered model (snapshots, LightGBM, baselines, evaluation, plots,
  MLflow run), at most 5 minutes;
- scoring 1,000,000 entities with tiers and top-5 reasons, as rows/s and as ratios, in the same run, to
  raw ``Booster.predict`` (at least 0.5) and raw ``pred_contrib`` (at least 0.8) on the same matrix.

Worlds are generated once into bench-data/ (shared with bench_features.py) and reused. ``pred_contrib``
and ``shap.TreeExplainer`` take minutes per million rows, so they run on a sample of the same matrix
(``--contrib-rows``, ``--shap-rows``) and are compared as rows/s; ``--full-contrib`` runs pred_contrib on all.

    python benchmarks/bench_model.py [--train-entities N] [--score-entities N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent / "ipcredit"
console = Console(width=120)


def world(entities: int) -> Path:
    data = ROOT / "bench-data" / f"world-{entities}"
    if not (data / "events.parquet").exists():
        console.print(f"generating {entities:,} entities into {data} (once) …")
        subprocess.run(
            [str(BIN), "demo-data", "--out", str(data), "--entities", str(entities), "--seed", "1"],
            check=True,
            capture_output=True,
        )
    return data


def timed(label: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    seconds = time.perf_counter() - t0
    console.print(f"  {label}: {seconds:.1f} s")
    return value, seconds


def best_of(repeat: int, label: str, fn, *args, **kwargs):
    """``timed`` for a step too quick to time once on a busy machine: the fastest of ``repeat`` runs."""
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn(*args, **kwargs)
        seconds.append(time.perf_counter() - t0)
    console.print(f"  {label}: {min(seconds) * 1000:.1f} ms")
    return value, min(seconds)


def bench_training(entities: int, quarters: int) -> tuple[dict, object]:
    from features.build import FEATURE_VERSION
    from features.snapshots import build_snapshots, plan_snapshots
    from features.validate import load_valid_dataset
    from models import plots, registry
    from models.config import load_config
    from models.evaluate import evaluate_model
    from models.policy import load_policy
    from models.train import train_model

    console.print(f"[bold]training[/bold] on {entities:,} entities, {quarters} quarterly snapshots")
    policy_path = ROOT / "models" / "policy.toml"
    policy = load_policy(policy_path)
    t_total = time.perf_counter()
    ds, t_load = timed("load + validate", load_valid_dataset, world(entities))
    dates = plan_snapshots(ds, count=quarters).dates
    snapshots, t_snap = timed(f"snapshots ({len(dates)} dates)", build_snapshots, ds, dates)
    model, t_fit = timed(
        "train + baselines",
        train_model,
        snapshots,
        policy,
        config=load_config(),
        feature_version=FEATURE_VERSION,
        data={"source": "bench", "fingerprint": ds.fingerprint},
    )
    evaluation, t_evaluate = timed(
        "evaluation", evaluate_model, model, snapshots, policy, groups=ds.entities[["entity_id", "region", "kind"]]
    )
    t_train = t_fit + t_evaluate
    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
        _, t_plots = timed("plots", plots.save_plots, evaluation, Path(tmp) / "plots")
        _, t_log = timed(
            "MLflow run + registration (plots again, model card, pyfunc)",
            registry.log_training,
            model,
            evaluation,
            policy=policy,
            policy_path=policy_path,
            tracking_uri=f"sqlite:///{tmp}/mlflow.db",
            artifact_root=None,
        )
    total = time.perf_counter() - t_total - t_plots  # the plots are drawn again inside log_training
    ev = evaluation
    numbers = {
        "entities": entities,
        "snapshot_rows": len(snapshots),
        "train_rows": model.data["rows"]["train"],
        "trees": model.best_iteration,
        "seconds": {
            "load": t_load,
            "snapshots": t_snap,
            "train_evaluate": t_train,
            "log_register": t_log,
            "total": total,
            **{f"train.{k}": v for k, v in {**model.timings, "evaluate": evaluation.seconds}.items()},
        },
        "metrics": {
            "model_auc": ev.metric("model", "auc"),
            "scorecard_auc": ev.metric("binned_scorecard", "auc"),
            "rules_card_auc": ev.metric("rules_points_card", "auc"),
            "model_ece": ev.metric("model", "ece"),
            "tier_rates": dict(zip(ev.tiers["tier"], ev.tiers["outcome_rate"].round(4), strict=True)),
        },
    }
    return numbers, model.scorer


def bench_scoring(scorer, entities: int, contrib_rows: int, shap_rows: int, full_contrib: bool) -> dict:
    import shap

    from features.build import build_features, model_matrix
    from features.validate import load_valid_dataset
    from models.policy import load_policy
    from models.scorer import Scorer
    from models.treeshap import PatternTreeSHAP, numeric_matrix

    console.print(f"[bold]scoring[/bold] {entities:,} entities")
    policy = load_policy(ROOT / "models" / "policy.toml")
    ds = load_valid_dataset(world(entities))
    features, t_features = timed("features (not part of the ratios)", build_features, ds, date(2025, 12, 31))
    n = len(features)
    matrix, t_matrix = timed("model matrix", model_matrix, features)
    booster = scorer.booster
    _, t_predict = timed("raw Booster.predict (all rows)", booster.predict, matrix, raw_score=True)
    contrib_n = n if full_contrib else min(contrib_rows, n)
    _, t_contrib = timed(
        f"raw pred_contrib ({contrib_n:,} rows)", booster.predict, matrix.iloc[:contrib_n], pred_contrib=True
    )
    shap_n = min(shap_rows, n)
    explainer = shap.TreeExplainer(booster)
    _, t_shap = timed(f"shap.TreeExplainer ({shap_n:,} rows)", explainer.shap_values, matrix.iloc[:shap_n])
    x = numeric_matrix(matrix, booster)
    pattern = PatternTreeSHAP(booster)
    _, t_pattern_cold = timed("pattern TreeSHAP, cold cache (all rows)", pattern.contributions, x)
    _, t_pattern_warm = timed("pattern TreeSHAP, warm cache (all rows)", pattern.contributions, x)

    fresh = Scorer(
        booster=booster,
        calibrator=scorer.calibrator,
        feature_names=scorer.feature_names,
        feature_version=scorer.feature_version,
        model_version="bench",
    )

    def score_all() -> pd.DataFrame:
        parts = [
            fresh.score(features.iloc[i : i + 100_000], policy, top_k=5, details=False) for i in range(0, n, 100_000)
        ]
        return pd.concat(parts, ignore_index=True)

    scored, t_score = timed("Scorer.score: tiers + top-5 reasons, 100k chunks (all rows)", score_all)
    _, t_score_again = timed("Scorer.score again (pattern cache warm)", score_all)
    # Where one 100k chunk's time goes once the pattern tables are warm (rows/s of each step).
    from features.columns import feature_columns
    from models.reasons import reasons_json

    chunk = features.iloc[: min(100_000, n)]
    columns, t_cols = timed("  breakdown: feature columns (100k)", feature_columns, chunk)
    x, t_numeric = timed("  breakdown: numeric matrix", fresh.numeric, columns)
    (contrib, _), t_shap = timed("  breakdown: exact TreeSHAP (warm)", fresh._contributions, x)
    _, t_reasons = timed("  breakdown: top-5 reasons JSON", reasons_json, contrib, columns, 5, fresh._reason_cache)
    score = fresh.calibrator.transform(contrib.sum(axis=1))
    _, t_policy = best_of(5, "  breakdown: policy (tiers + rules), best of 5", policy.tiering, score, columns)
    cols, t_columns = timed("  breakdown: score_columns (all steps)", fresh.score_columns, chunk, policy, details=False)
    _, t_frame = timed("  breakdown: DataFrame of the result", pd.DataFrame, cols)
    breakdown = {
        "feature_columns": t_cols,
        "numeric": t_numeric,
        "treeshap_warm": t_shap,
        "reasons": t_reasons,
        "policy": t_policy,
        "score_columns": t_columns,
        "dataframe": t_frame,
        "rows": len(chunk),
    }
    detail_n = min(100_000, n)
    _, t_details = timed(
        f"Scorer.score with full explanations for the store ({detail_n:,} rows)",
        fresh.score,
        features.iloc[:detail_n],
        policy,
        top_k=5,
        details=True,
    )
    rate = {
        "predict": n / t_predict,
        "pred_contrib": contrib_n / t_contrib,
        "shap_tree_explainer": shap_n / t_shap,
        "pattern_treeshap_cold": n / t_pattern_cold,
        "pattern_treeshap_warm": n / t_pattern_warm,
        "score": n / t_score,
        "score_warm": n / t_score_again,
        "score_with_details": detail_n / t_details,
    }
    return {
        "entities": n,
        "seconds": {"features": t_features, "matrix": t_matrix, "predict": t_predict, "score": t_score},
        "rows_per_second": rate,
        "ratio_score_to_predict": rate["score"] / rate["predict"],
        "ratio_score_to_pred_contrib": rate["score"] / rate["pred_contrib"],
        "breakdown_seconds_per_chunk": breakdown,
        "tiers": scored["tier"].value_counts().sort_index().to_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-entities", type=int, default=100_000)
    parser.add_argument("--score-entities", type=int, default=1_000_000)
    parser.add_argument("--quarters", type=int, default=16)
    parser.add_argument("--contrib-rows", type=int, default=100_000)
    parser.add_argument("--shap-rows", type=int, default=20_000)
    parser.add_argument("--full-contrib", action="store_true", help="run pred_contrib on every scored row")
    parser.add_argument("--quick", action="store_true", help="10k to train, 100k to score (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.train_entities, args.score_entities = 10_000, 100_000
    os.environ.setdefault("MPLBACKEND", "Agg")
    training, scorer = bench_training(args.train_entities, args.quarters)
    scoring = bench_scoring(scorer, args.score_entities, args.contrib_rows, args.shap_rows, args.full_contrib)

    table = Table(title=f"bench_model ({os.cpu_count()} cores)", title_justify="left")
    for column in ("measure", "value", "target", "ok"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    train_s = training["seconds"]["total"]
    r = scoring["rows_per_second"]
    rows = [
        (
            f"training, {training['entities']:,} entities × {args.quarters} snapshots",
            f"{train_s:.0f} s",
            "≤ 300 s",
            train_s <= 300,
        ),
        (
            "  snapshots / train+evaluate / MLflow",
            f"{training['seconds']['snapshots']:.0f} / "
            f"{training['seconds']['train_evaluate']:.0f} / {training['seconds']['log_register']:.0f} s",
            "",
            None,
        ),
        (
            "  test AUC model / scorecard / rules card",
            f"{training['metrics']['model_auc']:.4f} / "
            f"{training['metrics']['scorecard_auc']:.4f} / {training['metrics']['rules_card_auc']:.4f}",
            "model best",
            training["metrics"]["model_auc"]
            > max(training["metrics"]["scorecard_auc"], training["metrics"]["rules_card_auc"]),
        ),
        ("  test ECE", f"{training['metrics']['model_ece']:.4f}", "≤ 0.02", training["metrics"]["model_ece"] <= 0.02),
        (f"score {scoring['entities']:,} entities (tiers + top-5 reasons)", f"{r['score']:,.0f} rows/s", "", None),
        ("  raw Booster.predict", f"{r['predict']:,.0f} rows/s", "", None),
        ("  raw pred_contrib", f"{r['pred_contrib']:,.0f} rows/s", "", None),
        ("  shap.TreeExplainer", f"{r['shap_tree_explainer']:,.0f} rows/s", "", None),
        (
            "  pattern TreeSHAP cold / warm",
            f"{r['pattern_treeshap_cold']:,.0f} / {r['pattern_treeshap_warm']:,.0f} rows/s",
            "",
            None,
        ),
        ("  score with full explanations (--store)", f"{r['score_with_details']:,.0f} rows/s", "", None),
        (
            "  one 100k chunk: TreeSHAP / reasons / policy / frame",
            " / ".join(
                f"{scoring['breakdown_seconds_per_chunk'][k]:.3f}"
                for k in ("treeshap_warm", "reasons", "policy", "dataframe")
            )
            + " s",
            "",
            None,
        ),
        (
            "ratio score / raw predict",
            f"{scoring['ratio_score_to_predict']:.2f}",
            "≥ 0.5",
            scoring["ratio_score_to_predict"] >= 0.5,
        ),
        (
            "ratio score / raw pred_contrib",
            f"{scoring['ratio_score_to_pred_contrib']:.2f}",
            "≥ 0.8",
            scoring["ratio_score_to_pred_contrib"] >= 0.8,
        ),
    ]
    for label, value, target, ok in rows:
        table.add_row(label, value, target, "" if ok is None else ("yes" if ok else "NO"))
    console.print(table)
    out = ROOT / "bench-data" / "bench_model.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"training": training, "scoring": scoring}, indent=2, default=float))
    console.print(f"numbers written to {out}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
