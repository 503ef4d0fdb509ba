#!/usr/bin/env python
"""Time the analytics pages on a simulated month of work, on a throwaway database.

    DATABASE_URL=postgres://USER@HOST:5432/postgres python bench/simulated_month.py
    DATABASE_URL=postgres://USER@HOST:5432/postgres python bench/simulated_month.py --keep   # keep it
    DATABASE_URL=postgres://USER@HOST:5432/postgres python bench/simulated_month.py --reuse  # time again

Like bench/decisions.py it never touches the database DATABASE_URL names: it drops and creates
h2h_bench_month next to it (SQLite: a file in a temporary directory), migrates, and runs
`manage.py simulate` (--days 30 --cases 10000 --seed 7 by default: about ten minutes or more, the
simulator's own report and time go to standard error), which ends with ANALYZE. `--reuse` skips
all that and times the pages on the h2h_bench_month a `--keep` run left (and keeps it again).

Then each analytics page is asked for through Django's test client, as the user whose console it
is (the demo's manager of two teams, maria, for /authority/; its auditor, audrey, for /audit/),
three times: the first request's wall time (a fresh client: its session and per-process caches
cold), the best and the median, the CPU time (the client calls the view in-process, so it is the
server's), the statements and the time they took to execute (last request). A Markdown table on
standard output.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import decisions as base  # noqa: E402  (the throwaway-database helpers)

base.BENCH_DATABASE = "h2h_bench_month"

PAGES = (
    ("maria", "/authority/dashboard/", "team dashboard"),
    ("maria", "/authority/outcomes/", "outcomes (manager)"),
    ("audrey", "/audit/outcomes/", "outcomes (auditor)"),
    ("maria", "/authority/recommendations/", "limit recommendations"),
    ("audrey", "/audit/findings/", "abuse findings"),
    ("maria", "/authority/ai-vs-human/", "AI beside people (manager)"),
    ("audrey", "/audit/ai-vs-human/", "AI beside people (auditor)"),
    ("maria", "/authority/shadow/", "shadow decisions"),
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30, help="days simulated (default 30)")
    parser.add_argument("--cases", type=int, default=10_000, help="cases simulated (default 10000)")
    parser.add_argument("--seed", type=int, default=7, help="the simulator's seed (default 7)")
    parser.add_argument("--runs", type=int, default=3, help="requests per page (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep h2h_bench_month (PostgreSQL) afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help="time the pages on the h2h_bench_month a --keep run left, without simulating")
    return parser.parse_args(argv)


def simulate(args) -> None:
    from io import StringIO

    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    out = StringIO()
    wall, cpu = time.perf_counter(), time.process_time()
    call_command("simulate", days=args.days, cases=args.cases, seed=args.seed, stdout=out)
    base.note(out.getvalue().strip())
    base.note(f"simulate: {time.perf_counter() - wall:.0f} s wall, {time.process_time() - cpu:.0f} s CPU "
              f"(this process; the database server's own time is not in it)")


def time_page(client, path: str, runs: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    walls, cpus, statements = [], [], []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            wall, cpu = time.perf_counter(), time.process_time()
            response = client.get(path, secure=True)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}, not 200.")
        statements.append(len(queries.captured_queries))
    first, walls = walls[0], sorted(walls)
    return {"first": first, "best": walls[0], "median": walls[len(walls) // 2], "cpu": min(cpus),
            "statements": max(statements),
            "sql": sum(float(q["time"]) for q in queries.captured_queries)}


def main(argv=None) -> None:
    args = parse_args(argv)
    # The test client asks as "testserver" over HTTPS (production settings: DEBUG off, secure cookies);
    # the demo app brings the simulate command (it adds no page and no middleware).
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ["H2H_DEMO"] = "1"
    database = base.ThrowawayDatabase(os.environ.get("DATABASE_URL", "sqlite://"), keep=args.keep or args.reuse)
    if args.reuse and database.vendor != "postgresql":
        raise SystemExit("--reuse needs PostgreSQL: a SQLite run's file is removed with its temporary directory.")
    if not args.reuse:
        database.create()
    try:
        base.configure_django(database)
        from django.conf import settings

        # The pages' static URLs without a collectstatic manifest (the lookup is a dict read either way).
        settings.STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
        from django.contrib.auth import get_user_model
        from django.db import connection
        from django.test import Client

        if not args.reuse:
            simulate(args)
        users = {user.username: user for user in get_user_model().objects.filter(username__in=["maria", "audrey"])}
        server = connection.cursor().connection.info.server_version if connection.vendor == "postgresql" else ""
        base.note(f"Timing the pages ({connection.vendor} {server}), {args.runs} requests each.")
        print(f"| page ({database.vendor}) | user | wall first / best / median | CPU | statements | SQL execute |")
        print("| --- | --- | --- | --- | --- | --- |")
        clients = {}
        for username, path, label in PAGES:
            if username not in clients:
                clients[username] = Client()
                clients[username].force_login(users[username])
            result = time_page(clients[username], path, args.runs)
            print(f"| {label} `{path}` | {username} | {result['first'] * 1000:.0f} / {result['best'] * 1000:.0f} / "
                  f"{result['median'] * 1000:.0f} ms"
                  f" | {result['cpu'] * 1000:.0f} ms | {result['statements']} | {result['sql'] * 1000:.0f} ms |",
                  flush=True)
    finally:
        from django.db import connections

        connections.close_all()
        database.remove()


if __name__ == "__main__":
    main()
