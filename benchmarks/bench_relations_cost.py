"""Benchmark: what the relationship features cost at 1M entities with a few million links (issue 16, item 5).

One demo world of ``--entities`` entities (``ipcredit demo-data``, generated once into bench-data/), read
three ways through symbolic links to its files, each by ``ipcredit features`` as its own process:

- **without**: entities, events and lists only (no ``relations`` table: no relationship step runs);
- **delivered**: with the links the generator made (~0.56 per entity);
- **dense**: those links and more, drawn at random between existing entities up to ``--links`` in all
  (agencies to clients for ``agency_client``, any two entities for the others; no link given twice, so the
  table validates), to see the cost where a delivery has several links per entity.

Reported per variant: wall time of the whole command (validation included: the relations table's checks,
the overlap self-join among them, run before any feature), its stages as the command prints them, and the
peak memory of the process (``benchmarks/measure.py``), with the machine's load average.

    python benchmarks/bench_relations_cost.py [--entities 1000000] [--links 3000000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import demo_world, run_measured

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench-data"
BIN = Path(sys.executable).parent / "ipcredit"
AS_OF = "2025-12-31"
SYMMETRIC = ("shared_legal_representative", "shared_address")


def _key(frame: pd.DataFrame) -> pd.Series:
    """A link's identity: a symmetric relation is the same link read from either end."""
    a, b = frame["entity_id"].astype(str), frame["related_id"].astype(str)
    symmetric = frame["relation"].isin(SYMMETRIC)
    low, high = a.where(~symmetric | (a < b), b), b.where(~symmetric | (a < b), a)
    return frame["relation"].astype(str) + "|" + low + "|" + high


def dense_links(source: Path, links: int, seed: int = 7) -> pd.DataFrame:
    """The delivered links plus random ones between existing entities, ``links`` in all, none twice."""
    delivered = pd.read_parquet(source / "relations.parquet")
    entities = pd.read_parquet(source / "entities.parquet", columns=["entity_id", "kind", "registered_on"])
    rng = np.random.default_rng(seed)
    ids = entities["entity_id"].astype(str).to_numpy()
    agencies = ids[(entities["kind"].astype(str) == "agency").to_numpy()]
    registered = pd.to_datetime(entities["registered_on"]).to_numpy()
    wanted = links - len(delivered)
    extra = []
    seen = set(_key(delivered))
    while wanted > 0:
        n = int(wanted * 1.2) + 1000
        relation = rng.choice(["agency_client", "shared_legal_representative", "shareholder", "shared_address"], n)
        first = rng.integers(0, len(ids), n)
        a = np.where(relation == "agency_client", agencies[rng.integers(0, len(agencies), n)], ids[first])
        second = rng.integers(0, len(ids), n)
        b = ids[second]
        start = np.maximum(registered[first], registered[second]) + rng.integers(0, 900, n).astype("timedelta64[D]")
        frame = pd.DataFrame({"entity_id": a, "related_id": b, "relation": relation})
        frame["from_on"] = start
        ended = rng.random(n) < 0.2
        frame["to_on"] = pd.Series(start + rng.integers(30, 2000, n).astype("timedelta64[D]")).where(ended)
        frame["recorded_on"] = start + rng.integers(0, 60, n).astype("timedelta64[D]")
        frame = frame[(frame["entity_id"] != frame["related_id"]) & (frame["from_on"] <= pd.Timestamp(AS_OF))]
        keys = _key(frame)
        fresh = ~keys.isin(seen) & ~keys.duplicated()
        frame, keys = frame[fresh].head(wanted), keys[fresh].head(wanted)
        seen.update(keys)
        extra.append(frame)
        wanted -= len(frame)
    out = pd.concat([delivered, *extra], ignore_index=True)
    for column in ("from_on", "to_on", "recorded_on"):
        out[column] = pd.to_datetime(out[column]).dt.date
    return out


def variant(source: Path, name: str, links: pd.DataFrame | None, with_relations: bool) -> Path:
    folder = BENCH / "relations-cost" / name
    folder.mkdir(parents=True, exist_ok=True)
    for table in ("entities", "events", "lists"):
        target = folder / f"{table}.parquet"
        if not target.exists():
            target.symlink_to(source / f"{table}.parquet")
    relations = folder / "relations.parquet"
    if with_relations and not relations.exists():
        if links is None:
            relations.symlink_to(source / "relations.parquet")
        else:
            links.to_parquet(relations, index=False)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--links", type=int, default=3_000_000)
    parser.add_argument("--world", type=Path, help="a demo-data folder to use instead of generating one")
    parser.add_argument("--json", type=Path, default=BENCH / "bench_relations_cost.json")
    args = parser.parse_args()
    source = (args.world or demo_world(BENCH, args.entities)).resolve()
    dense = BENCH / "relations-cost" / "dense" / "relations.parquet"
    links = None if dense.exists() else dense_links(source, args.links)
    variants = {
        "without": variant(source, "without", None, False),
        "delivered": variant(source, "delivered", None, True),
        "dense": variant(source, "dense", links, True),
    }
    env = {"IPCREDIT_DUCKDB_MEMORY_LIMIT": os.environ.get("IPCREDIT_DUCKDB_MEMORY_LIMIT", "4GB")}
    results = {"machine": f"{os.cpu_count()} cores", "entities": args.entities, "runs": {}}
    for name, folder in variants.items():
        count = len(pd.read_parquet(folder / "relations.parquet", columns=["relation"])) if name != "without" else 0
        out = BENCH / "relations-cost" / f"features-{name}.parquet"
        before = os.getloadavg()[0]
        command = [str(BIN), "features", "--data", str(folder), "--as-of", AS_OF, "--out", str(out), "--no-ledger"]
        done = run_measured(command, env, budget_gib=18)
        if done.returncode != 0:
            sys.exit(f"{name}: features failed:\n{done.stderr[-3000:]}")
        stages = {k: float(v) for k, v in re.findall(r"(validate|features|write) ([\d.]+) s", done.stderr)}
        results["runs"][name] = {
            "links": count,
            "seconds": done.seconds,
            "peak_gib": done.peak_gib,
            "stages": stages,
            "load_average": (before + os.getloadavg()[0]) / 2,
        }
        shown = f"{name:<10} {count:>10,} links  {done.seconds:6.1f} s  peak {done.peak_gib:5.2f} GiB  {stages}"
        print(shown, flush=True)
        out.unlink(missing_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
