#!/usr/bin/env python
"""Decisions per second with several writers at once, on PostgreSQL: what do the shared locks cost?

    DATABASE_URL=postgres://USER@HOST:5432/postgres python bench/throughput.py --workers 1,2,4 --seconds 10

Like bench/decisions.py it works on a database of its own (h2h_bench_tp, dropped afterwards). Each
worker is a separate process (no GIL between them) running decision_execute in a loop for
--seconds. Three scenarios:

- separate agents: each worker is its own agent on cases of its own customer; they share no row
  lock (the audit chain's head is the sealer's: one more process runs the worker's sealer thread
  throughout, as a worker does, so its cost is in the figures);
- one agent: every worker decides for the same agent on different cases, so they also share that
  agent's period counter row (held from its UPDATE to commit);
- one customer: each worker is its own agent, on its own cases, all of them of ONE customer: what
  the decision path shares per customer (rows, counters, locks) shows here and nowhere else.

The result is a Markdown table on standard output. On a machine with few cores, client CPU caps
the speed-up long before the locks do; compare the scenarios with each other.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import decisions as base  # noqa: E402  (the throwaway-database helpers)

base.BENCH_DATABASE = "h2h_bench_tp"
CASES_PER_AGENT = 20


def seed(agents: int) -> list[tuple[int, list[int], list[int]]]:
    """Return [(agent id, its case ids on its own customer, its case ids on the shared customer)]."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from djmoney.money import Money

    from authority.models import AuthorityKind, Grant, GrantStatus, Period
    from h2h_core.models import Case, CaseCategory, CaseStatus, Customer, Role, Team

    now = timezone.now()
    kind = AuthorityKind.objects.get(code="refund")
    team = Team.objects.create(name="Bench", slug="bench")

    def customer_named(name):
        return Customer.objects.create(name=name, annual_value=Money(Decimal("12000"), "EUR"),
                                       customer_since=now.date())

    def cases_of(agent, customer, label):
        return [case.pk for case in Case.objects.bulk_create([
            Case(customer=customer, subject=f"Bench case {label}-{i}", category=CaseCategory.BILLING_ERROR,
                 amount_at_stake=Money(Decimal("100"), "EUR"), status=CaseStatus.OWNED, team=team, owner=agent,
                 opened_at=now)
            for i in range(CASES_PER_AGENT)
        ])]

    shared = customer_named("Bench shared customer")
    agent_role = Group.objects.get_or_create(name=Role.AGENT)[0]
    world = []
    for number in range(agents):
        agent = get_user_model().objects.create_user(f"bench-agent-{number}")
        agent.groups.add(agent_role)
        team.members.add(agent)
        own = cases_of(agent, customer_named(f"Bench customer {number}"), f"{number}")
        on_shared = cases_of(agent, shared, f"{number}-shared")
        grant = Grant.objects.create(subject_user=agent, kind=kind, per_case_limit=base.LARGE,
                                     period_limit=base.LARGE, period=Period.MONTH, currency="EUR",
                                     valid_from=now - timedelta(days=1), status=GrantStatus.ACTIVE,
                                     reason="benchmark", created_at=now)
        Grant.objects.filter(pk=grant.pk).update(lineage=grant.pk)
        world.append((agent.pk, own, on_shared))
    return world


def worker(agent_id: int, case_ids: list[int], deadline: float, results) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connections

    from authority.models import AuthorityKind
    from authority.services import decision_execute
    from h2h_core.models import Case

    connections.close_all()  # never share the parent's connection
    agent = get_user_model().objects.get(pk=agent_id)
    kind = AuthorityKind.objects.get(code="refund")
    cases = list(Case.objects.filter(pk__in=case_ids))
    done = 0
    while time.perf_counter() < deadline:
        decision_execute(actor=agent, case=cases[done % len(cases)], kind=kind, amount=base.AMOUNT,
                         currency="EUR", rationale="throughput")
        done += 1
    connections.close_all()
    results.put(done)


def run(world, assignments: list[int], seconds: float, *, shared_customer: bool = False) -> float:
    """Start one process per assignment (an index into world); return decisions per second.

    With `shared_customer` the workers decide on their agents' cases of the shared customer.
    """
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start = time.perf_counter() + 0.5  # let every process start before the clock runs
    deadline = start + seconds
    processes = []
    for slot, index in enumerate(assignments):
        agent_id, own, on_shared = world[index]
        case_ids = on_shared if shared_customer else own
        # Workers sharing an agent take disjoint cases: the per-case counter must not be the contention.
        share = case_ids[slot::len(assignments)] if assignments.count(index) > 1 else case_ids
        processes.append(context.Process(target=worker, args=(agent_id, share, deadline, results)))
    stop = context.Event()
    seal = context.Process(target=sealer, args=(stop,))
    seal.start()
    for process in processes:
        process.start()
    total = sum(results.get() for _ in processes)
    for process in processes:
        process.join()
    stop.set()
    seal.join()
    return total / seconds


def sealer(stop) -> None:
    """Run the worker's audit sealer thread until `stop` is set."""
    from django.db import connections

    from edges.worker.management.commands.run_worker import Sealer

    connections.close_all()
    thread = Sealer(interval=0.25, idle=1.0)
    thread.start()
    stop.wait()
    thread.stopping.set()
    thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts (default 1,2,4)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per measurement (default 10)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    database = base.ThrowawayDatabase(os.environ.get("DATABASE_URL", ""), keep=False)
    if database.vendor != "postgresql":
        raise SystemExit("Several writers at once need PostgreSQL (SQLite has one writer by design).")
    database.create()
    try:
        base.configure_django(database)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        world = seed(max(counts))
        rows = []
        for n in counts:
            separate = run(world, list(range(n)), args.seconds)
            shared = run(world, [0] * n, args.seconds)
            customer = run(world, list(range(n)), args.seconds, shared_customer=True)
            rows.append((n, separate, shared, customer))
            base.note(f"{n} workers: {separate:.0f}/s separate agents, {shared:.0f}/s one agent, "
                      f"{customer:.0f}/s one customer (load average {os.getloadavg()[0]:.2f})")
        one = rows[0]
        print("| workers | separate agents: decisions/s | speed-up | one agent: decisions/s | speed-up "
              "| one customer: decisions/s | speed-up |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n, separate, shared, customer in rows:
            print(f"| {n} | {separate:.0f} | {separate / one[1]:.2f} | {shared:.0f} | {shared / one[2]:.2f} "
                  f"| {customer:.0f} | {customer / one[3]:.2f} |")
    finally:
        from django.db import connections

        connections.close_all()
        database.remove()


if __name__ == "__main__":
    main()
