"""Server time of every page (issue 13: each under 50 ms on the demo world).

Builds the demo world the way ``make demo`` does (``tests/ui/conftest.build_world``: demo-data, train,
score two months, roster; ``--entities``, default the demo's 20,000) in ``var/bench-pages`` — or reuses
one with ``--world DIR`` — files an objection and makes a draw as the browser tests do, then asks each
page ``--repeat`` times through the whole ASGI stack in process (middleware, session gate, routes,
templates; no network) and prints the median and 90th percentile per page beside the target. The
monthly report is timed too but is not held to the target: it recomputes the month's figures with
bootstrap intervals on request (``ipcredit report`` does the same).

    python benchmarks/bench_pages.py [--entities 20000] [--world DIR] [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

TARGET_MS = 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--world", type=Path, help="a world build_world made before (copied, never changed)")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    import pandas as pd
    from fastapi.testclient import TestClient

    import tests.ui.conftest as ui
    from serving.app import create_app
    from serving.db import open_store
    from serving.tokens import create_token
    from tests.serving.conftest import settings_for

    folder = ROOT / "var" / "bench-pages"
    shutil.rmtree(folder, ignore_errors=True)
    if args.world:
        shutil.copytree(args.world, folder)
    else:
        ui.ENTITIES = args.entities
        started = time.perf_counter()
        ui.build_world(folder)
        print(f"world of {args.entities:,} entities built in {time.perf_counter() - started:.0f} s", flush=True)
    env = ui.world_env(folder)
    settings = settings_for(
        env["IPCREDIT_DATABASE_URL"],
        folder,
        mlflow_tracking_uri=env["MLFLOW_TRACKING_URI"],
        dataset_root=folder,
        today=ui.AS_OF_TODAY,
    )
    engine = open_store(settings.db_url)
    tokens = {role: create_token(engine, role, f"bench-{role}")[1] for role in ("supervisor", "reviewer", "analyst")}
    engine.dispose()
    scores = pd.read_parquet(folder / f"scores-{ui.AS_OF}.parquet").sort_values("score")
    entity = scores.iloc[-1].entity_id
    region = entity[2:8]

    rows = []
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        api = {"Authorization": f"Bearer {tokens['supervisor']}"}
        score_id = client.get(f"/v1/entities/{entity}/risk", headers=api).json()["score_id"]
        objection = client.post("/v1/objections", json={"score_id": score_id, "grounds": "bench"}, headers=api).json()
        if "objection_id" not in objection:  # a reused world: the row's objection is open already
            reviewer = {"Authorization": f"Bearer {tokens['reviewer']}"}
            listed = client.get("/v1/objections", params={"status": "open"}, headers=reviewer).json()
            objection = next(o for o in listed if o["score_id"] == score_id)
        draw = client.post("/v1/sampling/draws", json={"filter": {"region": region}}, headers=api).json()
        client.cookies.clear()
        pages = {
            "supervisor": [
                "/ui/",
                f"/ui/entities?q={entity[:10]}",
                f"/ui/entities/{entity}",
                "/ui/draws",
                f"/ui/draws/{draw['draw_id']}",
                f"/ui/draws/{draw['draw_id']}/csv",
                "/ui/plans",
            ],
            "reviewer": ["/ui/objections", f"/ui/objections/{objection['objection_id']}"],
            "analyst": ["/ui/models", f"/ui/report?as_of={ui.AS_OF}"],
            None: [
                "/ui/sign-in",
                "/ui/public/lists?list=red",
                "/ui/public/lists?list=serious_violation",
                "/ui/public/draws",
                f"/ui/public/draws/{draw['draw_id']}",
                f"/ui/public/draws/{draw['draw_id']}/verify",
            ],
        }
        for role, paths in pages.items():
            client.cookies.clear()
            if role:
                form = client.get("/ui/sign-in")
                secret = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
                signed = client.post(
                    "/ui/sign-in", data={"csrf": secret, "token": tokens[role], "next": "/ui/"}, follow_redirects=False
                )
                assert signed.status_code == 303, signed.text
            for path in paths:
                repeat = 3 if path.startswith("/ui/report") else args.repeat
                client.get(path)  # warm: the first read opens the run's dataset, loads a template
                times = []
                for _ in range(repeat):
                    t = time.perf_counter()
                    answer = client.get(path)
                    times.append(1000 * (time.perf_counter() - t))
                    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
                times.sort()
                p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
                rows.append((role or "public", path, statistics.median(times), p90))
    print(f"\n{'who':<11}{'page':<58}{'median ms':>10}{'p90 ms':>9}  target {TARGET_MS:.0f} ms")
    for who, path, median, p90 in rows:
        held = "report: not held" if path.startswith("/ui/report") else ("met" if p90 < TARGET_MS else "MISSED")
        shown = re.sub(r"[0-9a-f]{32}", "{draw}", path)
        print(f"{who:<11}{shown:<58}{median:>10.1f}{p90:>9.1f}  {held}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
