"""Service benchmarks (issue 4, section 8) against real servers on loopback, driven by wrk.

1. ``GET /v1/entities/{id}/risk`` at 8 and 64 connections (rotating over stored entities), beside a bare
   FastAPI route returning a constant, served by the same uvicorn on the same machine in the same run;
   on SQLite and, when a PostgreSQL URL is given, on PostgreSQL.
2. ``POST /v1/score`` for one entity at 8 connections, beside ``mlflow models serve`` of the same
   champion; with one worker also risk lookups at 2 connections alone and beside the what-if load.
   Without a registered champion the benchmark first trains one into its own MLflow store
   (``ipcredit demo-data`` + ``ipcredit train``, about a minute).
3. A sampling draw over 1,000,000 entities through ``POST /v1/sampling/draws`` (first and repeated), on
   each back end. The first is sent as soon as the service answers: it waits for the population the
   service preloads at start (about a second for 1,000,000 entities) and stores the population snapshot.

Everything runs in ``var/bench-service``; on PostgreSQL each part gets its own schema (``bench_lookup``,
``bench_draw``), dropped and recreated. Prints one table with every section-8 number, its target and
whether it is met, and the machine's load average before and after. Needs ``wrk`` (Debian package).

    python benchmarks/bench_service.py [--postgres-url URL] [--lookup-entities 20000]
        [--draw-entities 1000000] [--seconds 10] [--model-uri URI] [--score-workers 1]

The PostgreSQL URL defaults to ``IPCREDIT_BENCH_POSTGRES_URL``, then ``IPCREDIT_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from features import uscc  # noqa: E402
from models.policy import load_policy  # noqa: E402
from serving.db import open_store  # noqa: E402
from serving.roster import save_roster  # noqa: E402
from serving.settings import load_settings  # noqa: E402
from serving.store import ScoreRunRecord, save_score_run  # noqa: E402
from serving.tokens import create_token  # noqa: E402

AS_OF = date(2025, 12, 31)
POLICY_PATH = ROOT / "models" / "policy.toml"
BARE_APP = """
from fastapi import FastAPI

app = FastAPI()


@app.get("/constant")
def constant() -> dict:
    return {"status": "ok", "value": 42}
"""


# ---- data ------------------------------------------------------------------------------------------------


def synthetic_run(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` entities and score rows with explanation columns, shaped like the scorer's output."""
    policy = load_policy(POLICY_PATH)
    rng = np.random.default_rng(seed)
    numbers = rng.choice(10**9, n, replace=False)
    ids = []
    for number in numbers:
        body = f"91210600{number:09d}"
        ids.append(body + uscc.check_character(body))
    entities = pd.DataFrame(
        {
            "entity_id": ids,
            "name": [f"基准测试企业{i}有限公司" for i in range(n)],
            "kind": rng.choice(["enterprise", "agency"], n, p=[0.92, 0.08]),
            "industry": rng.choice(list("CFIM"), n),
            "region": rng.choice(["210602", "210603", "410102", "410105"], n),
            "registered_on": pd.Timestamp("2016-01-01"),
            "registered_capital": 100.0,
            "online_seller": rng.random(n) < 0.3,
        }
    )
    score = rng.beta(0.5, 8, n)
    tiers = policy.model_tiers(score)
    log_odds = np.log(score / (1 - score))
    reasons = [json.dumps([{"feature": "adverse_12m", "value": 1, "contribution": float(v)}]) for v in log_odds + 2.5]
    scores = pd.DataFrame(
        {
            "entity_id": ids,
            "as_of": AS_OF,
            "score": score,
            "model_tier": tiers,
            "tier": tiers,
            "rules": "",
            "review": False,
            "model_version": "bench",
            "reasons": reasons,
            "base_value": -2.5,
            "log_odds": log_odds,
            "contributions": [json.dumps({"adverse_12m": float(v)}) for v in log_odds + 2.5],
            "features": json.dumps({"adverse_12m": 1}),
        }
    )
    return entities, scores


