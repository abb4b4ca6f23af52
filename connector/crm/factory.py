"""Build CRM clients from settings. Tests and `connector demo` pass the emulator URL the same way."""

from __future__ import annotations

from datetime import timedelta

from hubspot import HubSpot
from urllib3.util.retry import Retry

from connector.crm.hubspot import HubSpotAdapter
from connector.crm.retry import RetryPolicy
from connector.mapping.schema import HubSpotMapping
from connector.observability import register_secret
from connector.settings import Settings


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.max_attempts, max_wait=settings.backoff_max)


def hubspot_adapter(settings: Settings, mapping: HubSpotMapping) -> HubSpotAdapter:
    """A HubSpot adapter for the configured portal (or the sandbox, via CONNECTOR_HUBSPOT_BASE_URL)."""
    token = settings.require_hubspot_token().get_secret_value()
    register_secret(token)
    client = HubSpot(
        access_token=token,
        host=settings.hubspot_base_url,
        # The SDK's urllib3 retry never retries POST/PATCH and hides DAILY 429s: turn it off and let
        # the shared tenacity policy decide.
        retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
    )
    return HubSpotAdapter(
        client,
        mapping,
        retry_policy(settings),
        timeout=settings.request_timeout,
        search_lag=timedelta(seconds=settings.hubspot_search_lag),
    )
