"""Benchmark: what do the relationship features add, out of time, on fresh worlds? (issue 16, item 5)

For each generated demo world (seeds it was never tuned on), the snapshots ``ipcredit train`` would plan
and the same out-of-time split; two models trained by ``models.train.train_model`` with the default
configuration:

- **with**: the whole catalogue, relationship features included;
- **without**: the same snapshots with every relationship feature set to 0 (a constant column: LightGBM
  never splits on it, so this is the model without them, through the very same code).

Reported on the same test rows: AUC of each with the paired difference and its 95 % bootstrap interval
(``models.metrics.Resamples``: entities drawn with replacement, all their rows kept), the expected
calibration error, and the outcome rate per final tier. Then the rows of the relationship features
that are not zero, to show where they act.

    python benchmarks/bench_relations.py [--entities 20000] [--seeds 3] [--boot 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features.build import FEATURE_VERSION  # noqa: E402
from features.dataset import Dataset  # noqa: E402
from features.snapshots import build_snapshots, plan_snapshots  # noqa: E402
from features.sql import related_features  # noqa: E402
from features.synth import generate  # noqa: E402
from models.config import load_config  # noqa: E402
from models.metrics import Resamples, auc_gain, auc_or_nan, expected_calibration_error  # noqa: E402
from models.policy import load_policy  # noqa: E402
from models.train import train_model  # noqa: E402

console = Console(width=160)
RELATED = [f.name for f in related_features()]


def _tiers(model, frame, policy) -> np.ndarray:
    return model.scorer.score(frame, policy)["tier"].to_numpy()


def compare(seed: int, entities: int, *, boot: int, quarters: int) -> dict:
    world = generate(entities, seed)
    ds = Dataset.from_frames(world.entities, world.events, world.lists, relations=world.relations, threads=2)
    t0 = time.perf_counter()
    dates = plan_snapshots(ds, count=quarters).dates
    snapshots = build_snapshots(ds, dates)
    config, policy = load_config(None), load_policy(ROOT / "models" / "policy.toml")
    without = snapshots.copy()
    without[RELATED] = 0
    models = {
        "with": train_model(snapshots, policy, config=config, feature_version=FEATURE_VERSION),
        "without": train_model(without, policy, config=config, feature_version=FEATURE_VERSION),
    }
    frames = {"with": models["with"].split.folds(snapshots)["test"], "without": None}
    frames["without"] = models["without"].split.folds(without)["test"]
    y = frames["with"]["outcome"].to_numpy()
    p = {k: models[k].scorer.predict_proba(frames[k]) for k in models}
    resamples = Resamples(frames["with"]["entity_id"].to_numpy(), boot, seed=seed)
    low, high = resamples.interval(auc_gain, y, p["with"], p["without"])
    row = {
        "seed": seed,
        "entities": entities,
        "links": len(world.relations),
        "test_rows": len(y),
        "outcome_rate": float(y.mean()),
        "auc_with": auc_or_nan(y, p["with"]),
        "auc_without": auc_or_nan(y, p["without"]),
        "gain": auc_gain(y, p["with"], p["without"]),
        "gain_low": low,
        "gain_high": high,
        "ece_with": expected_calibration_error(y, p["with"]),
        "ece_without": expected_calibration_error(y, p["without"]),
        "linked_test_rows": float((frames["with"][RELATED] != 0).any(axis=1).mean()),
    }
    # The same comparison on the test rows of entities with a link (where the features can act).
    linked = (frames["with"][RELATED] != 0).any(axis=1).to_numpy()
    on_linked = Resamples(frames["with"]["entity_id"].to_numpy()[linked], boot, seed=seed)
    row["gain_linked"] = auc_gain(y[linked], p["with"][linked], p["without"][linked])
    row["gain_linked_low"], row["gain_linked_high"] = on_linked.interval(
        auc_gain, y[linked], p["with"][linked], p["without"][linked]
    )
    for k in models:
        tiers = _tiers(models[k], frames[k], policy)
        row[f"tier_rates_{k}"] = {t: float(y[tiers == t].mean()) if (tiers == t).any() else None for t in "ABCD"}
    row["seconds"] = time.perf_counter() - t0
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--quarters", type=int, default=16, help="as ipcredit train --quarters")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    rows = []
    for i in range(args.seeds):
        seed = 201 + i
        console.print(f"demo world of {args.entities:,} entities, seed {seed} …")
        rows.append(compare(seed, args.entities, boot=args.boot, quarters=args.quarters))
        console.print(rows[-1])
    table = Table(title="out-of-time test AUC with and without the relationship features (fresh demo worlds)")
    columns = ("seed", "links", "test rows", "linked", "with", "without", "gain [95 % CI]", "on linked rows")
    for column in (*columns, "ECE w/wo", "s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            str(r["seed"]),
            f"{r['links']:,}",
            f"{r['test_rows']:,}",
            f"{r['linked_test_rows']:.1%}",
            f"{r['auc_with']:.4f}",
            f"{r['auc_without']:.4f}",
            f"{r['gain']:+.4f} [{r['gain_low']:+.4f}, {r['gain_high']:+.4f}]",
            f"{r['gain_linked']:+.4f} [{r['gain_linked_low']:+.4f}, {r['gain_linked_high']:+.4f}]",
            f"{r['ece_with']:.4f} / {r['ece_without']:.4f}",
            f"{r['seconds']:.0f}",
        )
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
