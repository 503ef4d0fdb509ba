#!/usr/bin/env python
"""The ORM against the project's compiled-once paths, side by side: an audit append and a decision's answer.

    DATABASE_URL=postgres://USER@HOST:5432/postgres python bench/hot_writes.py
    DATABASE_URL=sqlite:// python bench/hot_writes.py

On a throwaway database (h2h_bench_hot, dropped afterwards), client CPU milliseconds per call,
the two ways of each alternated over --rounds rounds of --calls calls (median):

- an audit event appended in a transaction of its own, by `AuditEvent.objects.create` and by
  `audit_record` (its `PreparedInsert`), with the same fields;
- a decision's API answer written by a new `DecisionOut` and by `represented(DecisionOut, ...)`
  (edges/api/serializers/bound.py); both must give the same data.

The result is a Markdown table on standard output (docs/performance.md records runs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import decisions as base  # noqa: E402  (the throwaway-database helpers and the minimal organisation)

base.BENCH_DATABASE = "h2h_bench_hot"


def cpu_ms(work, calls: int) -> float:
    started = time.process_time()
    for i in range(calls):
        work(i)
    return (time.process_time() - started) * 1000 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    database = base.ThrowawayDatabase(os.environ.get("DATABASE_URL", "sqlite://"), keep=False)
    database.create()
    try:
        base.configure_django(database)
        from django.core.management import call_command
        from django.db import transaction
        from django.utils import timezone

        call_command("migrate", verbosity=0)
        from authority.models import Decision
        from edges.api.serializers.bound import represented
        from edges.api.serializers.decisions import DecisionOut
        from h2h_core.audit import audit_record
        from h2h_core.models import AuditEvent

        after = {"case_id": 1, "kind": "refund", "amount": "1.00", "currency": "EUR", "rationale": "benchmark"}
        fields = {"actor_id": None, "actor_username": "", "actor_roles": ["Agent"], "action": "bench.append",
                  "object_type": "bench", "object_id": "1", "outcome": "success", "before": None, "after": after,
                  "reason": "", "ip": None, "request_id": ""}

        def orm_append(i: int) -> None:
            with transaction.atomic(durable=True):
                AuditEvent.objects.create(**fields, occurred_at=timezone.now(), prev_hash="", hash="")

        def prepared_append(i: int) -> None:
            with transaction.atomic(durable=True):
                audit_record(actor=None, action="bench.append", object_type="bench", object_id="1", after=after,
                             roles=["Agent"])

        world = base.World()
        decision = Decision.objects.select_related("case", "kind", "agent", "reversed_by").get(
            pk=base.decide(world, "hot", 0).pk)
        if DecisionOut(decision).data != represented(DecisionOut, decision):
            raise SystemExit("the kept DecisionOut writes other data than a new one")
        pairs = {
            "audit append (own transaction)": (orm_append, prepared_append),
            "decision answer": (lambda i: DecisionOut(decision).data, lambda i: represented(DecisionOut, decision)),
        }
        if database.vendor == "sqlite":  # on SQLite audit_record links at once: not the PostgreSQL append
            del pairs["audit append (own transaction)"]
        print(f"{database.vendor}, {args.calls} calls × {args.rounds} rounds, client CPU ms per call (median)\n")
        print("| what | ORM / new serializer | compiled once / kept | ratio |")
        print("| --- | ---: | ---: | ---: |")
        for label, (plain, fast) in pairs.items():
            plain(0), fast(0)  # warm up: the first call compiles
            times = [(cpu_ms(plain, args.calls), cpu_ms(fast, args.calls)) for _ in range(args.rounds)]
            before, after_ms = (statistics.median(column) for column in zip(*times, strict=True))
            print(f"| {label} | {before:.3f} | {after_ms:.3f} | {after_ms / before:.2f} |")
    finally:
        from django.db import connections

        connections.close_all()
        database.remove()


if __name__ == "__main__":
    main()
