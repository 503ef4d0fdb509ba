#!/usr/bin/env python
"""Audit appends per second with several writers while the sealer runs, and the seal lag (PostgreSQL).

    DATABASE_URL=postgres://USER@HOST:5432/postgres python bench/audit_appends.py --writers 4 --seconds 20

Works on a database of its own (h2h_bench_appends, dropped afterwards), like bench/decisions.py.
Each writer is a separate process (with --threads threads, each its own connection) calling
`audit_record` in a transaction of its own, in a loop, for --seconds, all starting together once
each has connected and appended once; meanwhile one more process runs the worker's sealer thread
(run_worker's `Sealer`, with its default periods), as a worker does. When the writers stop, the sealer drains what is
left; then every event must be sealed, the chain must verify, and the seal lag (sealed_at minus
occurred_at) of the events written is reported: p50, p99 and max. The result is Markdown.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import decisions as base  # noqa: E402  (the throwaway-database helpers)

base.BENCH_DATABASE = "h2h_bench_appends"


def writer(number: int, threads: int, go, deadline, ready, results) -> None:
    """Append from `threads` threads (a connection each) from `go` until `deadline`, after one untimed append each."""
    import threading

    from django.db import connections, transaction

    from h2h_core.audit import audit_record

    connections.close_all()  # never share the parent's connection
    after = {"case_id": number, "kind": "refund", "amount": "1", "currency": "EUR", "rationale": "benchmark"}
    counts = []

    def append(index: int) -> None:
        with transaction.atomic(durable=True):
            audit_record(actor=None, action="bench.append", object_type="bench", object_id=index, after=after,
                         roles=["Agent"])

    def loop() -> None:
        append(-1)  # connecting and a forked process's first moments are not what is measured
        ready.put(number)
        go.wait()
        done, end = 0, deadline.value
        while time.perf_counter() < end:
            append(done)
            done += 1
        counts.append(done)
        connections.close_all()

    running = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    results.put(sum(counts))


def sealer(stop, seconds_idle: float) -> None:
    from django.db import connections

    try:
        from edges.worker.management.commands.run_worker import Sealer
    except ImportError:  # a version before the sealer: each append linked itself under the head's lock
        return

    connections.close_all()
    thread = Sealer(interval=0.25, idle=seconds_idle)
    thread.start()
    stop.wait()
    thread.stopping.set()
    thread.join()


def has_sealed_at() -> bool:
    from h2h_core.models import AuditEvent

    return any(field.name == "sealed_at" for field in AuditEvent._meta.fields)


def lag_percentiles(after_id: int) -> tuple[float, float, float, int]:
    from django.db import connection

    if not has_sealed_at():  # a version before the sealer: no lag to measure
        return 0.0, 0.0, 0.0, 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), percentile_cont(0.99) WITHIN GROUP "
            "(ORDER BY lag), max(lag), count(*) FROM (SELECT extract(epoch FROM sealed_at - occurred_at) AS lag "
            "FROM h2h_core_auditevent WHERE action = 'bench.append' AND id > %s) AS lags", [after_id])
        p50, p99, worst, count = cursor.fetchone()
    return float(p50 or 0), float(p99 or 0), float(worst or 0), count


def run(writers: int, seconds: float, threads: int = 1) -> dict:
    from django.db import connections

    from h2h_core.models import AuditEvent

    first = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    connections.close_all()
    context = multiprocessing.get_context("fork")
    results, ready, stop, go = context.Queue(), context.Queue(), context.Event(), context.Event()
    deadline = context.Value("d", 0.0)
    seal = context.Process(target=sealer, args=(stop, 1.0))
    seal.start()
    processes = [context.Process(target=writer, args=(number, threads, go, deadline, ready, results))
                 for number in range(writers)]
    for process in processes:
        process.start()
    for _ in range(writers * threads):
        ready.get()
    cpu_before = os.times()
    deadline.value = time.perf_counter() + seconds  # CLOCK_MONOTONIC: the same clock in every process
    go.set()
    total = sum(results.get() for _ in processes)
    for process in processes:
        process.join()
    drained = time.perf_counter()
    while AuditEvent.objects.filter(seq__isnull=True).exists():  # the sealer drains what is left
        time.sleep(0.1)
    drain = time.perf_counter() - drained
    stop.set()
    seal.join()
    cpu_after = os.times()
    connections.close_all()
    p50, p99, worst, sealed = lag_percentiles(first)
    return {"writers": f"{writers} × {threads}" if threads > 1 else writers, "appends": total,
            "rate": total / seconds, "p50": p50, "p99": p99, "max": worst,
            "sealed": sealed, "drain": drain,
            "child_cpu": (cpu_after.children_user + cpu_after.children_system)
            - (cpu_before.children_user + cpu_before.children_system)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", default="4", help="comma-separated writer counts (default 4)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per writer process, each with its own connection (default 1)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per measurement (default 20)")
    args = parser.parse_args()
    database = base.ThrowawayDatabase(os.environ.get("DATABASE_URL", ""), keep=False)
    if database.vendor != "postgresql":
        raise SystemExit("The sealer runs on PostgreSQL only (SQLite links each event at once).")
    database.create()
    try:
        base.configure_django(database)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from h2h_core.audit.verify import verify_chain
        from h2h_core.models import AuditEvent

        rows = []
        for count in (int(n) for n in args.writers.split(",")):
            row = run(count, args.seconds, args.threads)
            report = verify_chain()
            if not report.ok or getattr(report, "pending", 0) or report.total != AuditEvent.objects.count():
                raise SystemExit(f"the chain does not hold after the run: {report.summary()}")
            rows.append(row)
            base.note(f"{row['writers']} writers: {row['rate']:.0f} appends/s, seal lag p99 {row['p99']:.3f} s")
        print("| writers | appends | appends/s | seal lag p50 | p99 | max | drain after stop | client CPU s |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for row in rows:
            print(f"| {row['writers']} | {row['appends']:,} | {row['rate']:,.0f} | {row['p50']:.3f} s | "
                  f"{row['p99']:.3f} s | {row['max']:.3f} s | {row['drain']:.2f} s | {row['child_cpu']:.1f} |")
    finally:
        from django.db import connections

        connections.close_all()
        database.remove()


if __name__ == "__main__":
    main()
