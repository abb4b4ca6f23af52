"""Runtime settings: the only reader of the environment.

Everything comes from `CONNECTOR_*` variables (or a `.env` file in the working directory), so a
container needs no config file besides the mappings. Tokens are `SecretStr` end to end: they are
unwrapped only where a client is built, never printed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connector.errors import ConfigError

ENV_PREFIX = "CONNECTOR_"


class Settings(BaseSettings):
    """Typed view of the environment. Field docs double as the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        secrets_dir=None,
    )

    state_url: str = Field(
        default="sqlite:///connector-state.db",
        description="SQLAlchemy URL of the state database (SQLite file by default).",
    )
    mappings_dir: Path = Field(default=Path("mappings"), description="Folder holding the mapping YAML files.")
    hubspot_token: SecretStr | None = Field(
        default=None,
        description="HubSpot private-app access token (scopes: crm.objects.contacts.read/write, "
        "crm.objects.owners.read).",
    )
    hubspot_base_url: str = Field(
        default="https://api.hubapi.com",
        description="HubSpot API base URL; point it at the sandbox for tests.",
    )
    hubspot_search_lag: float = Field(
        default=60.0,
        ge=0,
        description="Seconds HubSpot search may lag behind writes; a run reads changes older than this, "
        "later ones wait for the next run (so none is skipped while the index catches up).",
    )
    hubspot_workers: int = Field(
        default=8,
        ge=1,
        le=64,
        description="HubSpot requests in flight at most (bulk reads and batch writes run concurrently, "
        "paced under the rate limits; more helps when HubSpot answers slowly).",
    )
    hubspot_ten_secondly_limit: int | None = Field(
        default=None,
        ge=1,
        description="HubSpot requests per rolling 10 s to pace under; default from hubspot.yaml's tier "
        "(100 free/starter, 190 professional/enterprise; 250 with the API limit increase).",
    )
    hubspot_search_per_second: int | None = Field(
        default=None, ge=1, description="CRM search requests per second to pace under (default 5)."
    )
    hubspot_daily_limit: int | None = Field(
        default=None,
        ge=1,
        description="HubSpot requests per day; default from the tier (250,000 / 650,000 / 1,000,000). "
        "The X-HubSpot-RateLimit-Daily-Remaining header, when sent, takes precedence.",
    )
    hubspot_daily_reserve: int = Field(
        default=0,
        ge=0,
        description="Daily HubSpot calls to leave for other integrations: the run stops cleanly "
        "(exit 4, cursors saved) when only this many are left.",
    )
    request_timeout: float = Field(
        default=30.0, gt=0, description="Seconds before one HTTP call is abandoned."
    )
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="Attempts per HTTP call on transient errors."
    )
    backoff_max: float = Field(default=60.0, gt=0, description="Longest pause between retries, in seconds.")

    @field_validator("hubspot_base_url")
    @classmethod
    def _url_has_scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("state_url")
    @classmethod
    def _state_url_shape(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be a database URL such as sqlite:///state.db or postgresql://host/db")
        return value

    def require_hubspot_token(self) -> SecretStr:
        """The token, or a config error naming the variable: only commands that call HubSpot need it."""
        if self.hubspot_token is None or not self.hubspot_token.get_secret_value().strip():
            raise ConfigError(
                f"{ENV_PREFIX}HUBSPOT_TOKEN is not set: create a HubSpot private app token and export it "
                f"(or run `connector demo` to try the sandbox)."
            )
        return self.hubspot_token


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning pydantic's multi-line report into one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg']}")
        raise ConfigError("; ".join(lines)) from None