def store(url: str, entities: pd.DataFrame, scores: pd.DataFrame) -> float:
    policy = load_policy(POLICY_PATH)
    engine = open_store(url)
    started = time.perf_counter()
    run = ScoreRunRecord(
        scores=scores,
        entities=entities,
        as_of=AS_OF,
        dataset_fingerprint="bench",
        data_source="benchmarks/bench_service.py",
        policy_text=POLICY_PATH.read_text(encoding="utf-8"),
        policy_version=policy.version_tag,
        model_version="bench",
        feature_version="bench",
    )
    save_score_run(engine, run)
    elapsed = time.perf_counter() - started
    with engine.begin() as conn:
        save_roster(
            conn,
            [
                {"inspector_id": f"B{i:03d}", "name": f"检查员{i}", "region": ("210602", "410102")[i % 2]}
                for i in range(80)
            ],
            replace=True,
        )
    engine.dispose()
    return elapsed


def token(url: str, role: str) -> str:
    engine = open_store(url)
    try:
        return create_token(engine, role, "bench")[1]
    finally:
        engine.dispose()


# ---- servers ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A uvicorn (or other) server in its own process, stopped with SIGINT."""

    def __init__(self, args: list[str], port: int, env: dict[str, str] | None = None, ready: str = "/health"):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(WORK / f"server-{port}.log", "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            args, env={**os.environ, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: see {self.log.name}")
            try:
                if httpx.get(self.url + ready, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"server did not start: see {self.log.name}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def uvicorn(
    target: str,
    port: int,
    env: dict[str, str] | None = None,
    *,
    factory: bool = False,
    ready: str = "/health",
    workers: int = 1,
) -> Server:
    args = [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", "warning", "--no-access-log", "--app-dir", str(WORK)]
    if factory:
        args.append("--factory")
    if workers > 1:
        args += ["--workers", str(workers)]
    # wrk is one client: the per-client rate limit would measure itself. The body limit and the token gate
    # stay on, so their cost is in the numbers.
    return Server(args, port, {"IPCREDIT_RATE_LIMIT_PER_SECOND": "0", **(env or {})}, ready)


# ---- wrk -------------------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def wrk(url: str, connections: int, seconds: int, script: str | None = None) -> dict[str, float]:
    """Run wrk and return requests/s, latency percentiles (ms) and error counts."""
    threads = min(2, connections)
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script:
        args += ["-s", script]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.MULTILINE)
        result[f"p{pct}"] = _ms(match.group(1)) if match else float("nan")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["errors"] = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(g) for g in socket_errors.groups()) if socket_errors else 0
    )
    result["requests"] = float(re.search(r"(\d+) requests in", out).group(1))
    return result


def lua_get(path_ids: list[str], bearer: str) -> str:
    ids = ",".join(f'"{i}"' for i in path_ids)
    script = WORK / "risk.lua"
    script.write_text(
        f'wrk.headers["Authorization"] = "Bearer {bearer}"\n'
        f"local ids = {{{ids}}}\nlocal i = 0\n"
        "request = function()\n  i = i + 1\n"
        '  return wrk.format("GET", "/v1/entities/" .. ids[(i % #ids) + 1] .. "/risk")\nend\n'
    )
    return str(script)


