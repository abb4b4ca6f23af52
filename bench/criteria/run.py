"""Benchmark the criteria: people/s and peak memory for evaluation (signals + rules) and simulate.

    python bench/criteria/run.py --people 1000000 --activities 20 [--processes 2] [--json]

People are generated in-process and streamed, 10,000 at a time (never all in memory): each has
the shipped person fields (titles, sizes, industries, countries, free-mail and competitor domains
in realistic proportions) and `--activities` activities of every declared type over the last 120 days, with
page URLs and form names from a small site. Only the time spent inside the evaluator is counted
as evaluation time (wall and CPU seconds; the machine may be shared, so both are given with the
load average); generation is reported separately. Peak memory is the process's maximum
resident set size (children included with --processes).

`simulate` evaluates the shipped criteria and a stricter copy (pricing interest needs 3 views, not
2) for every person, counts stages, builds the transition matrix and keeps 5 sample movers per
transition with both reasons: the same `compare` the `simulate` command runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from connector.lifecycle import simulate  # noqa: E402
from connector.lifecycle.rules import CriteriaEvaluator  # noqa: E402
from connector.lifecycle.simulate import SimPerson, compare  # noqa: E402
from connector.mapping.loader import load_mappings  # noqa: E402
from connector.model import Activity  # noqa: E402

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
TITLES = ["VP Marketing", "Director of IT", "Marketing Manager", "Data Analyst", "CTO", "Software Engineer",
          "Head of Growth", "Student", "Consultant", "Operations Manager", "Founder",
          "Accountant"]  # fmt: skip
INDUSTRIES = ["Software", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Media", "Logistics"]
COUNTRIES = [
    "United States",
    "united states",
    "Canada",
    "Germany",
    "UK",
    "France",
    "Brazil",
    "India",
    "Japan",
]
DOMAINS = [
    "acme.com",
    "globex.io",
    "initech.com",
    "umbrella.co",
    "gmail.com",
    "yahoo.com",
    "rivalsoft.com",
    "uni.edu",
]
URLS = ["/", "/pricing", "/pricing?plan=team", "/solutions/revops", "/blog/mql-vs-sql", "/blog/lead-scoring",
        "/product/features", "/customers", "/careers", "/about"]  # fmt: skip
FORMS = ["Request a demo", "Contact sales", "White paper: Hand-off", "eBook: Stages", "Newsletter signup",
         "Webinar registration", "2026 Benchmark Report"]  # fmt: skip
SIZES = [2, 10, 40, 80, 250, 1200, 4000, 9000]


def people(start: int, stop: int, activities: int, seed: int = 11) -> Iterator[SimPerson]:
    """People `start`..`stop`, each the same whatever the chunking (one seeded RNG per person).

    Choices are drawn a person at a time (`choices(k=...)`, `random()` scaled) because generating
    20 million activities one RNG call at a time took twice as long as evaluating them.
    """
    types = ["page_view"] * 8 + ["email_open"] * 4 + ["email_click", "form_submission", "form_submission",
             "chat", "social", "meeting", "call", "email_reply"]  # fmt: skip
    span = 120 * 86_400
    for index in range(start, stop):
        rng = random.Random(seed * 1_000_003 + index)
        domain, title, size = rng.choice(DOMAINS), rng.choice(TITLES), rng.choice(SIZES)
        industry, country = rng.choice(INDUSTRIES), rng.choice(COUNTRIES)
        person = {
            "email": f"p{index}@{domain}",
            "title": title,
            "employees": size,
            "industry": industry,
            "country": country,
            "unsubscribed": rng.random() < 0.03,
        }
        kinds = rng.choices(types, k=activities)
        urls = rng.choices(URLS, k=activities)
        forms = rng.choices(FORMS, k=activities)
        person_id = str(index)
        timeline = [
            Activity(
                person_id=person_id,
                type=kind,
                occurred_at=NOW - timedelta(seconds=int(rng.random() * span)),
                source="bench",
                source_id=f"{index}-{n}",
                url="https://www.example.com" + urls[n] if kind == "page_view" else None,
                name=forms[n] if kind == "form_submission" else None,
            )
            for n, kind in enumerate(kinds)
        ]
        yield SimPerson(person_id, person["email"], person, timeline)


def evaluators() -> tuple[CriteriaEvaluator, CriteriaEvaluator]:
    mappings = load_mappings(ROOT / "mappings")
    current = CriteriaEvaluator(mappings.criteria, mappings.criteria_version, mappings.person_fields)
    rules = [
        r.model_copy(update={"when": r.when.replace("pricing_views_30d >= 2", "pricing_views_30d >= 3")})
        for r in mappings.criteria.rules
    ]
    stricter = mappings.criteria.model_copy(update={"rules": rules})
    return current, CriteriaEvaluator(stricter, "stricter", mappings.person_fields)


CHUNK = simulate.CHUNK
"""People are generated a chunk at a time, outside the timed part, then evaluated: as many as
`simulate` evaluates at once."""


def chunks_of(start: int, stop: int, activities: int, clock: dict[str, float]) -> Iterator[list[SimPerson]]:
    """Lists of generated people; the wall and CPU seconds spent generating are added to `clock`."""
    for first in range(start, stop, CHUNK):
        wall, cpu = time.perf_counter(), time.process_time()
        batch = list(people(first, min(first + CHUNK, stop), activities))
        clock["wall"] += time.perf_counter() - wall
        clock["cpu"] += time.process_time() - cpu
        yield batch


def evaluate_range(args: tuple[int, int, int]) -> dict[str, object]:
    """People, wall and CPU seconds inside the evaluator and generating, and stage counts."""
    start, stop, activities = args
    current, _ = evaluators()
    generating = {"wall": 0.0, "cpu": 0.0}
    wall = cpu = 0.0
    counts: dict[str, int] = {}
    for batch in chunks_of(start, stop, activities, generating):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        # Signals column-wise for the chunk (what simulate does), then each person's rules.
        signals = current.signals.compute_many([person.timeline for person in batch], NOW)
        for person, values in zip(batch, signals, strict=True):
            verdict = current.verdict(
                person=person.person, timeline=person.timeline, current_stage=None, now=NOW, signals=values
            )
            counts[verdict.stage] = counts.get(verdict.stage, 0) + 1
        wall += time.perf_counter() - wall0
        cpu += time.process_time() - cpu0
    return {
        "people": stop - start,
        "wall": wall,
        "cpu": cpu,
        "gen_wall": generating["wall"],
        "counts": counts,
    }


def simulate_range(args: tuple[int, int, int]) -> dict[str, object]:
    """People, wall and CPU seconds inside `compare` (generation excluded) and movers."""
    start, stop, activities = args
    current, stricter = evaluators()
    generating = {"wall": 0.0, "cpu": 0.0}
    stream = (person for batch in chunks_of(start, stop, activities, generating) for person in batch)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = compare(current, stricter, stream, NOW, samples=5)
    return {
        "people": result.people,
        "wall": time.perf_counter() - wall0 - generating["wall"],
        "cpu": time.process_time() - cpu0 - generating["cpu"],
        "movers": result.moved,
    }


def split(total: int, parts: int, activities: int) -> list[tuple[int, int, int]]:
    step = -(-total // parts)
    return [(i, min(i + step, total), activities) for i in range(0, total, step)]


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


Phase = Callable[[tuple[int, int, int]], dict[str, object]]


def run_phase(function: Phase, chunks: list[tuple[int, int, int]], processes: int) -> list[dict[str, object]]:
    if processes == 1:
        return [function(chunk) for chunk in chunks]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return pool.map(function, chunks)


def rates(results: list[dict[str, object]], processes: int) -> dict[str, object]:
    """people/s over the time inside the evaluator: wall (what a run sees) and per CPU second.

    With N processes running side by side, the wall rate is all people over the mean time each
    process spent inside the evaluator, i.e. the combined rate while they all run.
    """
    total = sum(int(r["people"]) for r in results)  # type: ignore[call-overload]
    wall = sum(float(r["wall"]) for r in results) / processes  # type: ignore[arg-type]
    cpu = sum(float(r["cpu"]) for r in results)  # type: ignore[arg-type]
    return {"people_per_s": round(total / wall), "people_per_cpu_s": round(total / cpu)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=20)
    parser.add_argument("--processes", "--workers", dest="processes", type=int, default=1)
    parser.add_argument("--skip-simulate", action="store_true")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    chunks = split(options.people, options.processes, options.activities)
    report: dict[str, object] = {"people": options.people, "activities": options.activities,
                                 "processes": options.processes,
                                 "load_average_before": round(os.getloadavg()[0], 1)}  # fmt: skip
    wall = time.perf_counter()
    results = run_phase(evaluate_range, chunks, options.processes)
    wall = time.perf_counter() - wall
    report["evaluation"] = {
        **rates(results, options.processes),
        "people_per_s_wall_incl_generation": round(options.people / wall),
        "seconds_generating": round(sum(float(r["gen_wall"]) for r in results), 1),  # type: ignore[arg-type]
        "peak_rss_mb": round(peak_mb()),
    }
    if not options.skip_simulate:
        sims = run_phase(simulate_range, chunks, options.processes)
        report["simulate"] = {
            **rates(sims, options.processes),
            "movers": sum(int(s["movers"]) for s in sims),  # type: ignore[call-overload]
            "peak_rss_mb": round(peak_mb()),
        }
    report["load_average_after"] = round(os.getloadavg()[0], 1)
    if options.json:
        print(json.dumps(report, indent=2))
        return
    e: dict[str, object] = report["evaluation"]  # type: ignore[assignment]
    load = f"{report['load_average_before']} -> {report['load_average_after']}"
    print(f"{options.people:,} people x {options.activities} activities, {options.processes} process(es), "
          f"load average {load} on {os.cpu_count()} CPUs")  # fmt: skip
    print(f"evaluation: {e['people_per_s']:,} people/s ({e['people_per_cpu_s']:,} per CPU second) inside the "
          f"evaluator, {e['people_per_s_wall_incl_generation']:,} people/s wall with generation, "
          f"peak RSS {e['peak_rss_mb']} MB")  # fmt: skip
    if "simulate" in report:
        s: dict[str, object] = report["simulate"]  # type: ignore[assignment]
        print(f"simulate:   {s['people_per_s']:,} people/s ({s['people_per_cpu_s']:,} per CPU second), two "
              f"criteria versions, generation excluded, {s['movers']:,} movers, "
              f"peak RSS {s['peak_rss_mb']} MB")  # fmt: skip


if __name__ == "__main__":
    main()
