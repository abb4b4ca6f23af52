"""Salesforce auth modes: one validated union, errors that name the variables to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.settings import JwtAuth, PasswordAuth, SessionAuth, load_settings


def test_no_salesforce_auth_means_no_salesforce() -> None:
    settings = load_settings()
    assert settings.salesforce is None
    with pytest.raises(ConfigError, match="CONNECTOR_SALESFORCE_AUTH is not set"):
        settings.require_salesforce()


def test_jwt_reads_the_private_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "server.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("CONNECTOR_SALESFORCE_AUTH", "jwt")
    monkeypatch.setenv("CONNECTOR_SALESFORCE_USERNAME", "integration@acme.com")
    monkeypatch.setenv("CONNECTOR_SALESFORCE_CONSUMER_KEY", "3MVG9-key")
    monkeypatch.setenv("CONNECTOR_SALESFORCE_PRIVATE_KEY_FILE", str(key))
    auth = load_settings().salesforce
    assert isinstance(auth, JwtAuth)
    assert auth.private_key.get_secret_value().startswith("-----BEGIN PRIVATE KEY-----")
    assert auth.login_url == "https://login.salesforce.com"
    assert "abc" not in repr(auth)  # secrets stay secret


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTH": "jwt", "USERNAME": "u@x.com"}, "AUTH=jwt needs CONNECTOR_SALESFORCE_USERNAME, "),
        ({"AUTH": "password", "USERNAME": "u@x.com"}, "AUTH=password needs"),
        ({"AUTH": "session", "SESSION_ID": "x"}, "CONNECTOR_SALESFORCE_INSTANCE_URL"),
        ({"AUTH": "oauth"}, "CONNECTOR_SALESFORCE_AUTH"),
        ({"AUTH": "jwt", "PRIVATE_KEY_FILE": "/nonexistent/key.pem"}, "PRIVATE_KEY_FILE: cannot read"),
        ({"LOGIN_URL": "login.salesforce.com"}, "CONNECTOR_SALESFORCE_LOGIN_URL"),
        ({"API_SHARE": "1.5"}, "CONNECTOR_SALESFORCE_API_SHARE"),
    ],
)
def test_incomplete_settings_name_what_to_set(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(f"CONNECTOR_SALESFORCE_{name}", value)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_settings()


def test_password_and_session_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_SALESFORCE_AUTH", "password")
    monkeypatch.setenv("CONNECTOR_SALESFORCE_USERNAME", "u@x.com")
    monkeypatch.setenv("CONNECTOR_SALESFORCE_PASSWORD", "pw")
    assert isinstance(load_settings().salesforce, PasswordAuth)
    monkeypatch.setenv("CONNECTOR_SALESFORCE_AUTH", "session")
    monkeypatch.setenv("CONNECTOR_SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com/")
    monkeypatch.setenv("CONNECTOR_SALESFORCE_SESSION_ID", "00D!token")
    auth = load_settings().salesforce
    assert isinstance(auth, SessionAuth)
    assert auth.instance_url == "https://acme.my.salesforce.com"
