"""Benchmark: is the model ahead of a plain model on fresh worlds, out of time? (issue 14, item 6)

For each generated world (the dense demo profile, the sparse profile and the credit-platform profile, several
seeds it was never tuned on):
the snapshots ``ipcredit train`` would plan, the same out-of-time split, and on the same test rows

- **ipcredit**: the monotone LightGBM on the catalogue (``models.train.train_model``, default config), on
  the dataset as delivered: the world's ``relations`` table included (``--no-relations``: without it);
- **plain**: an unconstrained LightGBM with LightGBM's default parameters on simple counts built beside
  it (per event type: records known at D ever and in the last 12 months, plus age, kind and industry),
  early-stopped on the same validation fold;
- **oracle** (sparse and credit profiles, whose hidden trait is known): the trait ``z`` of the as-of year;
- the **baselines** ``ipcredit train`` fits beside the model (the optbinning scorecard, the rules card).

The AUC difference ipcredit - plain (and ipcredit - each baseline) comes with a paired bootstrap interval
over test entities. ``--record anchorage-inspections`` adds the real public record (``features.records``).

    python benchmarks/bench_gain.py [--dense-entities N] [--sparse-entities N] [--credit-entities N]
                                    [--profiles dense,sparse,credit] [--seeds 3] [--first-seed 101]
                                    [--boot 200] [--record anchorage-inspections] [--only-record]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features import pointintime  # noqa: E402
from features.build import FEATURE_VERSION  # noqa: E402
from features.dataset import Dataset  # noqa: E402
from features.pointintime import EVENT_COUNTS, sql_date  # noqa: E402
from features.schema import EVENT_CODES  # noqa: E402
from features.snapshots import MAX_ROWS, MAX_SNAPSHOTS, build_snapshots, plan_snapshots  # noqa: E402
from features.synth import generate  # noqa: E402
from features.synth_credit import generate_credit  # noqa: E402
from features.synth_sparse import generate_sparse  # noqa: E402
from models.config import load_config  # noqa: E402
from models.policy import load_policy  # noqa: E402
from models.train import train_model  # noqa: E402

console = Console(width=140)


def simple_counts(ds: Dataset, as_of: date) -> pd.DataFrame:
    """Per entity registered by ``as_of``: records of each event type known at D, ever and in 12 months."""
    d = sql_date(as_of)
    columns = ", ".join(
        f"count(*) FILTER (WHERE ev.event_type = '{c}') AS n_{c}, "
        f"count(*) FILTER (WHERE ev.event_type = '{c}' AND ev.occurred_on > {d} - INTERVAL 12 MONTH) AS n12_{c}"
        for c in EVENT_CODES
    )
    counts = ds.con.execute(
        f"""
        SELECT e.entity_id, date_diff('day', e.registered_on, {d}) / 365.25 AS age,
               (e.kind = 'agency')::INT AS agency, e.industry, {columns}
        FROM entities e LEFT JOIN events ev
          ON ev.entity_id = e.entity_id AND {pointintime.sql(EVENT_COUNTS, as_of, "ev")}
        WHERE e.registered_on <= {d}
        GROUP BY ALL ORDER BY e.entity_id
        """
    ).df()
    counts["industry"] = counts["industry"].astype("category")
    return counts


def paired_bootstrap(y: np.ndarray, a: np.ndarray, b: np.ndarray, groups: np.ndarray, n: int, seed: int = 0):
    """AUC(a) - AUC(b) and a 95 % interval, resampling entities (an entity's rows stay together)."""
    rng = np.random.default_rng(seed)
    unique, inverse = np.unique(groups, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == g) for g in range(len(unique))]
    diffs = []
    for _ in range(n):
        pick = np.concatenate([rows_of[g] for g in rng.integers(0, len(unique), len(unique))])
        if len(np.unique(y[pick])) < 2:
            continue
        diffs.append(roc_auc_score(y[pick], a[pick]) - roc_auc_score(y[pick], b[pick]))
    point = roc_auc_score(y, a) - roc_auc_score(y, b)
    if not diffs:  # --boot 0, or no resample held both outcomes: the point estimate alone
        return point, float("nan"), float("nan")
    low, high = np.quantile(diffs, [0.025, 0.975])
    return point, low, high