def lua_post(path: str, body: str, headers: dict[str, str], name: str) -> str:
    script = WORK / f"{name}.lua"
    body_file = WORK / f"{name}.body"
    body_file.write_text(body, encoding="utf-8")  # read by Lua as bytes: no escaping to get wrong
    lines = ['wrk.method = "POST"', f'local f = io.open("{body_file}", "rb")', 'wrk.body = f:read("*a")', "f:close()"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    return str(script)


# ---- what-if scoring -------------------------------------------------------------------------------------


def one_history(seed: int = 3) -> dict:
    """One entity's history from the synthetic world, as the POST /v1/score body."""
    from features.synth import generate

    world = generate(200, seed=seed)
    counts = world.events.entity_id.value_counts()
    entity_id = counts.index[len(counts) // 2]

    def rows(frame: pd.DataFrame) -> list[dict]:
        part = frame[frame.entity_id == entity_id].copy()
        for column in part.columns:
            if pd.api.types.is_datetime64_any_dtype(part[column]):
                part[column] = part[column].dt.strftime("%Y-%m-%d")
        return json.loads(part.to_json(orient="records", date_format="iso"))

    entity = rows(world.entities)[0]
    return {"as_of": AS_OF.isoformat(), "entity": entity, "events": rows(world.events), "lists": rows(world.lists)}


def mixed_load(url: str, score_script: str, lookup_script: str, seconds: int) -> dict[str, dict[str, float]]:
    """Risk lookups (2 connections) alone, then beside what-if scoring (8 connections) on the same process:
    what each kind of request pays for the other."""
    alone = wrk(url, 2, seconds, lookup_script)
    beside: dict[str, float] = {}
    lookups = threading.Thread(target=lambda: beside.update(wrk(url, 2, seconds, lookup_script)))
    lookups.start()
    scoring = wrk(url + "/v1/score", 8, seconds, score_script)
    lookups.join()
    return {
        "GET /v1/entities/{id}/risk, 2 conn, alone (the what-if service, 1 worker)": alone,
        "same, beside 8 what-if connections": beside,
        "POST /v1/score, 8 conn, beside 2 risk-lookup connections (1 worker)": scoring,
    }


def mlflow_serve(model_uri: str, tracking_uri: str, port: int) -> Server:
    args = [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", model_uri]
    args += ["-h", "127.0.0.1", "-p", str(port), "--env-manager", "local", "-w", "1"]
    # mlflow starts its server as `uvicorn …` through a shell: the virtualenv's bin must be on PATH.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_REGISTRY_URI": tracking_uri, "PATH": path}
    return Server(args, port, env, ready="/ping")


def mlflow_body(history: dict) -> str:
    """The champion's pyfunc input for the same entity: its point-in-time feature row."""
    from features.build import build_features
    from features.dataset import Dataset

    frames = [pd.DataFrame(history[k] if k != "entity" else [history[k]]) for k in ("entity", "events", "lists")]
    features = build_features(Dataset.from_frames(*frames), AS_OF)
    return (
        features.drop(columns=["as_of"])
        .to_json(orient="split", index=False, date_format="iso")
        .join(['{"dataframe_split": ', "}"])
    )


# ---- databases and the model ------------------------------------------------------------------------------


def postgres_schema(base: str, schema: str) -> str:
    """A fresh schema ``schema`` on the server of ``base`` (dropped first); the URL that uses it."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def champion(model_uri: str | None, tracking_uri: str) -> tuple[str, str, str]:
    """``(model URI, tracking URI, note)`` of a registered model to serve; trains one into the
    benchmark's own MLflow store when the given (or default) one cannot be loaded."""
    from serving.scorers import load_scorer

    uri = model_uri or "models:/ipcredit@champion"
    try:
        load_scorer(uri, tracking_uri)
        return uri, tracking_uri, f"{uri} from {tracking_uri}"
    except Exception as exc:  # no champion there: make one
        if model_uri:
            raise SystemExit(f"cannot load {model_uri}: {exc}") from exc
    store = WORK / "mlflow"
    store.mkdir(parents=True, exist_ok=True)
    own = f"sqlite:///{store / 'mlflow.db'}"
    data = WORK / "demo-data"
    print(f"no champion in {tracking_uri}: training one into {own} (demo world, 20,000 entities) …", flush=True)
    binary = str(Path(sys.executable).parent / "ipcredit")
    env = {**os.environ, "MLFLOW_TRACKING_URI": own}
    subprocess.run([binary, "demo-data", "--out", str(data), "--entities", "20000", "--seed", "7"], check=True, env=env)
    subprocess.run([binary, "train", "--data", str(data)], check=True, env=env, stdout=subprocess.DEVNULL)
    return "models:/ipcredit@champion", own, f"trained for this run into {own}"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


# ---- main ------------------------------------------------------------------------------------------------

WORK = ROOT / "var" / "bench-service"


class Table:
    """The result rows: what, the number, the target and whether it is met."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, what: str, value: str, target: str = "", met: bool | None = None) -> None:
        flag = "" if met is None else ("yes" if met else "NO")
        self.rows.append((what, value, target, flag))
        print(f"  {what}: {value}  {target} {flag}", flush=True)

    def print(self, header: list[str]) -> None:
        widths = [max(len(r[i]) for r in [("measurement", "result", "target", "met"), *self.rows]) for i in range(4)]
        print()
        for line in header:
            print(line)
        print()
        cells = ("measurement", "result", "target", "met")
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in self.rows:
            print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def bench_lookups(table: Table, label: str, url: str, args, extra_env: dict[str, str]) -> None:
    print(f"== risk lookups on {label}", flush=True)
    entities, scores = synthetic_run(args.lookup_entities, seed=1)
    store(url, entities, scores)
    supervisor = token(url, "supervisor")
    bare = uvicorn("bare:app", free_port(), ready="/constant")
    service = uvicorn("serving.app:create_app", free_port(), {"IPCREDIT_DATABASE_URL": url, **extra_env}, factory=True)
    try:
        script = lua_get(entities.entity_id.tolist()[:5000], supervisor)
        wrk(service.url, 8, 2, script)  # warm up: connections, prepared statements, caches
        for connections in (8, 64):
            base = wrk(bare.url + "/constant", connections, args.seconds)
            ours = wrk(service.url, connections, args.seconds, script)
            table.add(
                f"bare FastAPI constant, {connections} conn ({label} run)",
                f"{base['rps']:.0f} req/s, p50 {base['p50']:.1f} ms, p99 {base['p99']:.1f} ms, errors {base['errors']}",
            )
            ratio = ours["rps"] / base["rps"]
            value = (
                f"{ours['rps']:.0f} req/s ({ratio:.0%} of bare), p50 {ours['p50']:.1f} ms, "
                f"p99 {ours['p99']:.1f} ms, errors {ours['errors']}"
            )
            if connections == 8:
                table.add(f"GET /v1/entities/{{id}}/risk, {label}, 8 conn", value, "p99 <= 15 ms", ours["p99"] <= 15)
            else:
                met = ratio >= 0.5 and ours["errors"] == 0
                table.add(f"GET /v1/entities/{{id}}/risk, {label}, 64 conn", value, ">= 50% of bare, no errors", met)
    finally:
        service.stop()
        bare.stop()


def bench_what_if(table: Table, url: str, args, model_uri: str, tracking_uri: str) -> None:
    print("== what-if scoring", flush=True)
    entities, scores = synthetic_run(100, seed=3)
    store(url, entities, scores)
    analyst, supervisor = token(url, "analyst"), token(url, "supervisor")
    history = one_history()
    body = json.dumps(history, ensure_ascii=False)
    headers = {"Authorization": f"Bearer {analyst}", "Content-Type": "application/json"}
    script = lua_post("/v1/score", body, headers, "score")
    env = {
        "IPCREDIT_DATABASE_URL": url,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_REGISTRY_URI": tracking_uri,  # mlflow.set_registry_uri in this process exported another one
        "IPCREDIT_MODEL_URI": model_uri,
    }
    ours_p99 = None
    for workers in sorted({1, args.score_workers}):
        if workers > 1:
            env["IPCREDIT_MIGRATE_ON_START"] = "false"  # migrated by the first server already
        service = uvicorn("serving.app:create_app", free_port(), env, factory=True, workers=workers)
        try:
            check = httpx.post(service.url + "/v1/score", content=body.encode(), headers=headers, timeout=60)
            check.raise_for_status()
            wrk(service.url + "/v1/score", 8, 2, script)  # warm up
            ours = wrk(service.url + "/v1/score", 8, args.seconds, script)
            if workers == 1:
                mixed = mixed_load(service.url, script, lua_get(entities.entity_id.tolist(), supervisor), args.seconds)
        finally:
            service.stop()
        events = len(history["events"])
        table.add(
            f"POST /v1/score (one entity, {events} events), 8 conn, {workers} worker{'s' * (workers > 1)}",
            f"{ours['rps']:.0f} req/s, p50 {ours['p50']:.1f} ms, p99 {ours['p99']:.1f} ms, errors {ours['errors']}",
            "p99 <= 30 ms",
            ours["p99"] <= 30 and ours["errors"] == 0,
        )
        if workers == 1:
            ours_p99, ours_rps = ours["p99"], ours["rps"]
            for what, result in mixed.items():
                table.add(
                    what,
                    f"{result['rps']:.0f} req/s, p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, "
                    f"errors {result['errors']}",
                )
    if not model_uri.startswith(("models:/", "runs:/")):
        table.add("mlflow models serve", f"not measured: {model_uri} is not an MLflow model URI")
        return
    mlflow = mlflow_serve(model_uri, tracking_uri, free_port())
    try:
        payload = mlflow_body(history)
        probe = httpx.post(mlflow.url + "/invocations", content=payload, headers={"Content-Type": "application/json"})
        if probe.status_code != 200:
            table.add("mlflow models serve /invocations", f"not measured: {probe.status_code} {probe.text[:200]}")
            return
        wrk(
            mlflow.url + "/invocations",
            8,
            2,
            lua_post("/invocations", payload, {"Content-Type": "application/json"}, "m"),
        )
        theirs = wrk(
            mlflow.url + "/invocations",
            8,
            args.seconds,
            lua_post("/invocations", payload, {"Content-Type": "application/json"}, "mlflow"),
        )
    finally:
        mlflow.stop()
    table.add(
        "mlflow models serve /invocations (feature row given, 1 worker), 8 conn",
        f"{theirs['rps']:.0f} req/s, p50 {theirs['p50']:.1f} ms, p99 {theirs['p99']:.1f} ms, errors {theirs['errors']}",
        "ours (1 worker) faster",
        ours_p99 < theirs["p99"] and ours_rps > theirs["rps"],
    )


def bench_draw(table: Table, label: str, url: str, args) -> None:
    print(f"== a draw over {args.draw_entities:,} entities on {label}", flush=True)
    entities, scores = synthetic_run(args.draw_entities, seed=2)
    seconds = store(url, entities, scores)
    table.add(f"save_score_run of {args.draw_entities:,} rows, {label}", f"{seconds:.1f} s")
    supervisor = token(url, "supervisor")
    service = uvicorn("serving.app:create_app", free_port(), {"IPCREDIT_DATABASE_URL": url}, factory=True)
    try:
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {supervisor}"}, timeout=120) as c:
            for attempt in range(3):
                started = time.perf_counter()
                response = c.post("/v1/sampling/draws", json={})  # the seed is the register's, never ours
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                draw = response.json()
                when = "run 1, right after the service started" if attempt == 0 else f"run {attempt + 1}"
                table.add(
                    f"POST /v1/sampling/draws, {draw['population_size']:,} entities, {label}, {when}",
                    f"{elapsed:.2f} s end to end ({draw['selected_count']:,} selected, "
                    f"{len(response.content) / 1e6:.1f} MB response)",
                    "<= 2 s",
                    elapsed <= 2,
                )
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lookup-entities", type=int, default=20_000)
    parser.add_argument("--draw-entities", type=int, default=1_000_000, help="0 skips the draw")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("IPCREDIT_BENCH_POSTGRES_URL") or os.environ.get("IPCREDIT_TEST_POSTGRES_URL"),
        help="a PostgreSQL database the benchmark may create schemas in (default: $IPCREDIT_BENCH_POSTGRES_URL, "
        "then $IPCREDIT_TEST_POSTGRES_URL); without one only SQLite is measured",
    )
    parser.add_argument("--model-uri", help="model to serve (default: the champion, trained here if there is none)")
    parser.add_argument(
        "--score-workers", type=int, default=2, help="also measure what-if scoring with this many worker processes"
    )
    parser.add_argument("--skip-what-if", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    (WORK / "bare.py").write_text(BARE_APP)
    settings = load_settings()
    table = Table()
    header = [f"bench_service: {os.cpu_count()} cores, load average (1/5/15 min) at start {load_average()}"]
    backends = [("SQLite", lambda part: f"sqlite:///{WORK / f'{part}.db'}")]
    if args.postgres_url:
        backends.append(("PostgreSQL", lambda part: postgres_schema(args.postgres_url, f"bench_{part}")))
    else:
        table.add("PostgreSQL", "not measured: set IPCREDIT_BENCH_POSTGRES_URL or pass --postgres-url")

    for label, url_for in backends:
        bench_lookups(table, label, url_for("lookup"), args, {"IPCREDIT_MODEL_URI": str(WORK / "no-model")})
    if not args.skip_what_if:
        model_uri, tracking_uri, note = champion(args.model_uri, settings.tracking_uri)
        header.append(f"model served: {note}")
        bench_what_if(table, f"sqlite:///{WORK / 'whatif.db'}", args, model_uri, tracking_uri)
    if args.draw_entities:
        for label, url_for in backends:
            bench_draw(table, label, url_for("draw"), args)
    header.append(f"load average at the end {load_average()}")
    table.print(header)


if __name__ == "__main__":
    main()
