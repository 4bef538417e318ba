"""Settings, read once from the environment (prefix ``CLEARLINE_``) or a ``.env`` file."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # hide_input_in_errors: a refused value is not echoed (a near-miss of the data key or the secret key would be
    # printed in full on the console and in the logs).
    model_config = SettingsConfigDict(
        env_prefix="CLEARLINE_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'clearline.db'}",
        description="SQLAlchemy URL; SQLite file in the working directory by default.",
    )
    secret_key: str = Field(
        default="dev-insecure-change-me",
        description="Signs sessions, CSRF tokens and click ids; set a long random value in production.",
    )
    data_key: SecretStr | None = Field(
        default=None,
        description=(
            "Encrypts brand signing secrets at rest (AES-256-GCM): 32 bytes in base64. Unset, a key derived from "
            "secret_key (HKDF-SHA256) is used, so changing secret_key then also needs the secrets re-encrypted."
        ),
    )
    timezone: str = Field(default="Europe/Berlin", description="Organisation time zone (IANA name).")
    business_days: list[int] = Field(default=[0, 1, 2, 3, 4], description="Working weekdays, Monday=0.")
    business_start: dt.time = Field(default=dt.time(9, 0), description="Start of the business day, local.")
    business_end: dt.time = Field(default=dt.time(17, 0), description="End of the business day, local.")
    holidays: list[dt.date] = Field(default_factory=list, description="Non-working dates, local.")
    session_max_age_hours: int = 12
    approval_sla_hours: dict[str, float] = Field(
        default={"content_check": 24, "legal_clearance": 48, "claims_rework": 72},
        description="Business hours per approval step kind.",
    )
    storage_dir: str = Field(default="var/files", description="Where uploaded creatives and proofs are kept.")
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, description="Largest accepted upload.")
    click_logging: bool = Field(default=True, description="Store clicks (off only to measure its cost).")
    link_poll_seconds: float = Field(default=0.5, description="How often each worker follows link changes.")
    run_jobs: bool = Field(default=True, description="Run the periodic jobs consumer inside `serve`.")
    drain_in_serve: bool = Field(
        default=True,
        description="Process stored orders and refunds inside `serve`; false when `clearline worker` does it.",
    )
    huey_storage: str = Field(default="sqlite", description="'sqlite' (embedded) or a redis:// URL.")

    @field_validator("data_key")
    @classmethod
    def _data_key_is_32_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # an empty CLEARLINE_DATA_KEY= means "derive it", not "a key of no bytes"
        from clearline.kit.sealing import parse_data_key

        parse_data_key(value.get_secret_value())  # raises ValueError, which names the variable's problem
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        ZoneInfo(value)
        return value

    @field_validator("business_end")
    @classmethod
    def _day_not_empty(cls, value: dt.time, info) -> dt.time:  # type: ignore[no-untyped-def]
        start = info.data.get("business_start")
        if start is not None and value <= start:
            raise ValueError("business_end must be after business_start")
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
