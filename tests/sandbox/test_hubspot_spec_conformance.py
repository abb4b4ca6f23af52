"""The emulator's routes, requests and responses against HubSpot's official OpenAPI specs.

Every SDK test in this folder already runs behind `SpecChecker` (see conftest); this file adds a
sweep over every endpoint, proves the checker can fail, and proves each patched spec deviation is
real (the published spec rejects what the live API sends).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
)
from hubspot.crm.objects.emails import BatchReadInputSimplePublicObjectId as EmailBatchRead
from werkzeug.test import Client

from connector.sandbox.hubspot_app import ROUTES, HubSpotEmulator
from connector.sandbox.hubspot_store import HubSpotStore
from connector.sandbox.server import ServerThread

from .seed import TOKEN, add_contacts
from .spec_check import SPEC_DIR, SPEC_FILES, SpecChecker, load_spec, spec_file_for

pytestmark = pytest.mark.skipif(
    not SPEC_DIR.is_dir(),
    reason=f"HubSpot OpenAPI specs not found at {SPEC_DIR} (expected in ../shared/specs/hubspot)",
)

T = 5


def seed(store: HubSpotStore) -> None:
    add_contacts(store, range(1, 30), lifecyclestage="lead")
    for email_id in range(900, 1420):
        store.associate("contacts", "1", "emails", str(email_id))
    store.engagements["emails"] = {
        "900": {"hs_createdate": "2026-02-01T09:00:00.000Z", "hs_email_subject": "Hi"}
    }
    store.events = [
        {
            "id": f"ev{i}",
            "eventType": "e_visited_page",
            "objectType": "contact",
            "objectId": "1",
            "occurredAt": f"2026-03-0{i}T10:00:00.000Z",
            "properties": {"hs_url": "https://example.com/pricing"},
        }
        for i in range(1, 4)
    ]


def exercise_every_endpoint(client: HubSpot, emulator: HubSpotEmulator) -> None:
    """One call of each kind the connector makes, success and failure shapes both."""
    contacts = client.crm.contacts
    search = PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}]}],
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        properties=["lifecyclestage", "hs_lead_status"],
        limit=5,
        after="0",
    )
    contacts.search_api.do_search(public_object_search_request=search, _request_timeout=T)
    contacts.batch_api.read(
        batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
            inputs=[{"id": "1"}, {"id": "404"}],
            properties=["email"],
            properties_with_history=["lifecyclestage"],
        ),
        _request_timeout=T,
    )
    contacts.batch_api.update(
        batch_input_simple_public_object_batch_input=BatchInputSimplePublicObjectBatchInput(
            inputs=[
                {
                    "id": "1",
                    "properties": {"lifecyclestage": "marketingqualifiedlead", "hubspot_owner_id": "501"},
                },
                {"id": "2", "properties": {"lifecyclestage": "nope"}},
                {"id": "404", "properties": {"hs_lead_status": "NEW"}},
            ]
        ),
        _request_timeout=T,
    )
    contacts.basic_api.get_by_id("1", properties=["email"], _request_timeout=T)
    contacts.basic_api.get_page(limit=10, _request_timeout=T)
    contacts.basic_api.update(
        "2",
        simple_public_object_input=SimplePublicObjectInput(properties={"hs_lead_status": "OPEN"}),
        _request_timeout=T,
    )
    client.crm.owners.owners_api.get_page(limit=1, archived=False, _request_timeout=T)
    client.crm.owners.owners_api.get_page(archived=True, _request_timeout=T)
    client.crm.associations.v4.batch_api.get_page(
        "contacts",
        "emails",
        batch_input_public_fetch_associations_batch_request=BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[{"id": "1"}, {"id": "2"}]
        ),
        _request_timeout=T,
    )
    client.crm.objects.emails.batch_api.read(
        batch_read_input_simple_public_object_id=EmailBatchRead(
            inputs=[{"id": "900"}], properties=["hs_email_subject"], properties_with_history=[]
        ),
        _request_timeout=T,
    )
    client.events.events_api.get_page(object_type="contact", object_id=1, limit=2, _request_timeout=T)
    client.crm.properties.core_api.get_by_name("contacts", "lifecyclestage", _request_timeout=T)
    client.crm.properties.core_api.get_all("contacts", _request_timeout=T)
    for failing in (
        lambda: contacts.basic_api.get_by_id("404", _request_timeout=T),
        lambda: HubSpot(access_token="wrong", host=client_host(client)).crm.contacts.basic_api.get_page(
            _request_timeout=T
        ),
    ):
        with pytest.raises(ApiException):
            failing()
    emulator.rate_limit(path_prefix="/crm/v3/objects/contacts/search")  # a POST: urllib3 won't retry it
    with pytest.raises(ApiException):
        contacts.search_api.do_search(public_object_search_request=search, _request_timeout=T)


def client_host(client: HubSpot) -> str:
    host: str = client.crm.contacts.basic_api.api_client.configuration.host
    return host


def test_every_endpoint_speaks_the_published_wire_format(
    store: HubSpotStore, emulator: HubSpotEmulator
) -> None:
    seed(store)
    checker = SpecChecker(emulator)
    with ServerThread(checker) as running:
        exercise_every_endpoint(HubSpot(access_token=TOKEN, host=running.url), emulator)
    assert checker.violations == []
    assert checker.checked == len(store.requests) == 16
    assert {r.status for r in store.requests} == {200, 207, 401, 404, 429}


def test_the_published_specs_reject_what_the_live_api_sends(
    store: HubSpotStore, emulator: HubSpotEmulator
) -> None:
    """Each patched deviation is real: without the patches the same traffic fails validation."""
    seed(store)
    checker = SpecChecker(emulator, patch=False)
    with ServerThread(checker) as running:
        exercise_every_endpoint(HubSpot(access_token=TOKEN, host=running.url), emulator)
    found = "\n".join(checker.violations)
    assert "900 is not of type 'string'" in found  # toObjectId is an integer on the wire
    assert "'crm.associations.NO_ASSOCIATIONS_FOUND' is not of type 'object'" in found  # subCategory
    assert "None for not nullable" in found  # null property values and association labels
    assert (
        "{'propertyName': 'hs_object_id', 'direction': 'ASCENDING'} is not of type 'string'" in found
    )  # sorts


def broken_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = json.dumps({"properties": {}, "createdAt": "yesterday", "archived": "no"}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def test_the_checker_catches_a_response_that_breaks_the_spec() -> None:
    checker = SpecChecker(broken_app)
    Client(checker).get("/crm/v3/objects/contacts/1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert checker.checked == 1
    assert len(checker.violations) == 1
    assert "'id' is a required property" in checker.violations[0]


def test_every_emulator_route_is_a_documented_operation() -> None:
    for rule in ROUTES.iter_rules():
        for concrete in _concrete_paths(rule.rule):
            spec_name = spec_file_for(concrete)
            assert spec_name is not None, f"no spec documents {concrete}"
            template = _documented_template(load_spec(spec_name), concrete)
            assert template is not None, f"{concrete} is not a path in {spec_name}"
            methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
            documented = set(load_spec(spec_name)["paths"][template])
            assert methods <= documented, f"{rule.rule}: {methods - documented} not documented"


def _concrete_paths(rule: str) -> list[str]:
    """The rule with `<object_type>` expanded to each object type that has a spec file."""
    if "/crm/v3/objects/<object_type>" in rule:
        types = [p.rsplit("/", 1)[1] for p in SPEC_FILES if p.startswith("/crm/v3/objects/")]
        return [rule.replace("<object_type>", t).replace("<object_id>", "123") for t in types]
    return [re.sub(r"<[^>]+>", "contacts", rule)]


def _documented_template(spec: dict[str, Any], path: str) -> str | None:
    for template in spec["paths"]:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            return template
    return None
