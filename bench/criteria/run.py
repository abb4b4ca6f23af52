"""Benchmark the criteria: people/s and peak memory for evaluation (signals + rules) and simulate.

    python bench/criteria/run.py --people 1000000 --activities 20 [--processes 2] [--json]

People are generated in-process and streamed (never all in memory): each has the shipped person
fields (titles, sizes, industries, countries, free-mail and competitor domains in realistic
proportions) and `--activities` activities of every declared type over the last 120 days, with
page URLs and form names from a small site. Only the time spent inside the evaluator is counted
as evaluation time; generation is reported separately. Peak memory is the process's maximum
resident set size (children included with --processes).

`simulate` evaluates the shipped criteria and a stricter copy (pricing interest needs 3 views, not
2) for every person, counts stages, builds the transition matrix and keeps 5 sample movers per
transition with both reasons: the same `compare` the `simulate` command runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

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
    types = ["page_view"] * 8 + ["email_open"] * 4 + ["email_click", "form_submission", "form_submission",
             "chat", "social", "meeting", "call", "email_reply"]  # fmt: skip
    for index in range(start, stop):
        rng = random.Random(seed * 1_000_003 + index)
        person = {
            "email": f"p{index}@{rng.choice(DOMAINS)}",
            "title": rng.choice(TITLES),
            "employees": rng.choice(SIZES),
            "industry": rng.choice(INDUSTRIES),
            "country": rng.choice(COUNTRIES),
            "unsubscribed": rng.random() < 0.03,
        }
        timeline = []
        for n in range(activities):
            kind = rng.choice(types)
            timeline.append(
                Activity(
                    person_id=str(index),
                    type=kind,
                    occurred_at=NOW - timedelta(seconds=rng.randrange(120 * 86_400)),
                    source="bench",
                    source_id=f"{index}-{n}",
                    url="https://www.example.com" + rng.choice(URLS) if kind == "page_view" else None,
                    name=rng.choice(FORMS) if kind == "form_submission" else None,
                )
            )
        yield SimPerson(str(index), person["email"], person, timeline)


def evaluators() -> tuple[CriteriaEvaluator, CriteriaEvaluator]:
    mappings = load_mappings(ROOT / "mappings")
    current = CriteriaEvaluator(mappings.criteria, mappings.criteria_version, mappings.person_fields)
    rules = [
        r.model_copy(update={"when": r.when.replace("pricing_views_30d >= 2", "pricing_views_30d >= 3")})
        for r in mappings.criteria.rules
    ]
    stricter = mappings.criteria.model_copy(update={"rules": rules})
    return current, CriteriaEvaluator(stricter, "stricter", mappings.person_fields)


def evaluate_range(args: tuple[int, int, int]) -> tuple[int, float, float, dict[str, int]]:
    """(people, seconds inside the evaluator, seconds generating, stage counts)."""
    start, stop, activities = args
    current, _ = evaluators()
    inside = 0.0
    counts: dict[str, int] = {}
    began = time.perf_counter()
    for person in people(start, stop, activities):
        t0 = time.perf_counter()
        verdict = current.verdict(person=person.person, timeline=person.timeline, current_stage=None, now=NOW)
        inside += time.perf_counter() - t0
        counts[verdict.stage] = counts.get(verdict.stage, 0) + 1
    return stop - start, inside, time.perf_counter() - began - inside, counts


def simulate_range(args: tuple[int, int, int]) -> tuple[int, float, dict[str, int], int]:
    """(people, seconds, proposed stage counts, movers) for the simulate comparison."""
    start, stop, activities = args
    current, stricter = evaluators()
    began = time.perf_counter()
    result = compare(current, stricter, people(start, stop, activities), NOW, samples=5)
    return result.people, time.perf_counter() - began, dict(result.proposed), result.moved


def split(total: int, parts: int, activities: int) -> list[tuple[int, int, int]]:
    step = -(-total // parts)
    return [(i, min(i + step, total), activities) for i in range(0, total, step)]


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=20)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--skip-simulate", action="store_true")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    chunks = split(options.people, options.processes, options.activities)
    report: dict[str, object] = {"people": options.people, "activities": options.activities,
                                 "processes": options.processes}  # fmt: skip
    wall = time.perf_counter()
    if options.processes == 1:
        results = [evaluate_range(chunk) for chunk in chunks]
    else:
        with multiprocessing.get_context("fork").Pool(options.processes) as pool:
            results = pool.map(evaluate_range, chunks)
    wall = time.perf_counter() - wall
    inside = sum(r[1] for r in results)
    evaluated = sum(r[0] for r in results)
    report["evaluation"] = {
        "people_per_s_in_evaluator": round(evaluated / (inside / options.processes)),
        "people_per_s_wall_incl_generation": round(evaluated / wall),
        "seconds_generating": round(sum(r[2] for r in results), 1),
        "peak_rss_mb": round(peak_mb()),
    }
    if not options.skip_simulate:
        wall = time.perf_counter()
        if options.processes == 1:
            sims = [simulate_range(chunk) for chunk in chunks]
        else:
            with multiprocessing.get_context("fork").Pool(options.processes) as pool:
                sims = pool.map(simulate_range, chunks)
        wall = time.perf_counter() - wall
        report["simulate"] = {
            "people_per_s_wall_incl_generation": round(sum(s[0] for s in sims) / wall),
            "movers": sum(s[3] for s in sims),
            "peak_rss_mb": round(peak_mb()),
        }
    if options.json:
        print(json.dumps(report, indent=2))
        return
    e = report["evaluation"]
    print(f"{options.people:,} people x {options.activities} activities, {options.processes} process(es)")
    print(f"evaluation: {e['people_per_s_in_evaluator']:,} people/s inside the evaluator, "  # type: ignore[index]
          f"{e['people_per_s_wall_incl_generation']:,} people/s wall (generation included), "  # type: ignore[index]
          f"peak RSS {e['peak_rss_mb']} MB")  # type: ignore[index]  # fmt: skip
    if "simulate" in report:
        s = report["simulate"]
        print(f"simulate:   {s['people_per_s_wall_incl_generation']:,} people/s wall (two criteria versions, "  # type: ignore[index]
              f"generation included), {s['movers']:,} movers, peak RSS {s['peak_rss_mb']} MB")  # type: ignore[index]  # fmt: skip


if __name__ == "__main__":
    main()
