"""Benchmark: how much ranking power does a world's record hold at all? (issue 14, item 6)

The oracle of ``bench_gain.py`` knows the hidden trait ``z``; no record does. This measures what a model
can reach from the record itself: on one large world (default: sparse, 40,000 entities, five times
``bench_gain``'s), an unconstrained LightGBM on the **whole yearly history** of every entity — per event
type, the quantity recorded in each year before D (0–1, 1–2, …, 14 years and more), nothing summarised
away — beside the catalogue's monotone model and the plain model on simple counts, on the same
out-of-time split and test rows, with the oracle for scale where the world has one (sparse). The lead of
the best of these over the plain model is what feature engineering on that record can hope to gain.

``--reference-entities N`` adds the learning curve's far end: the whole-history model trained on another
world of the same profile with N entities (seed 999; same dates and split), ranking this world's test rows.
Where it ranks them better than any model trained on this world, the record holds more than this world's
entities are enough to learn: the gap is estimation, not information.

    python benchmarks/bench_ceiling.py [--profile sparse|dense] [--entities N] [--seed 101]
                                       [--reference-entities N]
"""

from __future__ import annotations

import argparse
import sys
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_gain import simple_counts  # noqa: E402

from features.catalogue import CATEGORIES, FEATURE_NAMES, monotone_constraints  # noqa: E402
from features.dataset import Dataset  # noqa: E402
from features.snapshots import build_outcomes, build_snapshots, plan_snapshots  # noqa: E402
from features.synth import generate  # noqa: E402
from features.synth_sparse import generate_sparse  # noqa: E402
from models.config import load_config  # noqa: E402
from models.train import out_of_time_split  # noqa: E402

console = Console(width=120)
LAST_LAG_YEARS = 14  # lags of 14 years and more share one column


