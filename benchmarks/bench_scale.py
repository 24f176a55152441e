"""Benchmark: how ipcredit scales on one machine, DuckDB and Spark side by side (``make bench-scale``).

For 1M, 2M and 5M entities (demo worlds of ~34 events per entity, generated once into bench-data/), runs
the two commands an operator runs every month, each as its own process, with each engine:

    ipcredit features --data W --as-of D --out F --engine E
    ipcredit score    --data W --as-of D --out F --engine E --model models:/ipcredit@champion

and records wall time and the peak memory of the whole process tree (Spark's JVM and Python workers
included; ``benchmarks/measure.py``), then per million entities, with the machine's load average during
the run (on a shared machine the wall times move with it). Both commands validate the dataset on
DuckDB first (CONTRACT: nothing is written for an invalid dataset); that is part of every figure.

Spark runs in local mode on this machine's cores (``IPCREDIT_SPARK_MASTER``, default ``local[2]`` here)
with ``IPCREDIT_SPARK_DRIVER_MEMORY`` (default 6g); DuckDB within ``IPCREDIT_DUCKDB_MEMORY_LIMIT``
(default 4GB, spilling beyond it). A run whose process tree grows past ``--memory-budget`` (default
18 GiB) is stopped and reported as such: the machine is shared. The model is trained once on the
100,000-entity world into a private MLflow store (bench-data/scale-mlruns) and retrained when the feature
code changes.

Results go to bench-data/bench_scale.json after every run (a long run can be resumed: finished
measurements are kept unless --again), and the table is printed at the end (``--report`` prints it only).

    python benchmarks/bench_scale.py [--sizes 1000000 2000000 5000000] [--engines duckdb spark]
                                     [--steps features score] [--again] [--report]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import demo_world, run_measured

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench-data"
BIN = Path(sys.executable).parent / "ipcredit"
RESULTS = BENCH / "bench_scale.json"
STORE = BENCH / "scale-mlruns"
AS_OF = "2025-12-31"
MODEL = "models:/ipcredit@champion"


def world(entities: int) -> Path:
    return demo_world(BENCH, entities)


def environment() -> dict[str, str]:
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{STORE / 'mlflow.db'}",
        "IPCREDIT_DATABASE_URL": f"sqlite:///{BENCH / 'scale-service.db'}",
        "IPCREDIT_SPARK_MASTER": os.environ.get("IPCREDIT_SPARK_MASTER", f"local[{os.cpu_count()}]"),
        "IPCREDIT_SPARK_DRIVER_MEMORY": os.environ.get("IPCREDIT_SPARK_DRIVER_MEMORY", "6g"),
        "IPCREDIT_DUCKDB_MEMORY_LIMIT": os.environ.get("IPCREDIT_DUCKDB_MEMORY_LIMIT", "4GB"),
    }


def ensure_model(env: dict[str, str]) -> str:
    """The champion's feature version in the private store, training one if it is missing or stale."""
    from features.version import FEATURE_VERSION

    marker = STORE / "feature_version.txt"
    if marker.exists() and marker.read_text().strip() == FEATURE_VERSION:
        return FEATURE_VERSION
    shutil.rmtree(STORE, ignore_errors=True)  # a fresh store: the new model is its first version, the champion
    STORE.mkdir(parents=True)
    data = world(100_000)
    print(f"training the benchmark model on {data} (features {FEATURE_VERSION}) …", flush=True)
    measured = run_measured([str(BIN), "train", "--data", str(data), "--run-name", "bench-scale"], env)
    if measured.returncode != 0:
        sys.exit(f"train failed:\n{measured.stderr[-3000:]}")
    marker.write_text(FEATURE_VERSION)
    print(f"  trained in {measured.seconds:.0f} s", flush=True)
    return FEATURE_VERSION


