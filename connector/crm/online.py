"""`connector validate --online`: one checker per CRM, run for every configured CRM with credentials.

A checker takes the settings (to reach the CRM) and the validated mappings, and returns the
mapping issues only the live CRM can reveal, each at the file:line to change. The CLI loops over
`mappings.crms`; a CRM whose mapping is present but whose credentials are not set is not checked
(as `sync` skips it), and with none to check the command says which variables to set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from connector.errors import MappingIssue
from connector.mapping.loader import Mappings
from connector.settings import Settings


@dataclass(frozen=True)
class OnlineCheck:
    label: str
    credentials: str
    """The variables to set, for the message when no CRM can be checked."""
    configured: Callable[[Settings], bool]
    check: Callable[[Settings, Mappings], list[MappingIssue]]


def _hubspot_configured(settings: Settings) -> bool:
    return settings.hubspot_token is not None and bool(settings.hubspot_token.get_secret_value().strip())


def _hubspot(settings: Settings, mappings: Mappings) -> list[MappingIssue]:
    from connector.crm.factory import hubspot_adapter
    from connector.crm.hubspot_online import check_online

    assert mappings.hubspot is not None
    adapter = hubspot_adapter(settings, mappings.hubspot)
    others = any(
        crm != "hubspot" and CHECKS[crm].configured(settings) for crm in mappings.crms if crm in CHECKS
    )
    try:
        return check_online(mappings, adapter, only_crm=not others)
    finally:
        adapter.close()


def _salesforce(settings: Settings, mappings: Mappings) -> list[MappingIssue]:
    from connector.crm.factory import salesforce_adapter
    from connector.crm.salesforce_online import check_online
    from connector.mapping.source import read_document

    assert mappings.salesforce is not None
    path = settings.mappings_dir / "salesforce.yaml"
    adapter = salesforce_adapter(settings, mappings.salesforce)
    return check_online(adapter, mappings.salesforce, read_document(path, str(path)))


CHECKS: dict[str, OnlineCheck] = {
    "hubspot": OnlineCheck("HubSpot", "CONNECTOR_HUBSPOT_TOKEN", _hubspot_configured, _hubspot),
    "salesforce": OnlineCheck(
        "Salesforce",
        "CONNECTOR_SALESFORCE_AUTH and its variables",
        lambda settings: settings.salesforce is not None,
        _salesforce,
    ),
}
"""CRM name (as in `Mappings.crms`) -> its online checker."""
