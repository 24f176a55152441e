"""Benchmark: the whole ``ipcredit features`` command on 1,000,000 entities and all their events.

Target on a 2-core, 24 GiB machine: at most 20 s and at most 4 GiB peak memory, validation included.
The dataset is generated once into bench-data/ (about 35 million events) and reused.

    python benchmarks/bench_features.py [--entities N] [--as-of YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "ipcredit"


def run(args: list[str]) -> tuple[float, float, str]:
    """Run an ipcredit command; return wall seconds, peak RSS of the child in GiB, and its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([str(BIN), *args], capture_output=True, text=True, env=os.environ | {"COLUMNS": "200"})
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"ipcredit {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest child so far; the feature run is the largest by far.
    return seconds, max(peak, before) / 2**20, proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--as-of", default="2025-12-31")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    data = args.data or ROOT / "bench-data" / f"world-{args.entities}"
    if not (data / "events.parquet").exists():
        print(f"generating {args.entities:,} entities into {data} (once) …", flush=True)
        seconds, _, _ = run(["demo-data", "--out", str(data), "--entities", str(args.entities), "--seed", "1"])
        print(f"generated in {seconds:.0f} s", flush=True)
    con = duckdb.connect()
    events = con.execute(f"SELECT count(*) FROM read_parquet('{data / 'events.parquet'}')").fetchone()[0]
    entities = con.execute(f"SELECT count(*) FROM read_parquet('{data / 'entities.parquet'}')").fetchone()[0]
    size = sum(p.stat().st_size for p in data.glob("*.parquet")) / 2**20

    out = ROOT / "bench-data" / "features.parquet"
    seconds, peak_gib, stderr = run(["features", "--data", str(data), "--as-of", args.as_of, "--out", str(out)])
    stages = dict(re.findall(r"(validate|features|write) ([\d.]+) s", stderr))
    validate_s, features_s = float(stages.get("validate", "nan")), float(stages.get("features", "nan"))

    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    rows = [
        ("machine", f"{os.cpu_count()} cores, {memory_gib:.0f} GiB"),
        ("entities", f"{entities:,}"),
        ("events", f"{events:,}"),
        ("parquet size", f"{size:,.0f} MiB"),
        ("ipcredit features, wall", f"{seconds:.1f} s  (target <= 20 s)"),
        ("  validation", f"{validate_s:.1f} s  ({validate_s / seconds:.0%} of the command)"),
        ("  feature query", f"{features_s:.1f} s"),
        ("  write", f"{float(stages.get('write', 'nan')):.1f} s"),
        ("seconds per million events", f"{seconds / (events / 1e6):.2f} s"),
        ("peak memory (RSS)", f"{peak_gib:.2f} GiB  (target <= 4 GiB)"),
        ("verdict", "PASS" if seconds <= 20 and peak_gib <= 4 else "MISS"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\nbench_features: ipcredit features over 1M entities")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


if __name__ == "__main__":
    main()
