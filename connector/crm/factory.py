"""Build CRM clients from settings. Tests and `connector demo` pass the emulator URL the same way."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import timedelta
from typing import Any
from xml.sax.saxutils import escape

import jwt
import requests
from hubspot import HubSpot
from simple_salesforce.api import Salesforce
from simple_salesforce.login import soap_login, token_login
from urllib3.util.retry import Retry

from connector.crm.base import CrmAdapter
from connector.crm.hubspot import HubSpotAdapter
from connector.crm.pacing import TIER_LIMITS, Pacer, PacingLimits
from connector.crm.retry import RetryPolicy
from connector.crm.salesforce import SalesforceAdapter, translate
from connector.errors import ConfigError
from connector.mapping.loader import Mappings
from connector.mapping.schema import HubSpotMapping, SalesforceMapping
from connector.model import Crm
from connector.observability import register_secret
from connector.settings import JwtAuth, PasswordAuth, SessionAuth, Settings

log = logging.getLogger("connector.factory")


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.max_attempts, max_wait=settings.backoff_max)


def hubspot_limits(settings: Settings, mapping: HubSpotMapping) -> PacingLimits:
    """The tier's published limits (hubspot.yaml `tier`), overridden by any CONNECTOR_HUBSPOT_* limit."""
    tier = TIER_LIMITS[mapping.tier]
    return dataclasses.replace(
        tier,
        ten_secondly=settings.hubspot_ten_secondly_limit or tier.ten_secondly,
        search_per_second=settings.hubspot_search_per_second or tier.search_per_second,
        daily=settings.hubspot_daily_limit or tier.daily,
        daily_reserve=settings.hubspot_daily_reserve,
    )


def hubspot_adapter(settings: Settings, mapping: HubSpotMapping) -> HubSpotAdapter:
    """A HubSpot adapter for the configured portal (or the sandbox, via CONNECTOR_HUBSPOT_BASE_URL).

    One pacer per adapter, so every thread of the run shares the account's limits.
    """
    token = settings.require_hubspot_token().get_secret_value()
    register_secret(token)
    client = HubSpot(
        access_token=token,
        host=settings.hubspot_base_url,
        # The SDK's urllib3 retry never retries POST/PATCH and hides DAILY 429s: turn it off and let
        # the shared tenacity policy decide.
        retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
        # One pooled connection per worker (plus the prefetching reader), so none is re-opened.
        connection_pool_maxsize=settings.hubspot_workers + 2,
    )
    return HubSpotAdapter(
        client,
        mapping,
        retry_policy(settings),
        timeout=settings.request_timeout,
        search_lag=timedelta(seconds=settings.hubspot_search_lag),
        pacer=Pacer(hubspot_limits(settings, mapping)),
        workers=settings.hubspot_workers,
        prefetch_pages=1,
    )


# --------------------------------------------------------------------------- Salesforce


