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
    hubspot_token_file: Path | None = Field(
        default=None,
        description="File holding the HubSpot token (a mounted Docker/Kubernetes secret); used when "
        "CONNECTOR_HUBSPOT_TOKEN is not set.",
    )
    hubspot_account: str = Field(
        default="default",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="A name for the HubSpot portal (e.g. its portal id); leases are per account and object.",
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
    request_timeout: float = Field(
        default=30.0, gt=0, description="Seconds before one HTTP call is abandoned."
    )
    max_attempts: int = Field(
        default=5, ge=1, le=20, description="Attempts per HTTP call on transient errors."
    )
    backoff_max: float = Field(default=60.0, gt=0, description="Longest pause between retries, in seconds.")
    lease_ttl: float = Field(
        default=600.0,
        ge=10,
        description="Seconds a run's lease on a scope lasts without renewal (renewed every page); after "
        "that a crashed run's scope can be taken over.",
    )
    write_retry_limit: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Tries per rejected record write before it is parked for `connector retry-failed`.",
    )
    write_retry_backoff: float = Field(
        default=900.0,
        ge=0,
        description="Seconds before a rejected write is tried again by a later run; doubles per try.",
    )

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
        """The token, or a config error naming the variable: only commands that call HubSpot need it.

        Secrets come only from the environment, or from a file the environment names (how Docker
        and Kubernetes mount secrets); the value stays a `SecretStr` until a client is built.
        """
        if self.hubspot_token is not None and self.hubspot_token.get_secret_value().strip():
            return SecretStr(self.hubspot_token.get_secret_value().strip())
        if self.hubspot_token_file is not None:
            path = self.hubspot_token_file
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"{ENV_PREFIX}HUBSPOT_TOKEN_FILE: cannot read {path} ({exc.strerror or exc}); mount the "
                    "secret there or set CONNECTOR_HUBSPOT_TOKEN"
                ) from None
            if not value:
                raise ConfigError(f"{ENV_PREFIX}HUBSPOT_TOKEN_FILE: {path} is empty; put the token in it")
            return SecretStr(value)
        raise ConfigError(
            f"{ENV_PREFIX}HUBSPOT_TOKEN is not set: create a HubSpot private app token and export it, or "
            f"name a file holding it in {ENV_PREFIX}HUBSPOT_TOKEN_FILE (or run `connector demo` to try "
            "the sandbox)."
        )


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
