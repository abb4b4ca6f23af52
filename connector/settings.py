"""Runtime settings: the only reader of the environment.

Everything comes from `CONNECTOR_*` variables (or a `.env` file in the working directory), so a
container needs no config file besides the mappings. Tokens are `SecretStr` end to end: they are
unwrapped only where a client is built, never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from connector.errors import ConfigError

ENV_PREFIX = "CONNECTOR_"
SF = f"{ENV_PREFIX}SALESFORCE_"


class _Auth(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class JwtAuth(_Auth):
    """OAuth 2.0 JWT bearer flow: the server-to-server default (a connected app with a certificate)."""

    mode: Literal["jwt"] = "jwt"
    username: str = Field(min_length=1)
    consumer_key: SecretStr
    private_key: SecretStr
    login_url: str


class PasswordAuth(_Auth):
    """Username + password + security token (SOAP login); for orgs without a connected app."""

    mode: Literal["password"] = "password"
    username: str = Field(min_length=1)
    password: SecretStr
    security_token: SecretStr = SecretStr("")
    login_url: str


class SessionAuth(_Auth):
    """An instance URL and a session id (access token) obtained elsewhere; cannot re-login."""

    mode: Literal["session"] = "session"
    instance_url: str
    session_id: SecretStr


SalesforceAuth = Annotated[JwtAuth | PasswordAuth | SessionAuth, Field(discriminator="mode")]
_AUTH = TypeAdapter(SalesforceAuth)
_AUTH_VARIABLES = {
    "jwt": ("USERNAME", "CONSUMER_KEY", "PRIVATE_KEY_FILE or PRIVATE_KEY"),
    "password": ("USERNAME", "PASSWORD", "SECURITY_TOKEN"),
    "session": ("INSTANCE_URL", "SESSION_ID"),
}


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

    salesforce_account: str = Field(
        default="default",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="A name for the Salesforce org (e.g. its org id); leases are per account and object, "
        "so two deployments writing different orgs never wait for each other.",
    )
    salesforce_auth: Literal["jwt", "password", "session"] | None = Field(
        default=None, description="Salesforce auth mode: jwt (default for servers), password or session."
    )
    salesforce_username: str | None = None
    salesforce_consumer_key: SecretStr | None = None
    salesforce_private_key_file: Path | None = None
    salesforce_private_key: SecretStr | None = None
    salesforce_password: SecretStr | None = None
    salesforce_security_token: SecretStr | None = None
    salesforce_instance_url: str | None = None
    salesforce_session_id: SecretStr | None = None
    salesforce_login_url: str = Field(
        default="https://login.salesforce.com",
        description="Where jwt/password auth logs in: login.salesforce.com, test.salesforce.com "
        "(sandboxes) or your My Domain URL.",
    )
    salesforce_ca_bundle: Path | None = Field(
        default=None,
        description="PEM file of extra CAs to trust for Salesforce (the sandbox's test CA); when set, "
        "REQUESTS_CA_BUNDLE and proxy variables are ignored for Salesforce.",
    )
    salesforce_api_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Largest share of the org's remaining daily API requests one run may use.",
    )
    email_fold_plus_tags: bool = Field(
        default=False,
        description="Treat ana+news@x.com and ana@x.com as one person when matching across CRMs.",
    )

    _salesforce: JwtAuth | PasswordAuth | SessionAuth | None = PrivateAttr(default=None)

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

    @field_validator("salesforce_login_url", "salesforce_instance_url")
    @classmethod
    def _sf_url_has_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _salesforce_auth_is_complete(self) -> Settings:
        """Build the auth object for the chosen mode now, so a missing variable fails at startup."""
        if self.salesforce_auth is None:
            return self
        private_key = self.salesforce_private_key
        if self.salesforce_private_key_file is not None:
            try:
                private_key = SecretStr(self.salesforce_private_key_file.read_text(encoding="utf-8"))
            except OSError as exc:
                raise ValueError(
                    f"{SF}PRIVATE_KEY_FILE: cannot read {self.salesforce_private_key_file} ({exc.strerror})"
                ) from None
        raw = {
            "mode": self.salesforce_auth,
            "username": self.salesforce_username,
            "consumer_key": self.salesforce_consumer_key,
            "private_key": private_key,
            "password": self.salesforce_password,
            "security_token": self.salesforce_security_token or SecretStr(""),
            "login_url": self.salesforce_login_url,
            "instance_url": self.salesforce_instance_url,
            "session_id": self.salesforce_session_id,
        }
        models: dict[str, type[_Auth]] = {"jwt": JwtAuth, "password": PasswordAuth, "session": SessionAuth}
        fields = models[self.salesforce_auth].model_fields
        try:
            self._salesforce = _AUTH.validate_python(
                {k: v for k, v in raw.items() if k in fields and v is not None}
            )
        except ValidationError:
            needed = ", ".join(SF + name for name in _AUTH_VARIABLES[self.salesforce_auth])
            raise ValueError(
                f"{SF}AUTH={self.salesforce_auth} needs {needed}; one of them is missing or empty"
            ) from None
        return self

    @property
    def salesforce(self) -> JwtAuth | PasswordAuth | SessionAuth | None:
        """The validated Salesforce auth, or None when CONNECTOR_SALESFORCE_AUTH is not set."""
        return self._salesforce

    def require_salesforce(self) -> JwtAuth | PasswordAuth | SessionAuth:
        if self._salesforce is None:
            raise ConfigError(
                f"{SF}AUTH is not set: choose jwt (with {SF}USERNAME, {SF}CONSUMER_KEY and "
                f"{SF}PRIVATE_KEY_FILE), password or session (or run `connector demo`)."
            )
        return self._salesforce

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
            if not err["loc"]:  # a whole-settings check: its message names the variables itself
                lines.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg']}")
        raise ConfigError("; ".join(lines)) from None
