"""Benchmark: a HubSpot backfill against the emulator under a real rate limit and latency.

    .venv/bin/python bench/hubspot/backfill.py                      # 20,000 contacts, the targets
    .venv/bin/python bench/hubspot/backfill.py --contacts 100000 --limit 0 --latency 0   # memory

The emulator runs in a child process (so the peak memory measured is the connector's alone) with
HubSpot's limits switched on: `--limit` requests per rolling 10 s, 5 searches per second, and
`--latency` seconds before every answer. The portal is a Starter-tier one (100 per 10 s, no Events
API), mapped by the shipped hubspot.yaml with events off and property history on: each contact
has `--activities` dated activities, six engagements (emails, meetings, a call) read through
associations v4 and batch reads, the rest from property history (a page-view counter and the
last form submitted). The connector runs one real `sync` through the engine, as
`connector sync` does, and the script prints:

* wall time of the backfill;
* requests made vs the minimum the API allows for this data (search pages of 200, associations
  reads of 1,000 contacts per engagement type, batch reads of 100 and of 50 with history, batch
  updates of 100, two owner pages);
* 429s received;
* requests per 10 s achieved vs the limit (search is exempt from that limit and counted apart),
  over the whole backfill and at its busiest 10 s;
* peak memory (max RSS) of the connector process.

Targets (issue 5): zero 429s, >= 85 % of the limit used, requests <= 1.1x the minimum, memory flat
as contacts grow (compare --contacts 20000 with 100000).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

ENGAGEMENTS = (("emails", 3), ("meetings", 2), ("calls", 1))
TITLES = ("VP Marketing", "Head of Sales", "Engineer", "Marketing Manager", "Student", "CTO", "Analyst")
INDUSTRIES = ("Software", "Financial Services", "Retail", "Healthcare", "Manufacturing")
COUNTRIES = ("United States", "Germany", "United Kingdom", "Brazil", "Canada", "France")
FORMS = ("Demo request", "Ebook: RevOps playbook", "Newsletter", "Contact sales", "Webinar")


def bench_hubspot_yaml() -> str:
    """The shipped hubspot.yaml as a Starter portal maps it: no Events API, property history as the
    dated source (a page-view counter and the last form submitted), no Salesforce links."""
    import yaml

    data = yaml.safe_load((REPO / "mappings" / "hubspot.yaml").read_text())
    data["tier"] = "starter"
    data["activities"]["events"] = {"enabled": False}
    data["activities"].pop("date_properties", None)
    data["activities"]["history"] = [
        {"property": "hs_analytics_num_page_views", "type": "page_view", "counter": True},
        {"property": "recent_conversion_event_name", "type": "form_submission", "value_as": "name"},
    ]
    data.pop("salesforce_links", None)
    return str(yaml.safe_dump(data, sort_keys=False))


# --------------------------------------------------------------------------- the portal (child)


@dataclass(frozen=True)
class PortalSpec:
    contacts: int
    activities: int
    limit: int
    latency: float
    seed: int


def build_store(spec: PortalSpec) -> Any:
    from connector.sandbox.demo_data import _OWNERS, contact_property_definitions
    from connector.sandbox.hubspot_store import HubSpotStore, hs_datetime

    rng = random.Random(spec.seed)
    now = datetime.now(UTC)
    store = HubSpotStore(log_bodies=False)
    store.owners = [
        {
            "id": oid,
            "email": f"{first}@bench.example",
            "firstName": first,
            "lastName": last,
            "archived": archived,
        }
        for oid, first, last, archived in _OWNERS
    ]
    # the demo portal's catalogue: HubSpot's defaults plus employee_count and lifecycle_stage_reason
    store.properties["contacts"] = contact_property_definitions(store.owners, now)
    engagement_ids = iter(range(10_000_000, 10**9))
    history_per_contact = max(0, spec.activities - sum(n for _, n in ENGAGEMENTS))
    for i in range(spec.contacts):
        cid = str(100_000 + i)
        modified = now - timedelta(days=40) + timedelta(seconds=i)
        store.contacts[cid] = {
            "hs_object_id": cid,
            "email": f"person{i}@company{i % 997}.example",
            "createdate": hs_datetime(now - timedelta(days=400)),
            "lastmodifieddate": hs_datetime(modified),
            "lifecyclestage": "subscriber",
            "jobtitle": rng.choice(TITLES),
            "employee_count": str(rng.choice((12, 80, 300, 1200, 9000))),
            "industry": rng.choice(INDUSTRIES),
            "country": rng.choice(COUNTRIES),
        }
        for object_type, count in ENGAGEMENTS:
            objects = store.engagements.setdefault(object_type, {})
            for _ in range(count):
                eid = str(next(engagement_ids))
                props = {
                    "hs_object_id": eid,
                    "hs_timestamp": hs_datetime(now - timedelta(days=rng.randint(1, 25))),
                }
                if object_type == "emails":
                    props["hs_email_direction"] = rng.choice(("INCOMING_EMAIL", "EMAIL"))
                objects[eid] = props
                store.associate("contacts", cid, object_type, eid)
        views = max(0, history_per_contact - 1)
        moments = sorted(
            now - timedelta(days=rng.randint(1, 25), minutes=rng.randint(0, 600)) for _ in range(2)
        )
        history = store.property_history.setdefault("contacts", {}).setdefault(cid, {})
        if views:
            first = max(1, views // 2)
            history["hs_analytics_num_page_views"] = [
                {"value": str(views), "timestamp": hs_datetime(moments[1]), "sourceType": "ANALYTICS"},
                {"value": str(first), "timestamp": hs_datetime(moments[0]), "sourceType": "ANALYTICS"},
            ]
            store.contacts[cid]["hs_analytics_num_page_views"] = str(views)
        if history_per_contact:
            form = rng.choice(FORMS)
            history["recent_conversion_event_name"] = [
                {"value": form, "timestamp": hs_datetime(moments[1]), "sourceType": "FORM"}
            ]
            store.contacts[cid]["recent_conversion_event_name"] = form
    return store


def serve_portal(spec: PortalSpec, conn: Any) -> None:
    """Child process: build the portal, serve it, report the request log when asked."""
    from connector.sandbox.hubspot_app import HubSpotEmulator, RateLimits
    from connector.sandbox.server import serve_in_thread

    store = build_store(spec)
    counts = {
        "contacts": len(store.contacts),
        **{t: len(store.engagements.get(t, {})) for t, _ in ENGAGEMENTS},
    }
    limits = RateLimits(ten_secondly=spec.limit or None, search_per_second=5 if spec.limit else None)
    emulator = HubSpotEmulator(store, limits=limits)
    emulator.faults.latency = spec.latency
    with serve_in_thread(emulator) as server:
        conn.send({"url": server.url, "token": store.access_token, "counts": counts})
        conn.recv()  # the backfill is done
        conn.send([(r.method, r.path, r.status, r.at) for r in store.requests])


# --------------------------------------------------------------------------- the connector (parent)


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec = PortalSpec(args.contacts, args.activities, args.limit, args.latency, args.seed)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    portal = context.Process(target=serve_portal, args=(spec, child), daemon=True)
    built = time.monotonic()
    portal.start()
    info = parent.recv()
    build_seconds = time.monotonic() - built
    workdir = Path(tempfile.mkdtemp(prefix="bench-hubspot-"))
    try:
        mappings = workdir / "mappings"
        shutil.copytree(REPO / "mappings", mappings)
        (mappings / "salesforce.yaml").unlink(missing_ok=True)
        (mappings / "hubspot.yaml").write_text(bench_hubspot_yaml())
        os.environ.update(
            CONNECTOR_HUBSPOT_BASE_URL=info["url"],
            CONNECTOR_HUBSPOT_TOKEN=info["token"],
            CONNECTOR_STATE_URL=f"sqlite:///{workdir / 'state.db'}",
            CONNECTOR_MAPPINGS_DIR=str(mappings),
            CONNECTOR_HUBSPOT_SEARCH_LAG="0",
            CONNECTOR_HUBSPOT_WORKERS=str(args.workers),
        )
        if args.limit:
            os.environ["CONNECTOR_HUBSPOT_TEN_SECONDLY_LIMIT"] = str(args.limit)
        else:
            os.environ["CONNECTOR_HUBSPOT_TEN_SECONDLY_LIMIT"] = "1000000"
            os.environ["CONNECTOR_HUBSPOT_SEARCH_PER_SECOND"] = "1000000"
        report, seconds = read_only() if args.reads_only else backfill()
        parent.send("done")
        log = parent.recv()
    finally:
        portal.terminate()
        shutil.rmtree(workdir, ignore_errors=True)
    return summarise(args, info["counts"], report, seconds, log, build_seconds)


def backfill() -> tuple[Any, float]:
    from connector.crm.factory import hubspot_adapter
    from connector.engine import Engine
    from connector.mapping.loader import load_mappings
    from connector.settings import load_settings
    from connector.state.store import StateStore

    settings = load_settings()
    mappings = load_mappings(settings.mappings_dir)
    assert mappings.hubspot is not None
    adapter = hubspot_adapter(settings, mappings.hubspot)
    store = StateStore.open(settings.state_url)
    started = time.monotonic()
    try:
        report = Engine(mappings, store, {"hubspot": adapter}).sync(command="bench")
    finally:
        seconds = time.monotonic() - started
        store.close()
        adapter.close()
    return report, seconds


def read_only() -> tuple[Any, float]:
    """The adapter's feeds read to the end with no engine behind them (no state, no writes): how
    fast the HubSpot side alone runs, to tell it apart from the engine's own work per contact."""
    from collections import Counter
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from connector.crm.factory import hubspot_adapter
    from connector.mapping.loader import load_mappings
    from connector.settings import load_settings

    settings = load_settings()
    mappings = load_mappings(settings.mappings_dir)
    assert mappings.hubspot is not None
    adapter = hubspot_adapter(settings, mappings.hubspot)
    counts: Counter[str] = Counter()
    started = time.monotonic()
    try:
        adapter.owners()
        for feed in adapter.feeds(datetime.now(UTC)):
            for page in feed.pull(None):
                counts["evaluated"] += len(page.records)
                counts["activities"] += len(page.activities)
    finally:
        seconds = time.monotonic() - started
        adapter.close()
    return SimpleNamespace(counts=counts), seconds