def yearly_history(events: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Per entity: the quantity of each event type recorded by ``as_of``, by whole years before it."""
    d = pd.Timestamp(as_of)
    known = events[events["recorded"] <= d]
    lag = ((d - known["occurred"]).dt.days // 365).clip(upper=LAST_LAG_YEARS)
    key = known["event_type"] + "_y" + lag.astype(str)
    table = known.assign(key=key).pivot_table(index="entity_id", columns="key", values="quantity", aggfunc="sum")
    return table.fillna(0).reset_index().assign(as_of=as_of)


def matrix(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = frame[columns].copy()
    for c in columns:
        if c.endswith("industry"):
            out[c] = pd.Categorical(out[c].astype(object).where(out[c].notna()), categories=CATEGORIES["industry"])
        else:
            out[c] = pd.to_numeric(out[c].astype(float), errors="coerce")
    return out


def recorded_events(world) -> pd.DataFrame:
    return world.events.assign(
        occurred=pd.to_datetime(world.events["occurred_on"]), recorded=pd.to_datetime(world.events["recorded_on"])
    )


def calendar_history(events: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Per entity: the quantity of each event type recorded by ``as_of``, by calendar year (0: D's own year up
    to D, 1: the year before, …)."""
    d = pd.Timestamp(as_of)
    known = events[events["recorded"] <= d]
    back = (d.year - known["occurred"].dt.year).clip(upper=LAST_LAG_YEARS)
    key = known["event_type"] + "_cy" + back.astype(str)
    table = known.assign(key=key).pivot_table(index="entity_id", columns="key", values="quantity", aggfunc="sum")
    return table.fillna(0).reset_index().assign(as_of=as_of)


def calendar_rows(world, dates: list[date]) -> pd.DataFrame:
    """The calendar-year history model's rows of a world without the catalogue: lags, age, outcome."""
    ds = Dataset.from_frames(world.entities, world.events, world.lists, threads=2)
    events = recorded_events(world)
    registered = world.entities.set_index("entity_id")["registered_on"].map(pd.Timestamp)
    frames = []
    for d in dates:
        rows = build_outcomes(ds, d).assign(as_of=d)
        rows = rows.merge(calendar_history(events, d), on=["entity_id", "as_of"], how="left")
        frames.append(rows.assign(age_years=(pd.Timestamp(d) - rows["entity_id"].map(registered)).dt.days / 365.25))
    return pd.concat(frames, ignore_index=True)


def fit_auc(folds: dict[str, pd.DataFrame], columns: list[str], params: dict, monotone: bool) -> float:
    if monotone:  # the catalogue model: its features in catalogue order, its directions
        params = params | {"monotone_constraints": monotone_constraints()}
    x = {name: matrix(frame, columns) for name, frame in folds.items()}
    train = lgb.Dataset(x["train"], folds["train"]["outcome"])
    valid = lgb.Dataset(x["valid"], folds["valid"]["outcome"], reference=train)
    booster = lgb.train(params, train, 2000, valid_sets=[valid], callbacks=[lgb.early_stopping(50, verbose=False)])
    return roc_auc_score(folds["test"]["outcome"], booster.predict(x["test"], num_iteration=booster.best_iteration))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["sparse", "dense"], default="sparse")
    parser.add_argument("--entities", type=int, help="default 40,000 (sparse) or 60,000 (dense)")
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--reference-entities", type=int, default=0, help="see the module docstring (0: none)")
    args = parser.parse_args()
    entities = args.entities or (40_000 if args.profile == "sparse" else 60_000)
    world = (generate_sparse if args.profile == "sparse" else generate)(entities, args.seed)
    ds = Dataset.from_frames(world.entities, world.events, world.lists, threads=2)
    dates = plan_snapshots(ds).dates
    snapshots = build_snapshots(ds, dates)
    snapshots["as_of"] = pd.to_datetime(snapshots["as_of"]).dt.date
    events = recorded_events(world)
    history = pd.concat([yearly_history(events, d) for d in dates], ignore_index=True)
    counts = pd.concat([simple_counts(ds, d).assign(as_of=d) for d in dates], ignore_index=True)
    counts = counts.add_prefix("plain_").rename(columns={"plain_entity_id": "entity_id", "plain_as_of": "as_of"})
    frame = snapshots.merge(history, on=["entity_id", "as_of"], how="left").merge(
        counts, on=["entity_id", "as_of"], how="left", validate="one_to_one"
    )
    lags = [c for c in history.columns if c not in ("entity_id", "as_of")]
    frame[lags] = frame[lags].fillna(0)
    truth = getattr(world, "truth", None)
    if truth is not None:
        frame["year"] = pd.to_datetime(frame["as_of"]).dt.year
        frame = frame.merge(truth, on=["entity_id", "year"], how="left")
    config = load_config(None)
    folds = out_of_time_split(dates, config).folds(frame)
    ours = config.lightgbm_params() | {"verbosity": -1}
    plain = {"objective": "binary", "verbosity": -1, "seed": 1, "num_threads": 2}
    rows = {
        "plain LightGBM on simple counts": fit_auc(folds, [c for c in frame if c.startswith("plain_")], plain, False),
        "ipcredit catalogue, monotone": fit_auc(folds, FEATURE_NAMES, ours, True),
        "whole yearly history, unconstrained": fit_auc(folds, [*lags, "age_years"], ours, False),
        "whole yearly history + catalogue, unconstrained": fit_auc(folds, [*lags, *FEATURE_NAMES], ours, False),
    }
    if args.reference_entities:
        split = out_of_time_split(dates, config)
        other = (generate_sparse if args.profile == "sparse" else generate)(args.reference_entities, 999)
        big = calendar_rows(other, [*split.train, *split.valid])
        test = folds["test"][["entity_id", "as_of", "outcome", "age_years"]].merge(
            pd.concat([calendar_history(events, d) for d in split.test], ignore_index=True),
            on=["entity_id", "as_of"],
            how="left",
        )
        years = sorted({c for c in [*big.columns, *test.columns] if "_cy" in c})
        big, test = (
            f.reindex(columns=[*f.columns, *[c for c in years if c not in f]])
            .fillna({c: 0 for c in years})
            .assign(month=pd.to_datetime(f["as_of"]).dt.month)
            for f in (big, test)
        )
        name = f"history by calendar year and month, trained on {args.reference_entities:,} entities of another world"
        rows[name] = fit_auc({**split.folds(big), "test": test}, [*years, "month", "age_years"], ours, False)
    if truth is not None:
        rows["oracle (the hidden trait z)"] = roc_auc_score(folds["test"]["outcome"], folds["test"]["z"])
    table = Table(
        title=f"{args.profile} world, {entities:,} entities, seed {args.seed}: out-of-time test AUC "
        f"({len(folds['test']):,} rows, outcome rate {folds['test']['outcome'].mean():.1%})"
    )
    for column in ("scorer", "test AUC", "− plain"):
        table.add_column(column, justify="right")
    base = rows["plain LightGBM on simple counts"]
    for name, auc in rows.items():
        table.add_row(name, f"{auc:.4f}", f"{auc - base:+.4f}")
    console.print(table)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
