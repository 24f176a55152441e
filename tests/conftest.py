"""Shared factories: small, hand-readable histories that follow the input contract."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
import pytest

from features import uscc
from features.dataset import Dataset
from features.schema import ENTITIES, EVENTS, LISTS

_serial = itertools.count(1)


def make_code(region: str = "210600", serial: int | None = None) -> str:
    """A valid unified social credit code for ``region``."""
    n = next(_serial) if serial is None else serial
    body = f"91{region}{n:09d}"[:17]
    return body + uscc.check_character(body)


@dataclass
class History:
    """Builds the three contract tables row by row: ``entity()``, ``event()``, ``listing()``."""

    entities: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    lists: list[dict] = field(default_factory=list)

    def entity(self, entity_id: str | None = None, **overrides) -> str:
        row = {
            "entity_id": entity_id or make_code(),
            "name": "丹东市测试科技有限公司",
            "kind": "enterprise",
            "industry": "C",
            "region": "210600",
            "registered_on": date(2015, 1, 1),
            "registered_capital": 500.0,
            "online_seller": False,
            "locations": None,
        } | overrides
        self.entities.append(row)
        return row["entity_id"]

    def event(
        self, entity_id: str, event_type: str, occurred_on: date, recorded_on: date | None = None, **overrides
    ) -> str:
        row = {
            "event_id": f"E{len(self.events) + 1:06d}",
            "entity_id": entity_id,
            "event_type": event_type,
            "occurred_on": occurred_on,
            "recorded_on": recorded_on or occurred_on,
            "quantity": 1,
            "amount": None,
            "repaired_on": None,
        } | overrides
        self.events.append(row)
        return row["event_id"]

    def listing(
        self,
        entity_id: str,
        list_name: str,
        entered_on: date,
        removed_on: date | None = None,
        basis: str | None = "市监信〔2023〕1号",
    ) -> None:
        self.lists.append(
            {
                "entity_id": entity_id,
                "list": list_name,
                "entered_on": entered_on,
                "removed_on": removed_on,
                "basis": basis,
            }
        )

    def frames(self) -> dict[str, pd.DataFrame]:
        out = {}
        for table, rows in (("entities", self.entities), ("events", self.events), ("lists", self.lists)):
            columns = {"entities": ENTITIES, "events": EVENTS, "lists": LISTS}[table].column_names
            frame = pd.DataFrame(rows, columns=columns)
            for column in columns:
                if column.endswith("_on"):
                    frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ms]")
            if table == "events":
                frame["quantity"] = frame["quantity"].astype("int64")
                frame["amount"] = frame["amount"].astype("float64")
            if table == "entities":
                frame["registered_capital"] = frame["registered_capital"].astype("float64")
                frame["online_seller"] = frame["online_seller"].astype(bool)
                frame["locations"] = frame["locations"].astype("Int64")
            out[table] = frame
        return out

    def dataset(self) -> Dataset:
        f = self.frames()
        return Dataset.from_frames(f["entities"], f["events"], f["lists"])

    def write(self, folder, fmt: str = "parquet") -> None:
        write_tables(folder, self.frames(), fmt)


def write_tables(folder, tables: dict[str, pd.DataFrame | None], fmt: str = "parquet") -> None:
    """Write a dataset's tables into ``folder`` as Parquet or CSV (a table given as None is left out)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if frame is None:
            continue
        if fmt == "parquet":
            frame.to_parquet(folder / f"{name}.parquet", index=False)
        else:
            frame.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")


@pytest.fixture
def history() -> History:
    return History()


@pytest.fixture
def private_stores(tmp_path, monkeypatch):
    """A private MLflow store (``tmp_path/mlruns``) and service database for one test that runs the CLI."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    monkeypatch.setenv("IPCREDIT_DATABASE_URL", f"sqlite:///{tmp_path / 'service.db'}")
    (tmp_path / "mlruns").mkdir()
    return tmp_path


@pytest.fixture(autouse=True)
def _isolated_mlflow_tracking_uri():
    """``mlflow.set_tracking_uri`` also sets ``MLFLOW_TRACKING_URI`` in the process environment; restore it
    after every test so one test's temporary store never leaks into the next (or into the notebook)."""
    import os

    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local Spark session (``local[2]``) for every Spark test of this process; skipped, with the reason
    printed, only when there is no Java to run it. pyspark itself is a test dependency (``.[spark]``): its
    absence fails the tests rather than skipping them."""
    from features.spark import SparkSettings, java_problem, spark_session

    problem = java_problem()
    if problem:
        pytest.skip(problem)
    settings = SparkSettings(
        master="local[2]",
        driver_memory="1g",
        shuffle_partitions=4,
        local_dir=tmp_path_factory.mktemp("spark-local"),
        config={"spark.sql.execution.arrow.maxRecordsPerBatch": "2000", "spark.python.worker.reuse": "true"},
    )
    session = spark_session(settings, app_name="ipcredit-tests")
    yield session
    session.stop()