class TimeoutSession(requests.Session):
    """A requests session with a default timeout: simple-salesforce has none (api-facts §7.1), and
    `query_all_iter`/`query_more` and `describe` do not all pass one through."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def salesforce_session(settings: Settings) -> requests.Session:
    """The HTTP session for Salesforce. With a CA bundle (the sandbox's test CA) the environment's
    REQUESTS_CA_BUNDLE and proxies are ignored, because requests lets them override `verify`."""
    session = TimeoutSession(settings.request_timeout)
    if settings.salesforce_ca_bundle is not None:
        if not settings.salesforce_ca_bundle.is_file():
            raise ConfigError(
                f"CONNECTOR_SALESFORCE_CA_BUNDLE: {settings.salesforce_ca_bundle} is not a file"
            )
        session.verify = str(settings.salesforce_ca_bundle)
        session.trust_env = False
    return session


def salesforce_login(
    auth: JwtAuth | PasswordAuth | SessionAuth, session: requests.Session, version: str
) -> Salesforce:
    """A logged-in client for one auth mode. JWT and password log in at `login_url` (any host, so the
    sandbox works); a session id is used as given."""
    if isinstance(auth, SessionAuth):
        token = auth.session_id.get_secret_value()
        register_secret(token)
        return Salesforce(instance_url=auth.instance_url, session_id=token, session=session, version=version)
    if isinstance(auth, JwtAuth):
        register_secret(auth.private_key.get_secret_value())
        claims = {
            "iss": auth.consumer_key.get_secret_value(),
            "sub": auth.username,
            "aud": auth.login_url,
            "exp": int(time.time()) + 180,
        }
        try:
            assertion = jwt.encode(claims, auth.private_key.get_secret_value(), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConfigError(
                "CONNECTOR_SALESFORCE_PRIVATE_KEY(_FILE): not a usable RSA private key in PEM form "
                f"({type(exc).__name__})"
            ) from None
        data = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        url = f"{auth.login_url}/services/oauth2/token"
        try:
            token, instance = token_login(url, data, "login", str(claims["iss"]), None, None, session)
        except Exception as exc:  # noqa: BLE001 - translated (and redacted) below
            raise translate(exc, "logging in with the JWT bearer flow") from None
    else:
        register_secret(auth.password.get_secret_value())
        body = _SOAP_LOGIN.format(
            username=escape(auth.username),
            password=escape(auth.password.get_secret_value() + auth.security_token.get_secret_value()),
        )
        headers = {"content-type": "text/xml", "charset": "UTF-8", "SOAPAction": "login"}
        url = f"{auth.login_url}/services/Soap/u/{version}"
        try:
            token, instance = soap_login(url, body, headers, None, session)
        except Exception as exc:  # noqa: BLE001 - translated (and redacted) below
            raise translate(exc, "logging in with username and password") from None
    register_secret(str(token))
    return Salesforce(instance=instance, session_id=token, session=session, version=version)


_SOAP_LOGIN = """<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:urn="urn:partner.soap.sforce.com">
  <env:Header><urn:CallOptions><urn:client>lifecycle-connector</urn:client></urn:CallOptions></env:Header>
  <env:Body><urn:login><urn:username>{username}</urn:username><urn:password>{password}</urn:password></urn:login></env:Body>
</env:Envelope>"""


def salesforce_adapter(settings: Settings, mapping: SalesforceMapping) -> SalesforceAdapter:
    """A Salesforce adapter for the configured org (or the sandbox, via the login/instance URL)."""
    auth = settings.require_salesforce()
    session = salesforce_session(settings)
    version = mapping.api_version
    client = salesforce_login(auth, session, version)
    relogin = None if isinstance(auth, SessionAuth) else (lambda: salesforce_login(auth, session, version))
    return SalesforceAdapter(
        client,
        mapping,
        retry_policy(settings),
        timeout=settings.request_timeout,
        relogin=relogin,
        api_share=settings.salesforce_api_share,
    )


def build_adapters(settings: Settings, mappings: Mappings) -> dict[Crm, CrmAdapter]:
    """An adapter per CRM that has both a mapping file and credentials.

    A mapping without credentials is skipped with a warning (a HubSpot-only team can keep the
    example salesforce.yaml around); no CRM at all is a config error naming the variables.
    """
    adapters: dict[Crm, CrmAdapter] = {}
    skipped: list[str] = []
    if mappings.hubspot is not None:
        if settings.hubspot_token is not None and settings.hubspot_token.get_secret_value().strip():
            adapters["hubspot"] = hubspot_adapter(settings, mappings.hubspot)
        else:
            skipped.append(
                "hubspot.yaml is present but CONNECTOR_HUBSPOT_TOKEN is not set: HubSpot is skipped"
            )
    if mappings.salesforce is not None:
        if settings.salesforce is not None:
            adapters["salesforce"] = salesforce_adapter(settings, mappings.salesforce)
        else:
            skipped.append(
                "salesforce.yaml is present but CONNECTOR_SALESFORCE_AUTH is not set: Salesforce is skipped"
            )
    if adapters:
        for message in skipped:
            log.warning(message, extra={"event": "crm.skipped"})
    else:
        raise ConfigError(
            "no CRM to sync: set CONNECTOR_HUBSPOT_TOKEN (for hubspot.yaml) and/or CONNECTOR_SALESFORCE_AUTH "
            "with its credentials (for salesforce.yaml), or run `connector demo` to try the sandbox"
        )
    return adapters
