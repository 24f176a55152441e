"""CLI commands for the service: serve, tokens, db, inspectors, events."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from serving.cli.app import app, fail

tokens_app = typer.Typer(help="API tokens (stored hashed).", no_args_is_help=True)
db_app = typer.Typer(help="The service database.", no_args_is_help=True)
inspectors_app = typer.Typer(help="The inspector roster used by sampling draws.", no_args_is_help=True)
events_app = typer.Typer(help="Events recorded by the service (inspection results).", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
app.add_typer(db_app, name="db")
app.add_typer(inspectors_app, name="inspectors")
app.add_typer(events_app, name="events")


def _engine():
    from serving.db import open_store
    from serving.settings import load_settings

    return open_store(load_settings().db_url)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Start the HTTP service (migrates the database, loads the champion model and the policy)."""
    import uvicorn

    from serving.db import upgrade
    from serving.settings import load_settings

    settings = load_settings()
    upgrade(settings.db_url)  # once, before any worker starts
    if workers > 1:
        os.environ["IPCREDIT_MIGRATE_ON_START"] = "false"  # the workers read settings from the environment
        uvicorn.run(
            "serving.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=False,
        )
        return
    from serving.app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, access_log=False)


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option(help="supervisor, analyst, reviewer or admin")],
    name: Annotated[str, typer.Option(help="who or what the token is for")] = "cli",
) -> None:
    """Create an API token for ROLE and print it as the last line (only its hash is stored)."""
    from serving.auth import ROLES, create_token

    if role not in ROLES:
        raise fail(f"--role must be one of {', '.join(ROLES)}; got {role!r}")
    token_id, token = create_token(_engine(), role, name)
    typer.echo(f"token {token_id} for role {role} ({name}); it is shown only once:", err=True)
    typer.echo(token)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="the token's id")]) -> None:
    """Revoke a token."""
    from serving.auth import revoke_token

    if not revoke_token(_engine(), token_id):
        raise fail(f"no active token {token_id}", code=1)
    typer.echo(f"token {token_id} revoked")


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Run the database migrations (the service also runs them when it starts)."""
    from serving.db import upgrade
    from serving.settings import load_settings

    url = load_settings().db_url
    upgrade(url, revision)
    typer.echo(f"database at {_masked(url)} is at revision {revision}")


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@inspectors_app.command("load")
def inspectors_load(
    file: Annotated[Path, typer.Option(help="CSV: inspector_id,name,region,active,conflicts (';'-joined ids)")],
    replace: Annotated[bool, typer.Option(help="deactivate inspectors not in the file")] = False,
) -> None:
    """Load the inspector roster from a CSV file."""
    import pandas as pd
    from pydantic import ValidationError

    from features.errors import InvalidInput
    from serving.roster import save_roster
    from serving.schemas import Roster

    if not file.is_file():
        raise fail(f"--file {file} does not exist")
    frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    missing = {"inspector_id", "name"} - set(frame.columns)
    if missing:
        raise fail(f"{file}: needs columns inspector_id and name; missing {sorted(missing)}")
    people = []
    for row in frame.to_dict("records"):
        people.append(
            {
                "inspector_id": row["inspector_id"],
                "name": row["name"],
                "region": row.get("region") or None,
                "active": str(row.get("active", "true") or "true").strip().lower() in ("true", "1", "yes"),
                "conflicts": [c for c in str(row.get("conflicts") or "").split(";") if c],
            }
        )
    try:
        roster = Roster(inspectors=people, replace=replace)
    except ValidationError as exc:
        raise fail(f"{file}: invalid roster: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    engine = _engine()
    try:
        with engine.begin() as conn:
            active = save_roster(conn, [p.model_dump() for p in roster.inspectors], replace=replace)
    except InvalidInput as exc:
        raise fail(f"{file}: invalid roster: {exc}") from None
    typer.echo(f"{len(people)} inspectors loaded; {active} active")


@inspectors_app.command("demo")
def inspectors_demo(
    out: Annotated[Path, typer.Option(help="CSV file to write")],
    count: Annotated[int, typer.Option(min=2, help="how many inspectors")] = 40,
    regions: Annotated[str, typer.Option(help="comma-separated region codes to spread them over")] = "210600,410100",
    seed: Annotated[int, typer.Option(help="random seed")] = 7,
) -> None:
    """Write a synthetic inspector roster (for demos and benchmarks)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    surnames = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高")
    given = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚")
    codes = [r.strip() for r in regions.split(",") if r.strip()]
    frame = pd.DataFrame(
        {
            "inspector_id": [f"INS{i + 1:04d}" for i in range(count)],
            "name": [f"{rng.choice(surnames)}{rng.choice(given)}{rng.choice(given)}" for _ in range(count)],
            "region": [codes[i % len(codes)] for i in range(count)],
            "active": ["true"] * count,
            "conflicts": [""] * count,
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    typer.echo(f"wrote {count} inspectors to {out}")


@events_app.command("export")
def events_export(
    out: Annotated[Path, typer.Option(help="events file to write (.csv or .parquet)")],
    since: Annotated[str | None, typer.Option(help="only events recorded on or after this date")] = None,
) -> None:
    """Write the inspection results recorded by the service as a CONTRACT events table."""
    from serving.inspections import export_events

    try:
        since_date = date.fromisoformat(since) if since else None
    except ValueError as exc:
        raise fail(f"--since must be an ISO date YYYY-MM-DD; got {since!r}") from exc
    if out.suffix not in (".csv", ".parquet"):
        raise fail(f"--out must end in .csv or .parquet; got {out.name}")
    with _engine().connect() as conn:
        frame = export_events(conn, since=since_date)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    typer.echo(json.dumps({"events": len(frame), "out": str(out)}))
