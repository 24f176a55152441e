"""Typed settings for every command and the service, read from the environment when asked for."""

from __future__ import annotations

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
        default=None, description="if set, POST /v1/score-runs only reads dataset folders under it"
    )

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


def load_settings() -> Settings:
    """Read the settings from the environment (called by the CLI and ``create_app``, never at import)."""
    return Settings()
