"""Measurement: how inspection intensity biases the training labels, on the sparse synthetic world whose
truth is known (docs/model.md, "Labels and inspection intensity").

In the sparse world an entity's routine inspection finds a problem with probability
``logistic(FAIL_LOGIT + FAIL_Z * z + FAIL_HISTORY * found_before)`` — its true propensity to be in breach
in a year — but a finding is recorded only when it is inspected, and an entity found in breach last year
is inspected with probability 0.85 instead of 0.55 ("一年发现问题，次年列入计划"). The label ipcredit
trains on (an adverse record in the next 12 months, CONTRACT section 2) is what was *recorded*, so it mixes
how risky an entity is with how closely it was watched. For each year end D this compares, per group,
the recorded label rate with the true breach rate of the next year (the mean of the failure probability
every entity had, inspected or not):

    python benchmarks/label_bias.py [--entities 20000] [--seed 3]
"""

from __future__ import annotations

import argparse
from datetime import date

import numpy as np
import pandas as pd

from features import synth_sparse as sparse
from features.schema import ADVERSE_CODES


def label_bias(world: sparse.SparseWorld, years: range) -> pd.DataFrame:
    """Per year end D and group (found in breach in year D or not): entities, the recorded label rate,
    the true breach rate of year D+1, their ratio, and the share inspected in year D+1."""
    events = world.events.assign(
        occurred_on=pd.to_datetime(world.events["occurred_on"]), recorded_on=pd.to_datetime(world.events["recorded_on"])
    )
    registered = pd.to_datetime(world.entities["registered_on"])
    truth = world.truth.set_index(["entity_id", "year"])["z"]
    failed = events[events["event_type"] == "inspection_failed"]
    adverse = events[events["event_type"].isin(ADVERSE_CODES)]
    inspected = events[events["event_type"].isin(("inspection_failed", "inspection_passed"))]
    rows = []
    for year in years:
        end, next_end = pd.Timestamp(date(year, 12, 31)), pd.Timestamp(date(year + 1, 12, 31))
        ids = world.entities.loc[registered <= end, "entity_id"].to_numpy()
        found_this_year = set(failed.loc[failed["occurred_on"].dt.year == year, "entity_id"])
        found_before = set(failed.loc[failed["occurred_on"] <= end, "entity_id"])
        window = adverse[(adverse["recorded_on"] > end) & (adverse["recorded_on"] <= next_end)]
        labelled = set(window["entity_id"])
        watched = set(inspected.loc[inspected["occurred_on"].dt.year == year + 1, "entity_id"])
        z = truth.reindex(pd.MultiIndex.from_arrays([ids, np.full(len(ids), year + 1)])).to_numpy()
        before = np.isin(ids, list(found_before))
        p_breach = 1 / (1 + np.exp(-(sparse.FAIL_LOGIT + sparse.FAIL_Z * z + sparse.FAIL_HISTORY * before)))
        group = np.isin(ids, list(found_this_year))
        for name, mask in (("found in breach in D's year", group), ("not found", ~group)):
            recorded = float(np.isin(ids[mask], list(labelled)).mean())
            true_rate = float(p_breach[mask].mean())
            rows.append(
                {
                    "year_end": end.date().isoformat(),
                    "group": name,
                    "entities": int(mask.sum()),
                    "recorded_label_rate": recorded,
                    "true_breach_rate": true_rate,
                    "recorded_per_true": recorded / true_rate,
                    "inspected_next_year": float(np.isin(ids[mask], list(watched)).mean()),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    world = sparse.generate_sparse(args.entities, seed=args.seed)
    table = label_bias(world, range(2018, 2025))
    pd.set_option("display.width", 200)
    print(table.round(3).to_string(index=False))
    pooled = table.groupby("group")[["recorded_label_rate", "true_breach_rate", "inspected_next_year"]].mean()
    pooled["recorded_per_true"] = pooled["recorded_label_rate"] / pooled["true_breach_rate"]
    print()
    print(pooled.round(3).to_string())


if __name__ == "__main__":
    main()
