"""Typed settings for every command and the service, read from the environment when asked for."""

from __future__ import annotations

from datetime import date
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Where things live. ``MLFLOW_TRACKING_URI`` and ``IPCREDIT_*`` variables override the defaults."""

    model_config = SettingsConfigDict(env_prefix="IPCREDIT_", extra="ignore")

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the service database; default an SQLite file under var/"
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias="MLFLOW_TRACKING_URI",
        description="MLflow tracking URI; default sqlite:///mlruns/mlflow.db at the project root",
    )
    policy_path: Path = Field(
        default=PROJECT_ROOT / "models" / "policy.toml", description="the tiering and sampling policy file"
    )
    model_name: str = "ipcredit"
    model_uri: str | None = Field(default=None, description="model to serve; default models:/ipcredit@champion")
    data_dir: Path = Field(default=PROJECT_ROOT / "var", description="where the default SQLite file lives")
    migrate_on_start: bool = Field(
        default=True, description="run the service database migrations when the service starts"
    )
    dataset_root: Path | None = Field(
        default=None,
        description="the only folder POST /v1/score-runs and `ipcredit import-scores` read datasets and score "
        "files from (symlinks out of it refused); default data_dir",
    )
    today: date | None = Field(
        default=None,
        description="pin 'today' (the latest date any request or command may name); default the server's UTC date",
    )
    # Request limits, enforced before a body is read or a token checked (serving/limits.py).
    max_body_bytes: int = Field(
        default=16 * 2**20, ge=1024, description="largest request body accepted (bytes); larger ones get 413"
    )
    max_inflight_body_bytes: int = Field(
        default=64 * 2**20,
        ge=1024,
        description="request body bytes a process holds at once over all requests; past it 503 with Retry-After",
    )
    rate_limit_per_second: float = Field(
        default=50.0, ge=0, description="requests per second per client address (token bucket); 0 turns it off"
    )
    rate_limit_burst: int = Field(default=100, ge=1, description="requests a client may send at once (bucket size)")
    whatif_queue: int = Field(
        default=16, ge=1, description="what-if scorings waiting or running per process; more get 503"
    )
    # Background jobs (POST /v1/score-runs) and the database.
    job_queue: int = Field(default=4, ge=1, description="score-run jobs waiting per process; more get 503")
    statement_timeout_ms: int = Field(
        default=30_000, ge=0, description="PostgreSQL statement_timeout of the service's requests; 0 turns it off"
    )
    job_statement_timeout_ms: int = Field(
        default=3_600_000, ge=0, description="PostgreSQL statement_timeout inside a score-run job"
    )
    token_days: int = Field(default=90, ge=1, le=3650, description="lifetime of a new API token unless given")

    @cached_property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"

    @cached_property
    def artifact_root(self) -> str:
        return (PROJECT_ROOT / "mlruns" / "artifacts").as_uri()

    @cached_property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'ipcredit.db'}"

    @cached_property
    def serving_model_uri(self) -> str:
        return self.model_uri or f"models:/{self.model_name}@champion"

    @cached_property
    def import_root(self) -> Path:
        """The folder server-side datasets and score files must lie in (``dataset_root``, else ``data_dir``)."""
        return Path(self.dataset_root or self.data_dir).expanduser().resolve()

    @cached_property
    def audit_spool(self) -> Path:
        """Where read-audit rows wait on disk while the database is unavailable."""
        return Path(self.data_dir) / "audit-spool"


def load_settings() -> Settings:
    """Read the settings from the environment (called by the CLI and ``create_app``, never at import)."""
    return Settings()
