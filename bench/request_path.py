#!/usr/bin/env python
"""Statements and in-process time of one API request: a decision and an authority check.

    DATABASE_URL=sqlite:// python bench/request_path.py
    DATABASE_URL=postgres://USER@HOST:5432/postgres python bench/request_path.py --show-sql

Like bench/decisions.py it never touches the database DATABASE_URL names: it migrates a throwaway
one (h2h_bench_request_path on PostgreSQL, a temporary file for SQLite), seeds one agent with a
generous grant, issues a real API token and sends whole requests through Django's handler in this
process (the test client: every middleware, token authentication, throttling, the view, the
renderer; no socket, no HTTP server). Per request kind it prints the statements one request runs
(CaptureQueriesContext, BEGIN/COMMIT and savepoints included, as Django reports them), the wall and
CPU time per request, the median of three rounds, after a warm-up, and on PostgreSQL the server's
WAL flushes per request over those rounds (pg_stat_wal: the whole server's, so run it alone).
Decisions are sent with an Idempotency-Key, as clients are told to. With --profile KIND it times
nothing and prints instead where that kind of request spends its time (cProfile: by cumulative and
by own time, in wall time, or in CPU time with H2H_PROFILE_CPU=1; H2H_PROFILE_DUMP=FILE also saves
the profile for pstats). With --pieces it times the parts of both requests on their own (the
service, the evaluation, the visibility read, the answer, one round trip), without a profiler's
distortion: what is left of a request once its parts are taken away is the stack every API request
pays (middleware, authentication, throttle, parsing, rendering).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import decisions as base  # noqa: E402
from decisions import CASES, ThrowawayDatabase, World, configure_django, database_version, note  # noqa: E402

# A database of its own, so it can run while another benchmark holds h2h_bench.
base.BENCH_DATABASE = "h2h_bench_request_path"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests timed per kind, in 3 rounds (300)")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of one request of each kind")
    parser.add_argument("--keep", action="store_true",
                        help="keep the h2h_bench_request_path database (PostgreSQL) afterwards")
    parser.add_argument("--profile", choices=("decision", "check"),
                        help="instead of timing, profile that kind of request (cProfile) and print where CPU goes")
    parser.add_argument("--pieces", action="store_true",
                        help="instead, time each part of a decision and a check on its own (CPU and wall ms)")
    return parser.parse_args(argv)


def client_for(world: World):
    from rest_framework.test import APIClient

    from h2h_core.api_tokens import api_token_new

    issued = api_token_new(user=world.agent)
    issued.token.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    return client


def decide(client, world: World, i: int):
    body = {"case": world.cases[i % CASES].pk, "kind": "refund", "amount": "1.00", "currency": "EUR",
            "rationale": "benchmark"}
    response = client.post("/api/v1/decisions/", body, format="json", secure=True,
                           HTTP_IDEMPOTENCY_KEY=f"bench-{time.perf_counter_ns()}-{i}")
    if response.status_code != 201:
        raise SystemExit(f"decision answered {response.status_code}: {response.content[:300]!r}")
    return response


def check(client, world: World, i: int):
    body = {"case": world.cases[i % CASES].pk, "kind": "refund", "amount": "1.00", "currency": "EUR"}
    response = client.post("/api/v1/authority-check/", body, format="json", secure=True)
    if response.status_code != 200:
        raise SystemExit(f"check answered {response.status_code}: {response.content[:300]!r}")
    return response


def statements(send, show: bool, label: str) -> tuple[int, Counter]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        send(10_000)
    if show:
        note(f"--- {label}: {len(captured.captured_queries)} statements")
        for query in captured.captured_queries:
            note("  " + query["sql"][:220])
    kinds = Counter(query["sql"].split(None, 1)[0].upper() for query in captured.captured_queries)
    return len(captured.captured_queries), kinds


def wal_flushes() -> int | None:
    """WAL flushes so far on the PostgreSQL server (pg_stat_wal, this session's sent first); None elsewhere."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT wal_sync FROM pg_stat_wal")
        return cursor.fetchone()[0]


def timed(send, count: int) -> tuple[float, float]:
    """Median wall ms and CPU ms per request over three rounds."""
    walls, cpus = [], []
    per_round = max(count // 3, 1)
    done = 0
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(done, done + per_round):
            send(i)
        walls.append((time.perf_counter() - wall) * 1000 / per_round)
        cpus.append((time.process_time() - cpu) * 1000 / per_round)
        done += per_round
    return statistics.median(walls), statistics.median(cpus)


def profiled(send, count: int) -> None:
    """Print the functions that take most of `count` requests' time, cumulative and own."""
    import cProfile
    import pstats

    # H2H_PROFILE_CPU=1 counts CPU time only: what waits on the database drops out.
    profile = cProfile.Profile(time.process_time) if os.environ.get("H2H_PROFILE_CPU") else cProfile.Profile()
    profile.enable()
    for i in range(count):
        send(i)
    profile.disable()
    if os.environ.get("H2H_PROFILE_DUMP"):
        profile.dump_stats(os.environ["H2H_PROFILE_DUMP"])
    stats = pstats.Stats(profile, stream=sys.stderr).strip_dirs()
    for order in ("cumulative", "tottime"):
        stats.sort_stats(order).print_stats(40)
    if os.environ.get("H2H_PROFILE_CALLERS"):  # e.g. "deepcopy|fields.py:294": who calls those
        stats.print_callers(os.environ["H2H_PROFILE_CALLERS"])


def pieces(client, world: World, count: int) -> list[tuple[str, float, float]]:
    """(label, wall ms, CPU ms) per call of each part of the two requests, the median of three rounds."""
    from itertools import count as numbers

    from django.db import connection

    from authority import policy
    from authority.models import Decision
    from authority.services import decision_execute
    from edges.api.serializers.bound import represented
    from edges.api.serializers.decisions import DecisionOut
    from edges.api.serializers.verdicts import verdict_data
    from edges.api.views.base import visible_case

    agent, kind, case, fresh = world.agent, world.kind, world.cases[0], numbers()

    def unkeyed(i):
        body = {"case": world.cases[i % CASES].pk, "kind": "refund", "amount": "1.00", "currency": "EUR",
                "rationale": "benchmark"}
        response = client.post("/api/v1/decisions/", body, format="json", secure=True)
        if response.status_code != 201:
            raise SystemExit(f"decision answered {response.status_code}: {response.content[:300]!r}")

    def service(i):
        decision_execute(actor=agent, case=world.cases[i % CASES], kind=kind, amount="1.00", currency="EUR",
                         rationale="benchmark", idempotency_key=f"pieces-{time.perf_counter_ns()}-{i}")

    def round_trip(_i):
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchall()

    answered = decide(client, world, 0).json()
    stored = Decision.objects.select_related("case", "agent", "kind").get(pk=answered["id"])
    seen = visible_case(agent, case.pk)  # as both views pass it on
    verdict = policy.evaluate(agent=agent, kind=kind, amount="1.00", currency="EUR", case=seen)
    parts = [
        ("decision request, with an Idempotency-Key", lambda i: decide(client, world, i)),
        ("decision request, without a key", unkeyed),
        ("  decision_execute (the service alone)", service),
        ("  represented(DecisionOut) (the answer's body)", lambda _i: represented(DecisionOut, stored)),
        ("check request", lambda i: check(client, world, i)),
        ("  policy.evaluate (grants, counters, resolution)",
         lambda _i: policy.evaluate(agent=agent, kind=kind, amount="1.00", currency="EUR", case=seen)),
        ("  verdict_data (the answer's body)", lambda _i: verdict_data(verdict)),
        ("both: visible_case (the views' visibility read)", lambda _i: visible_case(agent, case.pk)),
        ("one statement (SELECT 1 through Django's cursor)", round_trip),
    ]
    results = []
    for label, part in parts:
        for _ in range(20):
            part(next(fresh))
        wall_ms, cpu_ms = timed(lambda _i, part=part: part(next(fresh)), count)
        results.append((label, wall_ms, cpu_ms))
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    database = ThrowawayDatabase(os.environ.get("DATABASE_URL", "sqlite://"), keep=args.keep)
    database.create()
    try:
        os.environ.setdefault("ALLOWED_HOSTS", "testserver")
        # The user throttle stays on the path, at a rate no run reaches (as in bench/api.py).
        os.environ.setdefault("H2H_API_THROTTLE_USER", "100000000/min")
        configure_django(database)
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        world = World()
        client = client_for(world)
        paths = {"decision": lambda i: decide(client, world, i), "check": lambda i: check(client, world, i)}
        if args.profile:
            for i in range(20):
                paths[args.profile](i)
            profiled(paths[args.profile], args.requests)
            return
        if args.pieces:
            print(f"Database: {database_version(database.vendor)}; one client, one thread; each part called "
                  f"{args.requests} times (median of 3 rounds).\n")
            print("| part | ms per call | CPU ms per call |")
            print("| --- | ---: | ---: |")
            for label, wall_ms, cpu_ms in pieces(client, world, args.requests):
                part = f"↳ {label.strip()}" if label.startswith("  ") else label
                print(f"| {part} | {wall_ms:.3f} | {cpu_ms:.3f} |")
            return
        rows = []
        for label, send in paths.items():
            for i in range(20):  # warm up: imports, caches, the connection
                send(i)
            count, kinds = statements(send, args.show_sql, label)
            flushes = wal_flushes()
            wall_ms, cpu_ms = timed(send, args.requests)
            if flushes is not None:
                flushes = (wal_flushes() - flushes) / (args.requests // 3 * 3)
            rows.append((label, count, kinds, wall_ms, cpu_ms, flushes))
        print(f"Database: {database_version(database.vendor)}; one client, one thread; "
              f"{args.requests} requests per kind (median of 3 rounds).\n")
        # WAL flushes are the server's, all clients' (and the WAL writer's) together: a run alone shows the request's.
        print("| request | statements | ms per request | CPU ms per request | WAL flushes per request "
              "| statements by kind |")
        print("| --- | ---: | ---: | ---: | ---: | --- |")
        for label, count, kinds, wall_ms, cpu_ms, flushes in rows:
            by_kind = ", ".join(f"{n} {k}" for k, n in kinds.most_common())
            print(f"| {label} | {count} | {wall_ms:.2f} | {cpu_ms:.2f} | "
                  f"{'–' if flushes is None else f'{flushes:.2f}'} | {by_kind} |")
    finally:
        from django.db import connections

        connections.close_all()  # also after a failed request: the database cannot be dropped while in use
        database.remove()


if __name__ == "__main__":
    main()
