"""Run a command and measure it as an operator would see it: wall time and peak memory of its whole tree.

Peak memory is the largest sum of the proportional set sizes (PSS: each shared page counted once across
the processes that share it) of the command and all its descendants, sampled every 0.1 s. Spark runs a
JVM and Python workers forked from one daemon beside the driver: ``ru_maxrss`` would report only the
largest single process, and a sum of RSS would count the pages the forked workers share once per worker.
Used by ``bench_features.py``, ``bench_scale.py`` and ``bench_relations_cost.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_gib: float
    stderr: str
    returncode: int


def _tree_pss(process: psutil.Process) -> int:
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_full_info().pss
        except psutil.Error:
            continue
    return total


def run_measured(
    args: Sequence[str], env: Mapping[str, str] | None = None, *, nice: int = 0, budget_gib: float | None = None
) -> Measured:
    """Run ``args``; return its wall time, the peak PSS of its process tree (GiB) and its stderr.

    With ``budget_gib``, a tree that grows past it is killed (a shared machine must not run out of memory
    because of a benchmark): the result then has return code -9 and says so in ``stderr``.
    """
    environment = dict(os.environ) | {"COLUMNS": "200"} | dict(env or {})
    command = ["nice", "-n", str(nice), *args] if nice else list(args)
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    peak = 0
    killed = False
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, killed
        root = psutil.Process(proc.pid)
        while not done.is_set():
            peak = max(peak, _tree_pss(root))
            if budget_gib is not None and peak > budget_gib * 2**30 and not killed:
                killed = True
                _kill_tree(root)
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    if killed:
        stderr += f"\nkilled: the process tree grew past the memory budget of {budget_gib:g} GiB"
        return Measured(seconds, peak / 2**30, stderr, -9)
    return Measured(seconds, peak / 2**30, stderr, proc.returncode)


def _kill_tree(root: psutil.Process) -> None:
    try:
        members = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for member in members:
        try:
            member.kill()
        except psutil.Error:
            continue


def demo_world(bench: Path, entities: int) -> Path:
    """The demo world of ``entities`` entities (seed 1) in ``bench/world-N``, generated once and reused by
    every benchmark that asks for the same size."""
    folder = bench / f"world-{entities}"
    if not (folder / "events.parquet").exists():
        print(f"generating {entities:,} entities into {folder} (once) …", flush=True)
        command = Path(sys.executable).parent / "ipcredit"
        args = ["demo-data", "--out", str(folder), "--entities", str(entities), "--seed", "1"]
        measured = run_measured([str(command), *args])
        if measured.returncode != 0:
            sys.exit(f"demo-data failed:\n{measured.stderr[-3000:]}")
        print(f"  generated in {measured.seconds:.0f} s", flush=True)
    return folder
