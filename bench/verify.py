"""Time the audit chain's verification (verify_chain): full, incremental, and its memory.

A throwaway database (bench/decisions.py's rules: a temporary SQLite file, or a PostgreSQL database
named h2h_bench next to the one DATABASE_URL names) gets --events chained events of varied content
(unicode, quotes, nested JSON, IPv4 and IPv6), hashed in Python and bulk-inserted. Then:

- a full verification, best of --rounds, by one process and by as many as verify_chain takes by
  default (one per core, up to four: h2h_core/audit/verify_segments.py), alternated: events per
  second; and the peak of Python's own allocations (tracemalloc) at two sizes, to show memory
  does not grow with the log;
- an incremental verification after a checkpoint at 90 % of the log (what the hourly job does),
  the same two ways (below 200,000 entries one process walks it anyway);
- with --split, where a full run's time goes: fetching the rows alone, fetching and re-hashing them
  (`sealed_rows`), and the whole `verify_chain` (the walk and the Merkle tree on top).

    DATABASE_URL=postgres://postgres@localhost:5432/postgres .venv/bin/python bench/verify.py --events 1000000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import decisions as base  # noqa: E402  (the throwaway-database helpers)

BATCH = 5000
TEXTS = ["Kunde doppelt belastet", "Rückerstattung «sofort»", 'quote " and \\ backslash', "tab\tand\nnewline",
         "emoji 🙂 and 中文", "plain"]
IPS = [None, "127.0.0.1", "203.0.113.7", "2001:db8::1", "::1"]


def insert_events(count: int, *, start_seq: int = 0, previous: str | None = None) -> tuple[int, str]:
    from django.utils import timezone

    from h2h_core.audit import event_hash
    from h2h_core.audit.chain import GENESIS_HASH
    from h2h_core.models import AuditEvent

    seq, previous = start_seq, previous or GENESIS_HASH
    base_time = timezone.now() - timedelta(days=30)
    batch = []
    for i in range(count):
        seq += 1
        text = TEXTS[i % len(TEXTS)]
        fields = {
            "seq": seq, "occurred_at": base_time + timedelta(microseconds=i * 37), "actor_id": 1 + i % 50,
            "actor_username": f"agent-{i % 50}", "actor_roles": ["Agent"] if i % 3 else ["Agent", "Manager"],
            "action": "decision.executed" if i % 4 else "decision.refused", "object_type": "decision",
            "object_id": str(i), "outcome": "success" if i % 4 else "denied",
            "before": None if i % 5 else {"status": "owned", "owner": i % 50},
            "after": {"id": i, "case_id": i // 3, "kind": "refund", "amount": f"{i % 997}.50", "currency": "EUR",
                      "verdict": {"allowed": bool(i % 4), "reasons": [text], "consumptions": [[f"c:{i}", i % 7]]},
                      "rate": None, "confirmed": True},
            "reason": text, "ip": IPS[i % len(IPS)], "request_id": f"req-{i:08d}" if i % 2 else "",
            "prev_hash": previous,
        }
        fields["hash"] = previous = event_hash(fields)
        batch.append(AuditEvent(**fields))
        if len(batch) == BATCH:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    return seq, previous


def extend_chain(count: int) -> None:
    """Append `count` events after the head (sealing what the product left unsealed first), move the head."""
    from django.db import transaction

    from h2h_core.audit import sealer
    from h2h_core.models import AuditHead

    while sealer.audit_seal():
        pass
    with transaction.atomic():
        head = AuditHead.objects.select_for_update().filter(pk=1).first()
        seq, last = insert_events(count, start_seq=head.seq if head else 0, previous=head.hash if head else None)
        AuditHead.objects.update_or_create(pk=1, defaults={"seq": seq, "hash": last})


def timed_verify(**kwargs):
    from h2h_core.audit.verify import verify_chain

    start, cpu = time.perf_counter(), time.process_time()
    report = verify_chain(**kwargs)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if not report.ok:
        raise SystemExit(f"verify_chain failed on the benchmark's own chain: {report.summary()}")
    return report, elapsed, cpu


def split_run() -> list[tuple[str, int, float, float]]:
    """(what ran, rows, wall s, CPU s of this process): the parts of a full verification, each timed alone."""
    from django.db import connection

    from h2h_core.audit import stream
    from h2h_core.audit.verify import verify_chain
    from h2h_core.transactions import read_snapshot

    def fetch_only() -> int:
        rows = 0
        sql = stream._POSTGRESQL_SQL if connection.vendor == "postgresql" else stream._SQLITE_SQL
        with read_snapshot(), connection.chunked_cursor() as cursor:
            cursor.execute(sql, [-(2**63), 2**63 - 1])
            while chunk := cursor.fetchmany(5000):
                rows += len(chunk)
        return rows

    def rehash() -> int:
        with read_snapshot():
            return sum(1 for _ in stream.sealed_rows())

    parts = []
    for label, run in (("fetching the rows only", fetch_only), ("fetching and re-hashing (sealed_rows)", rehash),
                       ("all of verify_chain, one process", lambda: verify_chain(processes=1).count)):
        start, cpu = time.perf_counter(), time.process_time()
        rows = run()
        parts.append((label, rows, time.perf_counter() - start, time.process_time() - cpu))
    return parts


def peak_memory(**kwargs) -> int:
    tracemalloc.start()
    timed_verify(**kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the h2h_bench database (PostgreSQL)")
    parser.add_argument("--split", action="store_true",
                        help="also time a full run's parts alone: fetching, re-hashing, the whole verification")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "sqlite://")
    database = base.ThrowawayDatabase(url, keep=args.keep)
    database.create()
    try:
        base.configure_django(database)
        from django.core.management import call_command
        from django.db import connection

        from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key
        from h2h_core.audit.verify import TrustedCheckpoint
        from h2h_core.audit.verify_segments import default_processes

        call_command("migrate", verbosity=0)
        generate_signing_key()
        small, anchored = max(1, args.events // 10), args.events - args.events // 10
        base.note(f"inserting {args.events:,} chained events")
        started = time.perf_counter()
        extend_chain(small)
        memory_small = peak_memory()
        extend_chain(anchored - small)
        # The checkpoint an incremental run starts after, as the hourly job signs it: at 90 %.
        checkpoint = audit_checkpoint_create()
        since = TrustedCheckpoint(id=checkpoint.pk, seq=checkpoint.seq, hash=checkpoint.hash)
        extend_chain(args.events - anchored)
        inserted = time.perf_counter() - started
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE h2h_core_auditevent")
        memory_full = peak_memory()
        base.note("verifying")
        # One process, and as many as verify_chain takes by default, alternated so noise hits both alike.
        shared = default_processes()
        runs: dict[tuple[str, int], list] = {}
        for _ in range(args.rounds):
            for processes in dict.fromkeys((1, shared)):
                runs.setdefault(("full", processes), []).append(timed_verify(processes=processes))
                runs.setdefault(("incremental, last 10 %", processes), []).append(
                    timed_verify(since=since, processes=processes))
        seq = runs[("full", 1)][0][0].last_seq
        print(f"\n## verify_chain on {connection.vendor}, {seq:,} events ({inserted:.0f} s to insert)\n")
        print("| run | processes asked / used | events | wall best | events/s (wall) | CPU of this process |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for (label, processes), timings in runs.items():
            report, wall, cpu = min(timings, key=lambda run: run[1])
            print(f"| {label} | {processes} / {report.processes} | {report.count:,} | {wall:.2f} s "
                  f"| {report.count / wall:,.0f} | {cpu:.2f} s |")
        for (label, processes), timings in runs.items():
            walls = ", ".join(f"{run[1]:.2f}" for run in timings)
            print(f"all {label} runs, {processes} process(es) asked (wall s): {walls}")
        print(f"peak Python allocations: {memory_small / 1e6:.1f} MB at {small:,} events, "
              f"{memory_full / 1e6:.1f} MB at {seq:,} events")
        if args.split:
            print("\n| what ran | rows | wall | CPU (this process) | µs of CPU per row |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for label, rows, wall, cpu in split_run():
                print(f"| {label} | {rows:,} | {wall:.2f} s | {cpu:.2f} s | {cpu * 1e6 / max(rows, 1):.1f} |")
    finally:
        from django.db import connections

        connections.close_all()
        database.remove()


if __name__ == "__main__":
    main()
