"""CLI commands for the service: serve, tokens, db, inspectors, events, import-scores.

Every command that changes the service database, and the events export, writes its audit row (actor
``cli:<os user>``) in the transaction of its change."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from features.errors import InvalidInput, IPCreditError
from serving.cli.app import app, fail, parse_date, print_problems

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
    role: Annotated[str, typer.Option(help="supervisor, analyst, reviewer, department or admin")],
    name: Annotated[str, typer.Option(help="who or what the token is for")] = "cli",
    region: Annotated[
        str | None,
        typer.Option(help="scope: a 6-digit division code; the token sees only that region (210600: a city)"),
    ] = None,
    expires_in: Annotated[
        int | None, typer.Option("--expires-in", help="days until it expires (default: the service's token_days)")
    ] = None,
    measures: Annotated[
        str | None,
        typer.Option(
            help="a department token: the comma-separated benefits it administers "
            "(funding, fee_reduction, fast_track, award_recommendation, commitment_procedure)"
        ),
    ] = None,
) -> None:
    """Create an API token for ROLE and print it as the last line (only its hash is stored; audited)."""
    from serving.auth import cli_principal
    from serving.settings import load_settings
    from serving.tokens import create_token

    days = expires_in or load_settings().token_days
    try:
        benefits = [m.strip() for m in measures.split(",") if m.strip()] if measures else []
        token_id, token = create_token(
            _engine(), role, name, region=region, expires_in_days=days, by=cli_principal(), benefits=benefits
        )
    except IPCreditError as exc:
        raise fail(exc) from None
    scope = (f", region {region}" if region else "") + (f", benefits {measures}" if measures else "")
    typer.echo(f"token {token_id} for role {role} ({name}{scope}, {days} days); it is shown only once:", err=True)
    typer.echo(token)


@tokens_app.command("list")
def tokens_list(
    as_json: Annotated[bool, typer.Option("--json", help="print the tokens as JSON")] = False,
    limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 100,
) -> None:
    """List tokens: role, region, expiry, last use, revocation (never a token or its hash)."""
    from serving.tokens import list_tokens

    with _engine().connect() as conn:
        total, page = list_tokens(conn, limit=limit)
    if as_json:
        typer.echo(json.dumps({"total": total, "tokens": page}, default=str))
        return
    for t in page:
        state = "active" if t["active"] else ("revoked" if t["revoked_at"] else "expired")
        last = t["last_used_at"].isoformat(timespec="minutes") if t["last_used_at"] else "never"
        expires = t["expires_at"].date().isoformat() if t["expires_at"] else "never"
        typer.echo(
            f"{t['token_id']:>6}  {t['role']:<10} {t['region'] or '-':<6}  {state:<7}  expires {expires}  "
            f"last used {last}  {t['name']}" + (f"  benefits {','.join(t['benefits'])}" if t["benefits"] else "")
        )
    typer.echo(f"{len(page)} of {total} tokens", err=True)


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="the token's id")]) -> None:
    """Revoke a token (audited)."""
    from serving.auth import cli_principal
    from serving.tokens import revoke_token

    if not revoke_token(_engine(), token_id, by=cli_principal()):
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
    from serving.audit import record_change
    from serving.auth import cli_principal
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
            detail = {"listed": len(people), "replace": replace, "file": file.name}
            record_change(conn, cli_principal(), "roster.load", "inspectors", detail)
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
    """Write the inspection results recorded by the service as a CONTRACT events table (audited)."""
    from serving.audit import record_change
    from serving.auth import cli_principal
    from serving.inspections import export_events

    since_date = parse_date(since, "--since") if since else None
    if out.suffix not in (".csv", ".parquet"):
        raise fail(f"--out must end in .csv or .parquet; got {out.name}")
    with _engine().begin() as conn:
        frame = export_events(conn, since=since_date)
        record_change(conn, cli_principal(), "events.export", "events", {"since": since, "rows": len(frame)})
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    typer.echo(json.dumps({"events": len(frame), "out": str(out)}))


@app.command("import-scores")
def import_scores(
    data: Annotated[Path, typer.Option(help="the dataset folder the scores were made from (entities, lists)")],
    scores: Annotated[Path, typer.Option(help="score file written by `ipcredit score` (.parquet or .csv)")],
    as_of: Annotated[str, typer.Option("--as-of", help="the run's as-of date YYYY-MM-DD")],
) -> None:
    """Import a score file as a score run, validated row by row like a dataset: any problem is listed
    (score_file / row / column) and the command exits with status 2 having stored nothing. Both paths must
    lie under the import root (IPCREDIT_DATASET_ROOT); the run and its audit row are one transaction."""
    from models.policy import PolicyError, read_policy
    from serving import runs
    from serving.auth import cli_principal
    from serving.settings import load_settings

    settings = load_settings()
    day = parse_date(as_of, "--as-of")
    try:
        policy, policy_text = read_policy(settings.policy_path)
        root = settings.import_root
        request = runs.RunRequest(
            folder=runs.dataset_folder(str(data.absolute()), root),
            root=root,
            as_of=day,
            score_file=runs.confined(str(scores.absolute()), root, "score_file", folder=False),
        )
        run_id = runs.make_run(_engine(), request, None, policy, policy_text, cli_principal())
    except (IPCreditError, PolicyError) as exc:
        if isinstance(exc, InvalidInput):
            _print_invalid(exc)
        raise fail(f"{exc}; nothing was stored" if isinstance(exc, InvalidInput) else exc) from None
    typer.echo(json.dumps({"run_id": run_id, "as_of": day.isoformat()}))


def _print_invalid(exc: InvalidInput) -> None:
    """The problems of an import as the validation table (score_file / row / column / value / message)."""
    import pandas as pd

    rows = []
    for problem in exc.problems:
        loc = [*problem.loc, None, None, None]
        rows.append({"table": loc[0], "row": loc[1], "column": loc[2], "value": problem.input, "message": problem.msg})
    print_problems(pd.DataFrame(rows, columns=["table", "row", "column", "value", "message"]), exc.total, "import")
