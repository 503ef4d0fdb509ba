#!/usr/bin/env python
"""Two small reads one after the other, against the same two in one psycopg pipeline: CPU and wall per pair.

The question it answers: would sending a request's reads together (psycopg's pipeline mode) save
the round trips' cost? It reads two catalog rows by key, prepared on the server as the product's
hot reads are, on one connection to the database DATABASE_URL names (PostgreSQL only; it writes
nothing). Each mode runs --pairs times after a warm-up, alternated, --rounds times each.

    DATABASE_URL=postgres://postgres@localhost:5432/postgres .venv/bin/python bench/pipeline_mode.py
"""

from __future__ import annotations

import argparse
import os
import time

import psycopg

FIRST = "SELECT oid, relname FROM pg_class WHERE oid = %s"
SECOND = "SELECT oid, typname FROM pg_type WHERE oid = %s"


def one_after_the_other(connection: psycopg.Connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute(FIRST, [1259])
        cursor.fetchall()
        cursor.execute(SECOND, [23])
        cursor.fetchall()


def in_one_pipeline(connection: psycopg.Connection) -> None:
    with connection.pipeline(), connection.cursor() as first, connection.cursor() as second:
        first.execute(FIRST, [1259])
        second.execute(SECOND, [23])
        first.fetchall()
        second.fetchall()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database: pipeline mode is PostgreSQL's.")
    with psycopg.connect(url, autocommit=True, prepare_threshold=0) as connection:
        print(f"psycopg {psycopg.__version__}, {args.pairs} pairs per run\n")
        print("| mode | CPU ms per pair | wall ms per pair |")
        print("| --- | ---: | ---: |")
        for _ in range(args.rounds):
            for label, mode in (("one after the other", one_after_the_other), ("in one pipeline", in_one_pipeline)):
                for _ in range(200):
                    mode(connection)
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(args.pairs):
                    mode(connection)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                print(f"| {label} | {cpu * 1000 / args.pairs:.3f} | {wall * 1000 / args.pairs:.3f} |")


if __name__ == "__main__":
    main()
