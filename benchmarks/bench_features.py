"""Benchmark: the whole ``ipcredit features`` command on 1,000,000 entities and all their events, beside
two DuckDB references measured the same way on the same files.

Targets (issue 15) on a 2-core, 24 GiB machine: at most 1.5× the DuckDB reference and at most 4 GiB peak
memory, validation included. The references, each a separate process reading the same Parquet files:

- **the catalogue in plain DuckDB SQL**: the feature table, the same columns and bits, computed by one
  DuckDB statement (``features.sql.feature_query`` for DuckDB) and written with ``COPY``; no validation,
  no Python in the loop;
- **the DuckDB floor**: the point-in-time filter, the join to the registered entities and one GROUP BY
  with three aggregates, written with ``COPY``: what any DuckDB build pays to read and group the events.

Peak memory is the largest summed PSS of each command's process tree (``benchmarks/measure.py``). The
dataset is generated once into bench-data/ (about 34 million events) and reused.

    python benchmarks/bench_features.py [--entities N] [--as-of YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import run_measured

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "ipcredit"
TARGET_RATIO = 1.5
TARGET_GIB = 4.0


def run(args: list[str]) -> tuple[float, float, str]:
    """Run a command; return wall seconds, peak PSS of its process tree in GiB, and its stderr."""
    measured = run_measured(args)
    if measured.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({measured.returncode}):\n{measured.stderr[-3000:]}")
    return measured.seconds, measured.peak_gib, measured.stderr


def reference(kind: str, data: Path, as_of: str, out: Path) -> None:
    """One DuckDB reference run (this script calls itself in a child process for each)."""
    from datetime import date

    from features.schema import WITHDRAWN_ON
    from features.sql import DUCKDB, decay_table, feature_query

    day = date.fromisoformat(as_of)
    con = duckdb.connect()
    for table in ("entities", "events", "lists", "relations"):
        if (data / f"{table}.parquet").exists():
            # The catalogue's query reads the lists with the decision ledger's withdrawals; a delivery
            # has none (features.sql.typed_columns), so they are NULL here as in the command.
            extra = f", CAST(NULL AS DATE) AS {WITHDRAWN_ON}" if table == "lists" else ""
            source = data / f"{table}.parquet"
            con.execute(f"CREATE VIEW {table} AS SELECT *{extra} FROM read_parquet('{source}')")
        elif table == "relations":  # optional: the query reads no links then
            con.execute(
                "CREATE TABLE relations (entity_id VARCHAR, related_id VARCHAR, relation VARCHAR, "
                "from_on DATE, to_on DATE, recorded_on DATE)"
            )
    if kind == "sql":
        con.register("_decay", decay_table(day))
        query = feature_query(day, DUCKDB)
    else:
        query = f"""
            SELECT e.entity_id, count(*) AS n, sum(ev.quantity) AS q,
                   min(date_diff('day', ev.occurred_on, DATE '{day}')) AS m
            FROM entities e JOIN events ev USING (entity_id)
            WHERE e.registered_on <= DATE '{day}' AND ev.recorded_on <= DATE '{day}'
              AND (ev.repaired_on IS NULL OR ev.repaired_on > DATE '{day}')
            GROUP BY e.entity_id ORDER BY e.entity_id"""
    con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--as-of", default="2025-12-31")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--reference", choices=["sql", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.data or ROOT / "bench-data" / f"world-{args.entities}"
    if args.reference:
        reference(args.reference, data, args.as_of, args.out)
        return
    if not (data / "events.parquet").exists():
        print(f"generating {args.entities:,} entities into {data} (once) …", flush=True)
        seconds, _, _ = run(
            [str(BIN), "demo-data", "--out", str(data), "--entities", str(args.entities), "--seed", "1"]
        )
        print(f"generated in {seconds:.0f} s", flush=True)
    con = duckdb.connect()
    events = con.execute(f"SELECT count(*) FROM read_parquet('{data / 'events.parquet'}')").fetchone()[0]
    entities = con.execute(f"SELECT count(*) FROM read_parquet('{data / 'entities.parquet'}')").fetchone()[0]
    size = sum(p.stat().st_size for p in data.glob("*.parquet")) / 2**20

    out = ROOT / "bench-data" / "features.parquet"
    seconds, peak_gib, stderr = run(
        [str(BIN), "features", "--data", str(data), "--as-of", args.as_of, "--out", str(out)]
    )
    stages = dict(re.findall(r"(validate|features|write) ([\d.]+) s", stderr))
    validate_s, features_s = float(stages.get("validate", "nan")), float(stages.get("features", "nan"))
    me = [sys.executable, __file__, "--data", str(data), "--as-of", args.as_of]
    sql_s, sql_gib, _ = run([*me, "--reference", "sql", "--out", str(ROOT / "bench-data" / "reference.parquet")])
    floor_s, floor_gib, _ = run([*me, "--reference", "floor", "--out", str(ROOT / "bench-data" / "floor.parquet")])

    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    ratio_sql, ratio_floor = seconds / sql_s, seconds / floor_s
    rows = [
        ("machine", f"{os.cpu_count()} cores, {memory_gib:.0f} GiB (load average {os.getloadavg()[0]:.1f})"),
        ("entities", f"{entities:,}"),
        ("events", f"{events:,}"),
        ("parquet size", f"{size:,.0f} MiB"),
        ("ipcredit features, wall", f"{seconds:.1f} s"),
        ("  validation", f"{validate_s:.1f} s  ({validate_s / seconds:.0%} of the command)"),
        ("  feature build", f"{features_s:.1f} s"),
        ("  write", f"{float(stages.get('write', 'nan')):.1f} s"),
        ("  peak memory (process tree)", f"{peak_gib:.2f} GiB  (target <= {TARGET_GIB:g} GiB)"),
        ("DuckDB reference: the catalogue as one SQL", f"{sql_s:.1f} s, {sql_gib:.2f} GiB"),
        ("DuckDB floor: filter + join + GROUP BY", f"{floor_s:.1f} s, {floor_gib:.2f} GiB"),
        ("ratio to the catalogue SQL", f"{ratio_sql:.2f}×  (target <= {TARGET_RATIO:g}×)"),
        ("ratio to the floor", f"{ratio_floor:.2f}×; the build alone {features_s / floor_s:.2f}×"),
        ("seconds per million events", f"{seconds / (events / 1e6):.2f} s"),
        (
            "verdict",
            ("PASS" if ratio_sql <= TARGET_RATIO and peak_gib <= TARGET_GIB else "MISS")
            + f" against the catalogue SQL; {'PASS' if ratio_floor <= TARGET_RATIO else 'MISS'} against the floor",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"\nbench_features: ipcredit features over {entities:,} entities")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


if __name__ == "__main__":
    main()
