"""The command line and the decision ledger: `features` (and so `score` and `train`, which share the same
step) lay the service database's ledger over the folder, or an exported file, or none; `--ledger-seq`
reproduces an earlier state; conflicts are said on stderr; `--engine spark` builds from the same overlaid rows;
`ledger export` / `ledger import` move the ledger, validated row by row and idempotent."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.build import build_features
from features.dataset import load_dataset
from features.ledger import overlay_dataset
from serving import ledger
from serving.auth import cli_principal
from serving.cli import app
from serving.dates import pinned
from serving.db import open_store
from tests.conftest import History

runner = CliRunner()
TODAY = date(2025, 12, 31)
AS_OF = "2025-12-31"


@pytest.fixture
def delivery(tmp_path):
    history = History()
    a, b = history.entity(), history.entity()
    penalty = history.event(a, "infringement_penalty", date(2025, 1, 5), date(2025, 1, 10))
    history.event(b, "infringement_penalty", date(2025, 2, 5), date(2025, 2, 10))
    history.listing(b, "untrustworthy", date(2025, 3, 1))
    history.listing(a, "red", date(2023, 1, 1), removed_on=date(2024, 1, 1))  # an honour that ran its term
    folder = tmp_path / "delivery"
    history.write(folder, fmt="parquet")
    return folder, a, b, penalty


def _env(tmp_path, name: str = "service") -> dict:
    return {"IPCREDIT_DATABASE_URL": f"sqlite:///{tmp_path / f'{name}.db'}", "IPCREDIT_TODAY": TODAY.isoformat()}


def _decide(env: dict, folder, a: str, penalty: str) -> None:
    engine = open_store(env["IPCREDIT_DATABASE_URL"])
    ds = load_dataset(folder)
    record = ledger.event_record(ds, penalty)
    from models.policy import load_policy
    from serving.settings import PROJECT_ROOT

    policy = load_policy(PROJECT_ROOT / "models" / "policy.toml")
    # The ledger writes to known entities only for new records; a repair needs the record, not a run.
    with pinned(TODAY):
        ledger.append(
            engine,
            {
                "kind": "repair",
                "event_id": penalty,
                "repaired_on": "2025-08-01",
                "basis": "市监信修〔2025〕3号",
                "evidence": ["penalty_fulfilled", "credit_commitment"],
            },
            cli_principal(),
            policy=policy,
            record=record,
        )
        ledger.append(
            engine,
            {"kind": "withdraw", "event_id": "NOT-DELIVERED", "basis": "市监撤〔2025〕1号"},
            cli_principal(),
            record={
                "event_id": "NOT-DELIVERED",
                "entity_id": a,
                "event_type": "complaint_received",
                "recorded_on": date(2025, 5, 1),
            },
        )
    engine.dispose()


def _features(tmp_path, folder, env: dict, *extra: str, name: str = "f.parquet"):
    out = tmp_path / name
    result = runner.invoke(
        app, ["features", "--data", str(folder), "--as-of", AS_OF, "--out", str(out), *extra], env=env
    )
    return result, out


def test_features_apply_the_service_ledger_and_say_what_they_did(tmp_path, delivery):
    folder, a, b, penalty = delivery
    env = _env(tmp_path)
    result, _ = _features(tmp_path, folder, env, name="none-yet.parquet")
    assert result.exit_code == 0, result.output
    assert "no decision applied (seq 0)" in result.output
    _decide(env, folder, a, penalty)
    engine = open_store(env["IPCREDIT_DATABASE_URL"])
    withdrawal = {"kind": "withdraw_listing", "entity_id": a, "list": "red", "entered_on": "2023-01-01"}
    with pinned(TODAY):  # later found to rest on false materials: out of the entries ever made
        ledger.append(
            engine, withdrawal | {"decided_on": "2025-06-01", "basis": "市监复核〔2025〕2号"}, cli_principal()
        )
    engine.dispose()

    applied, out = _features(tmp_path, folder, env, name="ledger.parquet")
    assert applied.exit_code == 0, applied.output
    assert "3 decision(s) applied, up to seq 3" in applied.output
    assert "conflict" in applied.output and "NOT-DELIVERED is not in this delivery" in applied.output
    bare, out_bare = _features(tmp_path, folder, env, "--no-ledger", name="bare.parquet")
    assert bare.exit_code == 0 and "--no-ledger" in bare.output
    seq0, out_seq0 = _features(tmp_path, folder, env, "--ledger-seq", "0", name="seq0.parquet")
    assert seq0.exit_code == 0, seq0.output

    with_ledger, without = pd.read_parquet(out).set_index("entity_id"), pd.read_parquet(out_bare).set_index("entity_id")
    assert with_ledger.loc[a, "adverse_12m"] == without.loc[a, "adverse_12m"] - 1  # the repaired record is out
    assert (with_ledger.loc[a, "red_list_entries"], without.loc[a, "red_list_entries"]) == (0, 1)
    pd.testing.assert_series_equal(with_ledger.loc[b], without.loc[b])
    pd.testing.assert_frame_equal(pd.read_parquet(out_seq0), pd.read_parquet(out_bare))
    # The untrustworthy entry of 2025-03-01 lapsed after its year? Not yet on 2025-12-31: still counts.
    assert bool(with_ledger.loc[b, "on_untrustworthy_list"])
    # The same step as the library's: the overlay of the stored ledger, then the build.
    ds = load_dataset(folder)
    engine = open_store(env["IPCREDIT_DATABASE_URL"])
    with engine.connect() as conn:
        overlay_dataset(ds, ledger.ledger_frame(conn))
    engine.dispose()
    expected = build_features(ds, date(2025, 12, 31)).set_index("entity_id")
    pd.testing.assert_frame_equal(with_ledger, expected, check_dtype=False)

    too_far = _features(tmp_path, folder, env, "--ledger-seq", "9", name="x.parquet")[0]
    assert too_far.exit_code == 2 and "latest decision 3" in too_far.output
    mixed = _features(tmp_path, folder, env, "--no-ledger", "--ledger-seq", "1", name="y.parquet")[0]
    assert mixed.exit_code == 2
    # Spark builds from the same overlaid rows: the same table, bit for bit, and nothing left behind.
    spark, out_spark = _features(tmp_path, folder, env, "--engine", "spark", name="spark.parquet")
    assert spark.exit_code == 0, spark.output
    pd.testing.assert_frame_equal(pd.read_parquet(out_spark), pd.read_parquet(out))
    assert not (tmp_path / ".spark.parquet.ledger").exists()


def test_export_then_import_moves_the_ledger_once_and_a_bad_file_changes_nothing(tmp_path, delivery):
    folder, a, _, penalty = delivery
    env = _env(tmp_path)
    _decide(env, folder, a, penalty)
    exported = tmp_path / "ledger.csv"
    result = runner.invoke(app, ["ledger", "export", "--out", str(exported)], env=env)
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(exported)) == 2

    elsewhere = _env(tmp_path, "elsewhere")
    first = runner.invoke(app, ["ledger", "import", str(exported)], env=elsewhere)
    assert first.exit_code == 0 and "imported 2 decision(s), 0 already" in first.output, first.output
    again = runner.invoke(app, ["ledger", "import", str(exported)], env=elsewhere)
    assert again.exit_code == 0 and "imported 0 decision(s), 2 already in the ledger; ledger at seq 2" in again.output

    # The file applied directly gives what the imported ledger gives.
    from_file, out_file = _features(
        tmp_path,
        folder,
        {**env, "IPCREDIT_DATABASE_URL": "sqlite:///" + str(tmp_path / "none.db")},
        "--ledger",
        str(exported),
        name="file.parquet",
    )
    assert from_file.exit_code == 0, from_file.output
    _, out_db = _features(tmp_path, folder, elsewhere, name="db.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out_file), pd.read_parquet(out_db))

    bad = pd.read_csv(exported, dtype=str)
    bad.loc[0, "kind"] = "forgive"
    bad.loc[1, "decided_on"] = "2026-06-01"
    broken = tmp_path / "broken.csv"
    bad.to_csv(broken, index=False)
    refused = runner.invoke(app, ["ledger", "import", str(broken)], env=_env(tmp_path, "third"))
    assert refused.exit_code == 2
    assert "kind" in refused.output and "decided_on" in refused.output and "nothing was written" in refused.output
    engine = open_store(_env(tmp_path, "third")["IPCREDIT_DATABASE_URL"])
    with engine.connect() as conn:
        assert ledger.current_seq(conn) == 0
    engine.dispose()
    unreadable = tmp_path / "ledger.txt"
    unreadable.write_text("x")
    assert runner.invoke(app, ["ledger", "import", str(unreadable)], env=elsewhere).exit_code == 2
