"""Validated settings, read from the environment (``HOTWASH_*``) when asked for, never at import."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from hotwash.errors import ConfigError

DEFAULT_HOME = Path(".hotwash")


class Settings(BaseSettings):
    """Everything hotwash reads from its environment.

    ``database_url`` defaults to a SQLite file under ``home``; teams point it at PostgreSQL
    (``postgresql+psycopg://user@host/db``).
    """

    model_config = SettingsConfigDict(env_prefix="HOTWASH_", extra="ignore")

    home: Path = Field(default=DEFAULT_HOME, description="Directory of the SQLite store and quarantine files.")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the store.")
    manifest: Path = Field(default=Path("hotwash.yaml"), description="The feature manifest.")
    max_record_bytes: int = Field(default=1_048_576, gt=0, description="Largest accepted telemetry record.")
    max_body_bytes: int = Field(default=32 * 1_048_576, gt=0, description="Largest HTTP body, decompressed.")
    batch_size: int = Field(default=5000, gt=0, le=20_000, description="Events per database transaction.")
    check_workers: int = Field(default=0, ge=0, le=64,
                               description="Processes for the per-event checks of bulk ingest (0: one per CPU).")
    ingest_token: str | None = Field(default=None, description="Bearer token required by the ingest endpoints.")
    admin_token: str | None = Field(default=None, description="Bootstrap bearer token with the admin role.")
    trusted_user_header: str | None = Field(
        default=None, description="Header set by a trusted reverse proxy naming the logged-in person.")
    session_hours: int = Field(default=12, gt=0, le=24 * 30, description="Lifetime of a web login.")
    flag_max_age: int = Field(
        default=5, ge=0, le=3600,
        description="Seconds applications may cache a flag read (Cache-Control max-age of /api/v1/flags).")
    dev_mode: bool = Field(default=False, description="Allow an unauthenticated server on a non-loopback address.")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'hotwash.db').as_posix()}"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"HOTWASH_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