def compare(
    name: str, world, *, boot: int, oracle: bool, quarters: int, config_path: Path | None, relations: bool = True
) -> dict:
    # ipcredit reads the dataset as delivered, the optional relations table included (the plain model's
    # simple counts are the entity's own, as in the issue)
    links = getattr(world, "relations", None) if relations else None
    ds = Dataset.from_frames(world.entities, world.events, world.lists, relations=links, threads=2)
    t0 = time.perf_counter()
    dates = plan_snapshots(ds, count=quarters, max_rows=MAX_ROWS).dates
    snapshots = build_snapshots(ds, dates)
    config, policy = load_config(config_path), load_policy(ROOT / "models" / "policy.toml")
    model = train_model(snapshots, policy, config=config, feature_version=FEATURE_VERSION)
    folds = model.split.folds(snapshots)
    test = folds["test"]
    y = test["outcome"].to_numpy()
    ours = model.scorer.predict_proba(test)

    plain_frames = {}
    for fold in ("train", "valid", "test"):
        parts = []
        for d in getattr(model.split, fold):
            counts = simple_counts(ds, d).assign(as_of=d)
            parts.append(counts)
        frame = pd.concat(parts, ignore_index=True)
        frame["industry"] = pd.Categorical(frame["industry"].astype(str))
        rows = folds[fold][["entity_id", "as_of", "outcome"]].assign(as_of=lambda f: pd.to_datetime(f["as_of"]).dt.date)
        plain_frames[fold] = rows.merge(frame, on=["entity_id", "as_of"], how="left", validate="one_to_one")
    columns = [c for c in plain_frames["train"].columns if c not in ("entity_id", "as_of", "outcome")]
    categories = sorted(set(plain_frames["train"]["industry"].astype(str)))
    for fold in plain_frames:
        plain_frames[fold]["industry"] = pd.Categorical(
            plain_frames[fold]["industry"].astype(str), categories=categories
        )
    train_set = lgb.Dataset(plain_frames["train"][columns], plain_frames["train"]["outcome"])
    valid_set = lgb.Dataset(plain_frames["valid"][columns], plain_frames["valid"]["outcome"], reference=train_set)
    plain = lgb.train(
        {"objective": "binary", "verbosity": -1, "seed": 1, "num_threads": 2},
        train_set,
        num_boost_round=1000,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    theirs = plain.predict(plain_frames["test"][columns], num_iteration=plain.best_iteration)
    gain, low, high = paired_bootstrap(y, ours, theirs, test["entity_id"].to_numpy(), boot)
    row = {
        "world": name,
        "test_rows": len(test),
        "train_dates": len(model.split.train),  # the design the validation fold chose (search.recent_quarters)
        "outcome_rate": float(y.mean()),
        "ipcredit_auc": roc_auc_score(y, ours),
        "plain_auc": roc_auc_score(y, theirs),
        "gain": gain,
        "gain_low": low,
        "gain_high": high,
        "seconds": time.perf_counter() - t0,
    }
    for baseline_name, baseline in model.baselines.items():
        vs, vs_low, vs_high = paired_bootstrap(
            y, ours, baseline.predict_proba(test), test["entity_id"].to_numpy(), boot
        )
        row[f"vs_{baseline_name}"] = [vs, vs_low, vs_high]
    if oracle and getattr(world, "truth", None) is not None:
        truth = world.truth.set_index(["entity_id", "year"])["z"]
        years = pd.to_datetime(test["as_of"]).dt.year.to_numpy()
        z = truth.reindex(list(zip(test["entity_id"], years, strict=True))).to_numpy()
        row["oracle_auc"] = roc_auc_score(y, z)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense-entities", type=int, default=20_000)
    parser.add_argument("--sparse-entities", type=int, default=8_000)
    parser.add_argument("--credit-entities", type=int, default=20_000)
    parser.add_argument("--profiles", default="dense,sparse,credit", help="comma-separated: dense, sparse, credit")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=101, help="worlds are seeded first-seed, first-seed + 1, ...")
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--quarters", type=int, default=MAX_SNAPSHOTS, help="as ipcredit train --quarters")
    parser.add_argument("--config", type=Path, help="a training config laid over models/train.toml")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--no-relations", action="store_true", help="train ipcredit without the relations table")
    parser.add_argument("--record", choices=["anchorage-inspections"], help="also the real public record")
    parser.add_argument("--only-record", action="store_true", help="the record alone, no generated worlds")
    args = parser.parse_args()
    profiles = {
        "dense": (generate, args.dense_entities, False),
        "sparse": (generate_sparse, args.sparse_entities, True),
        "credit": (generate_credit, args.credit_entities, True),
    }
    chosen = [p.strip() for p in args.profiles.split(",") if p.strip()]
    if unknown := sorted(set(chosen) - set(profiles)):
        parser.error(f"--profiles: unknown {', '.join(unknown)}; choose from {', '.join(profiles)}")
    rows = []
    options = {
        "boot": args.boot,
        "quarters": args.quarters,
        "config_path": args.config,
        "relations": not args.no_relations,
    }
    if args.record:
        from features.records import anchorage_inspections, read_anchorage_source

        console.print(f"real record {args.record} …")
        rows.append(compare(args.record, anchorage_inspections(read_anchorage_source()), oracle=False, **options))
    for i in range(0 if args.only_record else args.seeds):
        seed = args.first_seed + i
        for profile in chosen:
            make, entities, oracle = profiles[profile]
            console.print(f"{profile} world, seed {seed} …")
            rows.append(compare(f"{profile}/{seed}", make(entities, seed), oracle=oracle, **options))
    table = Table(title="out-of-time test AUC on fresh worlds: ipcredit vs plain LightGBM on simple counts")
    columns = ("world", "train dates", "test rows", "outcome", "ipcredit", "plain", "gain [95 % CI]", "oracle", "s")
    for column in columns:
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["world"],
            str(r["train_dates"]),
            f"{r['test_rows']:,}",
            f"{r['outcome_rate']:.1%}",
            f"{r['ipcredit_auc']:.4f}",
            f"{r['plain_auc']:.4f}",
            f"{r['gain']:+.4f} [{r['gain_low']:+.4f}, {r['gain_high']:+.4f}]",
            f"{r['oracle_auc']:.4f}" if "oracle_auc" in r else "—",
            f"{r['seconds']:.0f}",
        )
    console.print(table)
    versus = Table(title="ipcredit vs the baselines ipcredit train fits, on the same test rows (AUC gain [95 % CI])")
    for column in ("world", "vs optbinning scorecard", "vs rules card"):
        versus.add_column(column, justify="right")
    for r in rows:
        cells = [r.get(f"vs_{name}") for name in ("binned_scorecard", "rules_points_card")]
        versus.add_row(r["world"], *(f"{c[0]:+.4f} [{c[1]:+.4f}, {c[2]:+.4f}]" if c else "unavailable" for c in cells))
    console.print(versus)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
