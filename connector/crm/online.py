"""`connector validate --online`: one checker per CRM, run for every CRM the mappings configure.

A checker takes the settings (to reach the CRM) and the validated mappings, and returns the
mapping issues only the live CRM can reveal, each at the file:line to change. The CLI loops over
`mappings.crms`; a CRM without a checker here is reported as not checked, never silently passed.
"""

from __future__ import annotations

from collections.abc import Callable

from connector.errors import MappingIssue
from connector.mapping.loader import Mappings
from connector.settings import Settings

OnlineCheck = Callable[[Settings, Mappings], list[MappingIssue]]


def _hubspot(settings: Settings, mappings: Mappings) -> list[MappingIssue]:
    from connector.crm.factory import hubspot_adapter
    from connector.crm.hubspot_online import check_online

    assert mappings.hubspot is not None
    adapter = hubspot_adapter(settings, mappings.hubspot)
    try:
        return check_online(mappings, adapter)
    finally:
        adapter.close()


CHECKS: dict[str, OnlineCheck] = {"hubspot": _hubspot}
"""CRM name (as in `Mappings.crms`) -> its online checker."""