def command(step: str, data: Path, engine: str, out: Path) -> list[str]:
    args = [str(BIN), step, "--data", str(data), "--as-of", AS_OF, "--out", str(out), "--engine", engine]
    return [*args, "--model", MODEL] if step == "score" else args


def stages(stderr: str) -> dict[str, float]:
    found = re.findall(r"(validate|features|write|scoring) ([\d.]+) s", stderr)
    return {name: float(value) for name, value in found}


def load() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}


def save(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


def measure(sizes: list[int], engines: list[str], steps: list[str], again: bool, budget: float) -> dict:
    results = load()
    env = environment()
    results["machine"] = machine()
    results["settings"] = {k: v for k, v in env.items() if k.startswith("IPCREDIT_") and "URL" not in k}
    results["feature_version"] = ensure_model(env)
    for entities in sizes:
        data = world(entities)
        for step in steps:
            for engine in engines:
                key = f"{step}/{engine}/{entities}"
                if key in results["runs"] and not again:
                    continue
                out = BENCH / f"scale-{step}-{engine}-{entities}.parquet"
                print(f"{key} …", flush=True)
                load_before = os.getloadavg()[0]
                measured = run_measured(command(step, data, engine, out), env, budget_gib=budget)
                busy = (load_before + os.getloadavg()[0]) / 2  # the machine is shared: say how busy it was
                if measured.returncode != 0:
                    print(f"  FAILED ({measured.returncode}):\n{measured.stderr[-2000:]}", flush=True)
                    results["runs"][key] = {"failed": measured.stderr[-2000:]}
                else:
                    results["runs"][key] = {
                        "entities": entities,
                        "seconds": measured.seconds,
                        "peak_gib": measured.peak_gib,
                        "stages": stages(measured.stderr),
                        "load_average": busy,
                        "at": datetime.now().isoformat(timespec="seconds"),
                    }
                    print(f"  {measured.seconds:.1f} s, peak {measured.peak_gib:.2f} GiB", flush=True)
                    out.unlink(missing_ok=True)
                save(results)
    return results


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory:.0f} GiB"


def report(results: dict) -> None:
    runs = results.get("runs", {})
    print(f"\nbench_scale: ipcredit on one machine ({results.get('machine', '?')}), {results.get('settings', {})}")
    header = (
        f"  {'step':<9} {'engine':<7} {'entities':>10} {'wall s':>8} {'s / 1M':>7} {'peak GiB':>9} {'GiB / 1M':>9}"
        f" {'load':>5}"
    )
    print(header)
    print("  " + "-" * (len(header) - 2))
    for key in sorted(runs, key=lambda k: (k.split("/")[0], k.split("/")[1], int(k.split("/")[2]))):
        step, engine, entities = key.split("/")
        run = runs[key]
        if "failed" in run:
            print(f"  {step:<9} {engine:<7} {int(entities):>10,} FAILED")
            continue
        millions = run["entities"] / 1e6
        print(
            f"  {step:<9} {engine:<7} {run['entities']:>10,} {run['seconds']:>8.1f} {run['seconds'] / millions:>7.1f} "
            f"{run['peak_gib']:>9.2f} {run['peak_gib'] / millions:>9.2f} {run.get('load_average', float('nan')):>5.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000, 5_000_000])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"], choices=["duckdb", "spark"])
    parser.add_argument("--steps", nargs="+", default=["features", "score"], choices=["features", "score"])
    parser.add_argument("--again", action="store_true", help="measure again what bench_scale.json already has")
    parser.add_argument(
        "--memory-budget", type=float, default=18.0, help="GiB: a run whose process tree grows past it is stopped"
    )
    parser.add_argument("--report", action="store_true", help="only print the table of bench_scale.json")
    args = parser.parse_args()
    if not args.report:
        t0 = time.perf_counter()
        measure(args.sizes, args.engines, args.steps, args.again, args.memory_budget)
        print(f"measured in {time.perf_counter() - t0:.0f} s")
    report(load())


if __name__ == "__main__":
    main()