def minimum_requests(counts: dict[str, int], writes: int) -> dict[str, int]:
    """The fewest requests HubSpot's documented limits allow for this portal's backfill."""
    n = counts["contacts"]
    return {
        "search": math.ceil(n / 200),
        "associations": math.ceil(n / 1000) * len(ENGAGEMENTS),
        "engagement batch reads": sum(math.ceil(counts[t] / 100) for t, _ in ENGAGEMENTS),
        "history batch reads": math.ceil(n / 50),
        "batch updates": math.ceil(writes / 100),
        "owners": 2,
    }


def summarise(
    args: argparse.Namespace,
    counts: dict[str, int],
    report: Any,
    seconds: float,
    log: list[tuple[str, str, int, float]],
    build_seconds: float,
) -> dict[str, Any]:
    general = sorted(at for _m, path, status, at in log if not path.endswith("/search"))
    searches = [at for _m, path, _s, at in log if path.endswith("/search")]
    span = (max(general) - min(general)) if len(general) > 1 else seconds
    busiest = 0
    start = 0
    for end, moment in enumerate(general):
        while general[start] <= moment - 10:
            start += 1
        busiest = max(busiest, end - start + 1)
    minimum = minimum_requests(counts, report.counts["intents"])
    made = len(log)
    return {
        "contacts": counts["contacts"],
        "activities_per_contact": args.activities,
        "limit_per_10s": args.limit or None,
        "latency_s": args.latency,
        "workers": args.workers,
        "wall_time_s": round(seconds, 1),
        "portal_build_s": round(build_seconds, 1),
        "requests": made,
        "requests_minimum": sum(minimum.values()),
        "requests_vs_minimum": round(made / sum(minimum.values()), 3),
        "minimum_by_kind": minimum,
        "searches": len(searches),
        "429s": sum(1 for _m, _p, status, _a in log if status == 429),
        "achieved_per_10s": round(len(general) / span * 10, 1) if span else None,
        "busiest_10s": busiest,
        "limit_used": round(len(general) / span * 10 / args.limit, 3) if args.limit and span else None,
        "activities_read": report.counts["activities"] or None,
        "records_written": report.counts["written"],
        "people_evaluated": report.counts["evaluated"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--activities", type=int, default=10, help="per contact (6 engagements + history)")
    parser.add_argument("--limit", type=int, default=100, help="requests per rolling 10 s; 0 = no limit")
    parser.add_argument("--latency", type=float, default=0.3, help="seconds before every answer")
    parser.add_argument("--workers", type=int, default=8, help="CONNECTOR_HUBSPOT_WORKERS")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--reads-only",
        action="store_true",
        help="read the feeds through the adapter only: no engine, no writes",
    )
    result = run(parser.parse_args())
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
