#!/usr/bin/env python
"""Time the policy replay of a pending grant change over a large history, on a throwaway database.

    DATABASE_URL=postgres://USER@HOST:5432/postgres python bench/replay.py --decisions 50000

Like bench/decisions.py it never touches the database DATABASE_URL names: it creates h2h_bench_replay
(dropped at the end unless --keep), migrates, and bulk-inserts --agents agents holding the Agent role
(one team), --cases cases, --decisions executed refunds, --decisions/8 authority requests and as many
refusal audit events, spread over the last 90 days, under a role grant of 500 per case and 40,000 a
month. It then times `grant_change_replay` (three runs, best and median; client CPU; statements and
their execute time) for a pending raise of that role grant (every agent), at the default row bound
and at 5,000, and for a new person grant (one agent). The result is a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import decisions as base  # noqa: E402  (the throwaway-database helpers)

base.BENCH_DATABASE = "h2h_bench_replay"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=120)
    parser.add_argument("--cases", type=int, default=12_000)
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    return parser.parse_args(argv)


def seed(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from authority.models import AuthorityKind, AuthorityRequest, Decision, Grant, GrantStatus
    from h2h_core.models import AuditEvent, AuditHead, Case, CaseCategory, Customer, Role, Team

    User = get_user_model()
    rng = random.Random(13)
    now = timezone.now()
    refund = AuthorityKind.objects.get(code="refund")
    agent_role = Group.objects.get_or_create(name=Role.AGENT)[0]
    team = Team.objects.create(name="Bench", slug="bench")
    users = User.objects.bulk_create([User(username=f"bench-{i}") for i in range(args.agents)])
    User.groups.through.objects.bulk_create([User.groups.through(user_id=u.pk, group_id=agent_role.pk) for u in users])
    team.members.add(*users)
    grant = Grant.objects.create(subject_role=agent_role, kind=refund, per_case_limit=Decimal("500"),
                                 period_limit=Decimal("40000"), period="month", currency="EUR",
                                 valid_from=now - timedelta(days=400), reason="bench role grant", created_at=now)
    Grant.objects.filter(pk=grant.pk).update(lineage=grant.pk)
    customers = Customer.objects.bulk_create([
        Customer(name=f"Customer {i}", tier="standard", annual_value=Decimal("1000"), annual_value_currency="EUR",
                 customer_since=now.date()) for i in range(max(args.cases // 6, 1))])
    cases = Case.objects.bulk_create([
        Case(customer=rng.choice(customers), subject=f"Case {i}", category=rng.choice(CaseCategory.values),
             amount_at_stake=Decimal("100"), amount_at_stake_currency="EUR", stakes_score=30, status="owned",
             owner=rng.choice(users), team=team, opened_at=now - timedelta(days=95)) for i in range(args.cases)],
        batch_size=5000)

    def when():
        return now - timedelta(seconds=rng.randint(60, 90 * 86400))

    decisions = []
    for _ in range(args.decisions):
        amount = Decimal(rng.randint(20, 500))
        decisions.append(Decision(case=rng.choice(cases), agent=rng.choice(users), kind=refund, amount=amount,
                                  currency="EUR", counted_amount=amount, counted_currency="EUR", grant=grant,
                                  verdict={}, rationale="bench", executed_at=when()))
    Decision.objects.bulk_create(decisions, batch_size=5000)
    others = args.decisions // 8
    requests = []
    for _ in range(others):
        at = when()
        requests.append(AuthorityRequest(case=rng.choice(cases), requester=rng.choice(users), kind=refund,
                                         amount=Decimal(rng.randint(600, 1500)), currency="EUR",
                                         justification="bench", verdict={}, status="approved", created_at=at,
                                         expires_at=at + timedelta(days=1)))
    AuthorityRequest.objects.bulk_create(requests, batch_size=5000)
    # Refusals as decision_execute records them; unchained (the replay reads, it does not verify).
    seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    events = []
    for i in range(others):
        case, user = rng.choice(cases), rng.choice(users)
        events.append(AuditEvent(seq=seq + 1 + i, occurred_at=when(), actor_id=user.pk, actor_username=user.username,
                                 actor_roles=[Role.AGENT], action="decision.refused", object_type="case",
                                 object_id=str(case.pk), outcome="denied",
                                 after={"case_id": case.pk, "kind": "refund", "amount": str(rng.randint(501, 1200)),
                                        "currency": "EUR", "error": "authority_denied", "verdict": None},
                                 prev_hash="0" * 64, hash="0" * 64))
    AuditEvent.objects.bulk_create(events, batch_size=5000)
    AuditHead.objects.update(seq=seq + others)
    maker = User.objects.create(username="bench-maker")
    raise_ = Grant.objects.create(subject_role=agent_role, kind=refund, per_case_limit=Decimal("1000"),
                                  period_limit=Decimal("50000"), period="month", currency="EUR", valid_from=now,
                                  reason="bench raise", created_at=now, status=GrantStatus.PENDING, supersedes=grant,
                                  lineage=grant.pk, version=2, granted_by=maker)
    person = Grant.objects.create(subject_user=users[0], kind=refund, per_case_limit=Decimal("1000"),
                                  period_limit=Decimal("50000"), period="month", currency="EUR", valid_from=now,
                                  reason="bench person", created_at=now, status=GrantStatus.PENDING, granted_by=maker)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return {"raise": raise_, "person": person}


def timed(pending, limit: int | None) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from authority.models import Grant
    from authority.reports.replay import ROW_LIMIT, grant_change_replay

    pending = Grant.objects.select_related("kind", "supersedes").get(pk=pending.pk)
    walls, cpus = [], []
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            wall, cpu = time.perf_counter(), time.process_time()
            replay = grant_change_replay(pending=pending, limit=limit or ROW_LIMIT)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return {"replay": replay, "best": min(walls), "median": sorted(walls)[1], "cpu": min(cpus),
            "queries": len(queries.captured_queries),
            "sql": sum(float(query["time"]) for query in queries.captured_queries)}


def main(argv=None) -> None:
    args = parse_args(argv)
    database = base.ThrowawayDatabase(os.environ.get("DATABASE_URL", "sqlite://"), keep=args.keep)
    database.create()
    try:
        base.configure_django(database)
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        started = time.perf_counter()
        changes = seed(args)
        base.note(f"Seeded {args.decisions:,} decisions in {time.perf_counter() - started:.1f} s.")
        print(f"| pending change ({database.vendor}) | rows replayed | wall best / median | client CPU | "
              "statements | SQL execute |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, pending, limit in ((f"role grant raise, {args.agents} agents", changes["raise"], None),
                                      (f"role grant raise, {args.agents} agents, bound 5,000", changes["raise"], 5000),
                                      ("new person grant, 1 agent", changes["person"], None)):
            result = timed(pending, limit)
            replay = result["replay"]
            rows = f"{replay.examined:,}{' (cut)' if replay.truncated else ''}"
            print(f"| {label} | {rows} | {result['best'] * 1000:.0f} / {result['median'] * 1000:.0f} ms | "
                  f"{result['cpu'] * 1000:.0f} ms | {result['queries']} | {result['sql'] * 1000:.0f} ms |")
            base.note(replay.summary)
    finally:
        from django.db import connections

        connections.close_all()
        database.remove()


if __name__ == "__main__":
    main()
