#!/usr/bin/env python
"""Benchmark the decision path on a throwaway database: does its cost grow with history?

    DATABASE_URL=sqlite:// python bench/decisions.py
    DATABASE_URL=postgres://USER@HOST:5432/postgres python bench/decisions.py --history 100000

It never touches the database DATABASE_URL names. For PostgreSQL it connects to that server, drops
and creates a database called h2h_bench (and drops it again at the end unless --keep); for SQLite
it uses a file in a new temporary directory. It then migrates, seeds one agent with a grant far
above anything the run spends, and measures, single-threaded:

- decisions per second (decision_execute end to end) with an empty history, and again after
  inserting --history past decisions (with their outbox messages, case events and counters) and
  --events chained audit events: the ratio should stay close to 1;
- statements per decision (CaptureQueriesContext);
- audit appends per second: audit_record alone, each in its own transaction, as a decision does
  it (with its roles query) and with the lock-holding part only (roles given), which bounds how
  long every writer holds the AuditHead row lock, the one lock all writers share;
- verify_chain over the whole log, in events per second.

The result is a Markdown table on standard output.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "h2h_bench"
CASES = 200
BATCH = 5000
AMOUNT = Decimal("1.00")
LARGE = Decimal("999999999")


def note(message: str) -> None:
    """Progress on standard error, so standard output stays the Markdown result."""
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history", type=int, default=100_000, help="past decisions to insert (default 100000)")
    parser.add_argument("--decisions", type=int, default=600,
                        help="decisions timed per phase, in three rounds (default 600)")
    parser.add_argument("--events", type=int, default=100_000,
                        help="chained audit events to insert before the second phase (default 100000)")
    parser.add_argument("--appends", type=int, default=450, help="audit appends timed per phase (default 450)")
    parser.add_argument("--sample", type=int, default=30, help="decisions whose statements are counted (default 30)")
    parser.add_argument("--keep", action="store_true", help="keep the h2h_bench database (PostgreSQL) afterwards")
    return parser.parse_args(argv)


# --- a database of our own -----------------------------------------------------------------------


class ThrowawayDatabase:
    """Create the benchmark's own database from DATABASE_URL, and remove it afterwards."""

    def __init__(self, url: str, *, keep: bool):
        import dj_database_url

        self.source = url
        self.config = dj_database_url.parse(url)
        self.keep = keep
        self.tmpdir = Path(tempfile.mkdtemp(prefix="h2h-bench-"))
        engine = self.config["ENGINE"]
        if engine.endswith("sqlite3"):
            self.vendor = "sqlite"
            self.url = f"sqlite:///{self.tmpdir / 'bench.sqlite3'}"
        elif engine.endswith("postgresql"):
            self.vendor = "postgresql"
            if self.config["NAME"] == BENCH_DATABASE:
                raise SystemExit(f"DATABASE_URL names {BENCH_DATABASE!r} itself: point it at another database of "
                                 "the server (e.g. postgres); the benchmark creates its own.")
            parts = urllib.parse.urlsplit(url)
            self.url = urllib.parse.urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))
        else:
            raise SystemExit(f"Unsupported database engine {engine}: use SQLite or PostgreSQL.")

    def _admin_connection(self):
        import psycopg

        params = {
            "host": self.config.get("HOST") or None,
            "port": self.config.get("PORT") or None,
            "user": self.config.get("USER") or None,
            "password": self.config.get("PASSWORD") or None,
            "dbname": self.config.get("NAME") or "postgres",
        }
        return psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True)

    def _drop_and_maybe_create(self, create: bool) -> None:
        from psycopg import sql

        with self._admin_connection() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(BENCH_DATABASE)))
            if create:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DATABASE)))

    def create(self) -> None:
        if self.vendor == "postgresql":
            self._drop_and_maybe_create(create=True)

    def remove(self) -> None:
        if self.vendor == "postgresql" and not self.keep:
            self._drop_and_maybe_create(create=False)
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def configure_django(database: ThrowawayDatabase) -> None:
    """Point the settings at the throwaway database before Django reads them."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "h2h_core.settings"
    os.environ["DATABASE_URL"] = database.url
    os.environ["H2H_VAR_DIR"] = str(database.tmpdir)
    os.environ.pop("H2H_TEST_DATABASE_NAME", None)
    # DEBUG off: Django would otherwise keep every statement in memory (and spend time doing it).
    os.environ["DEBUG"] = "0"
    os.environ["SECRET_KEY"] = "bench-only-" + secrets.token_hex(24)
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()


# --- seed ------------------------------------------------------------------------------------------


class World:
    """The minimal organisation: one team, one agent owning CASES cases, one generous grant."""

    def __init__(self):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.utils import timezone
        from djmoney.money import Money

        from authority.models import AuthorityKind, Grant, GrantStatus, Period
        from h2h_core.models import Case, CaseCategory, CaseStatus, Customer, Role, Team

        now = timezone.now()
        self.kind = AuthorityKind.objects.get(code="refund")
        self.team = Team.objects.create(name="Bench", slug="bench")
        self.agent = get_user_model().objects.create_user("bench-agent")
        self.agent.groups.add(Group.objects.get_or_create(name=Role.AGENT)[0])
        self.team.members.add(self.agent)
        customer = Customer.objects.create(name="Bench customer", annual_value=Money(Decimal("12000"), "EUR"),
                                           customer_since=now.date())
        self.cases = Case.objects.bulk_create([
            Case(customer=customer, subject=f"Bench case {i}", category=CaseCategory.BILLING_ERROR,
                 amount_at_stake=Money(Decimal("100"), "EUR"), status=CaseStatus.OWNED, team=self.team,
                 owner=self.agent, opened_at=now)
            for i in range(CASES)
        ])
        self.grant = Grant.objects.create(
            subject_user=self.agent, kind=self.kind, per_case_limit=LARGE, period_limit=LARGE,
            period=Period.MONTH, currency="EUR", valid_from=now - timedelta(days=1), status=GrantStatus.ACTIVE,
            reason="benchmark", created_at=now,
        )
        Grant.objects.filter(pk=self.grant.pk).update(lineage=self.grant.pk)


# --- measurements ----------------------------------------------------------------------------------


def decide(world: World, label: str, i: int):
    from authority.services import decision_execute

    return decision_execute(actor=world.agent, case=world.cases[i % CASES], kind=world.kind, amount=AMOUNT,
                            currency="EUR", rationale="benchmark", idempotency_key=f"{label}-{i}")


def rate(count: int, work: Callable[[int], object], rounds: int = 3) -> tuple[float, float]:
    """Run work(i) count times in `rounds` rounds; return (median calls per second, client CPU ms per call).

    The CPU time is this process's: Python, Django and the driver, not the database server's.
    """
    per_round = max(count // rounds, 1)
    rates = []
    done = 0
    cpu_start = time.process_time()
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(done, done + per_round):
            work(i)
        rates.append(per_round / (time.perf_counter() - start))
        done += per_round
    return statistics.median(rates), (time.process_time() - cpu_start) * 1000 / done


def statements_per_decision(world: World, label: str, sample: int) -> tuple[float, Counter]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        for i in range(sample):
            decide(world, label, i)
    kinds = Counter(query["sql"].split(None, 1)[0].upper() for query in captured.captured_queries)
    return len(captured.captured_queries) / sample, kinds


def audit_appends(world: World, count: int, *, with_roles_query: bool) -> tuple[float, float]:
    from django.db import transaction

    from h2h_core.audit import audit_record

    after = {"id": 1, "case_id": world.cases[0].pk, "agent_id": world.agent.pk, "kind": "refund",
             "amount": "1", "currency": "EUR", "rationale": "benchmark"}
    roles = None if with_roles_query else ["Agent"]

    def append(i: int) -> None:
        with transaction.atomic(durable=True):
            audit_record(actor=world.agent, action="bench.append", object_type="bench", object_id=i, after=after,
                         roles=roles)

    return rate(count, append)


def measure_phase(world: World, label: str, args: argparse.Namespace) -> dict:
    for i in range(20):  # warm up caches and the connection
        decide(world, f"{label}-warm", i)
    per_decision, kinds = statements_per_decision(world, f"{label}-count", args.sample)
    decisions, decision_cpu_ms = rate(args.decisions, lambda i: decide(world, label, i))
    appends, append_cpu_ms = audit_appends(world, args.appends, with_roles_query=True)
    appends_locked_part, _ = audit_appends(world, args.appends, with_roles_query=False)
    return {
        "decisions": decisions,
        "decision_cpu_ms": decision_cpu_ms,
        "statements": per_decision,
        "statement_kinds": kinds,
        "appends": appends,
        "append_cpu_ms": append_cpu_ms,
        "appends_locked_part": appends_locked_part,
    }


# --- history, inserted fast ------------------------------------------------------------------------


def insert_history(world: World, count: int) -> None:
    """Insert `count` past decisions with their outbox messages, case events and counters."""
    from django.db import transaction
    from django.db.models import F
    from django.utils import timezone

    from authority import periods, usage
    from authority.models import Decision, OutboxMessage, UsageCounter
    from h2h_core.models import CaseEvent
    from h2h_core.organisation import current_organisation

    now = timezone.now()
    verdict = {"allowed": True, "kind": "refund", "amount": "1", "currency": "EUR", "level": "person",
               "reasons": ["Within your authority (history)."]}
    per_case: Counter = Counter()
    with transaction.atomic():
        for start in range(0, count, BATCH):
            decisions = []
            for i in range(start, min(count, start + BATCH)):
                case = world.cases[i % CASES]
                at = now - timedelta(milliseconds=count - i)
                decisions.append(Decision(
                    case=case, agent=world.agent, kind=world.kind, amount=AMOUNT, currency="EUR",
                    counted_amount=AMOUNT, counted_currency="EUR", grant=world.grant, verdict=verdict,
                    rationale="history", idempotency_key=f"history-{i}", payload_fingerprint="", executed_at=at,
                ))
                per_case[case.pk] += AMOUNT
            Decision.objects.bulk_create(decisions)
            if decisions[0].pk is None:  # a backend that does not return keys: read them back
                decisions = list(Decision.objects.filter(idempotency_key__startswith="history-")
                                 .order_by("pk")[start:start + len(decisions)])
            OutboxMessage.objects.bulk_create([
                OutboxMessage(topic=world.kind.outbox_topic, decision=d, payload={"id": d.pk, "amount": "1"},
                              created_at=d.executed_at, next_attempt_at=d.executed_at, delivered_at=d.executed_at,
                              attempts=1)
                for d in decisions
            ])
            CaseEvent.objects.bulk_create([
                CaseEvent(case_id=d.case_id, actor=world.agent, kind=CaseEvent.Kind.DECISION, at=d.executed_at,
                          text="Refund of 1.00 EUR: history")
                for d in decisions
            ])
        # The counters the history would have raised (they exist already: phase one created them).
        for case_pk, total in per_case.items():
            key = usage.case_key(case_id=case_pk, kind_code="refund", currency="EUR")
            UsageCounter.objects.filter(key=key).update(used=F("used") + total)
        start_of_month = periods.bucket_start("month", now, current_organisation().tz)
        key = usage.period_key(agent_id=world.agent.pk, kind_code="refund", currency="EUR", period="month",
                               start=start_of_month)
        UsageCounter.objects.filter(key=key).update(used=F("used") + AMOUNT * count)


def insert_chained_events(world: World, count: int) -> None:
    """Append `count` audit events, hashed here and bulk-inserted, then move the head to the last one."""
    from django.db import transaction
    from django.utils import timezone

    from h2h_core.audit import event_hash
    from h2h_core.models import AuditEvent, AuditHead

    after = {"id": 0, "case_id": world.cases[0].pk, "agent_id": world.agent.pk, "kind": "refund", "amount": "1",
             "currency": "EUR", "counted_amount": "1", "counted_currency": "EUR", "rate": None, "grant_id":
             world.grant.pk, "request_id": None, "rationale": "history"}
    with transaction.atomic():
        head = AuditHead.objects.select_for_update().get(pk=1)
        seq, previous = head.seq, head.hash
        base = timezone.now()
        batch = []
        for i in range(count):
            seq += 1
            fields = {
                "seq": seq, "occurred_at": base + timedelta(microseconds=i), "actor_id": world.agent.pk,
                "actor_username": world.agent.username, "actor_roles": ["Agent"], "action": "decision.executed",
                "object_type": "decision", "object_id": str(i), "outcome": "success", "before": None,
                "after": {**after, "id": i}, "reason": "history", "ip": None, "request_id": "",
                "prev_hash": previous,
            }
            fields["hash"] = previous = event_hash(fields)
            batch.append(AuditEvent(**fields))
            if len(batch) == BATCH:
                AuditEvent.objects.bulk_create(batch)
                batch = []
        AuditEvent.objects.bulk_create(batch)
        AuditHead.objects.filter(pk=1).update(seq=seq, hash=previous)


def verify_rate() -> tuple[int, float, float]:
    from h2h_core.audit.verify import verify_chain

    start = time.perf_counter()
    report = verify_chain()
    elapsed = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(f"verify_chain failed on the benchmark's own chain: {report.message}")
    return report.total, elapsed, report.total / elapsed


# --- report ----------------------------------------------------------------------------------------


def database_version(vendor: str) -> str:
    from django.db import connection

    if vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return f"PostgreSQL {cursor.fetchone()[0]}"


def table(vendor: str, args, empty: dict, full: dict, timings: dict) -> str:
    def row(label, a, b, fmt="{:,.0f}"):
        ratio = b / a if a else float("nan")
        return f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {ratio:.2f} |"

    history = f"{args.history:,} decisions, {args.events:,} events"
    ms = "{:.2f}"
    decision_ms = (1000 / empty["decisions"], 1000 / full["decisions"])
    append_ms = (1000 / empty["appends"], 1000 / full["appends"])
    locked_ms = (1000 / empty["appends_locked_part"], 1000 / full["appends_locked_part"])
    kinds = ", ".join(f"{count / args.sample:g} {kind}" for kind, count in full["statement_kinds"].most_common())
    lines = [
        f"Database: {database_version(vendor)}; single thread; decisions timed per phase: {args.decisions:,} "
        f"(median of 3 rounds); audit appends per phase: {args.appends:,}.",
        "",
        f"| measure | empty history | with {history} | ratio |",
        "| --- | ---: | ---: | ---: |",
        row("decisions per second", empty["decisions"], full["decisions"]),
        row("ms per decision", *decision_ms, fmt=ms),
        row("client CPU ms per decision (Python, Django, driver)", empty["decision_cpu_ms"],
            full["decision_cpu_ms"], fmt=ms),
        row("statements per decision (BEGIN and COMMIT included)", empty["statements"], full["statements"],
            fmt="{:.1f}"),
        row("audit appends per second (own transaction, with roles query)", empty["appends"], full["appends"]),
        row("ms per audit append", *append_ms, fmt=ms),
        row("client CPU ms per audit append", empty["append_cpu_ms"], full["append_cpu_ms"], fmt=ms),
        row("ms per audit append, head-lock part only (lock, insert, update, commit)", *locked_ms, fmt=ms),
        f"| audit append share of a decision | {append_ms[0] / decision_ms[0]:.0%} | "
        f"{append_ms[1] / decision_ms[1]:.0%} | |",
        f"| ceiling for all writers together (1 / head-lock part) | {1000 / locked_ms[0]:,.0f}/s | "
        f"{1000 / locked_ms[1]:,.0f}/s | |",
        "",
        "| one-off measure | value |",
        "| --- | ---: |",
        f"| verify_chain: events verified | {timings['verified']:,} |",
        f"| verify_chain: seconds | {timings['verify_seconds']:.2f} |",
        f"| verify_chain: events per second | {timings['verify_rate']:,.0f} |",
        f"| inserting the history (bulk) | {timings['history_seconds']:.1f} s |",
        f"| inserting the chained events (hashed in Python, bulk) | {timings['events_seconds']:.1f} s |",
        "",
        f"Statements of one decision (with history): {kinds}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    source = os.environ.get("DATABASE_URL", "sqlite://")
    database = ThrowawayDatabase(source, keep=args.keep)
    database.create()
    try:
        configure_django(database)
        from django.core.management import call_command
        from django.db import connections

        started = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        note(f"Migrated the {database.vendor} benchmark database in {time.perf_counter() - started:.1f} s.")
        world = World()
        note("Phase 1: empty history.")
        empty = measure_phase(world, "empty", args)
        timings = {}
        note(f"Inserting {args.history:,} past decisions.")
        started = time.perf_counter()
        insert_history(world, args.history)
        timings["history_seconds"] = time.perf_counter() - started
        note(f"Inserting {args.events:,} chained audit events.")
        started = time.perf_counter()
        insert_chained_events(world, args.events)
        timings["events_seconds"] = time.perf_counter() - started
        note("Phase 2: with history.")
        full = measure_phase(world, "full", args)
        note("Verifying the chain.")
        timings["verified"], timings["verify_seconds"], timings["verify_rate"] = verify_rate()
        print(table(database.vendor, args, empty, full, timings))
        connections.close_all()
    finally:
        database.remove()


if __name__ == "__main__":
    main()
