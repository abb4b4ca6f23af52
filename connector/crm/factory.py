"""Build CRM clients from settings. Tests and `connector demo` pass the emulator URL the same way."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from hubspot import HubSpot
from urllib3.util.retry import Retry

from connector.crm.hubspot import HubSpotAdapter
from connector.crm.pacing import TIER_LIMITS, Pacer, PacingLimits
from connector.crm.retry import RetryPolicy
from connector.mapping.schema import HubSpotMapping
from connector.observability import register_secret
from connector.settings import Settings


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
