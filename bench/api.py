#!/usr/bin/env python
"""The API side by side with a bare insert: requests per second through gunicorn, measured by wrk.

    DATABASE_URL=postgres://USER@HOST:5432/postgres python bench/api.py [--seconds 10 --rounds 3]

Four POST endpoints are served by one gunicorn (sync workers, production settings: DEBUG=0) on one
database, and loaded by wrk in turn, cell after cell, the order rotated every round so that the
machine's noise falls on all of them alike:

- bare:     /bench/bare/  token authentication, the body validated, one INSERT (bench/comparison);
- naive:    /bench/naive/  the least a decision does: lock the agent's counter, raise it if the cap
            allows, insert the decision, append to one hash-chained audit log (lock head, insert, update);
- decision: /api/v1/decisions/  the product's decision, with an Idempotency-Key like a real client;
- check:    /api/v1/authority-check/  the product's dry run.

Like bench/decisions.py it works on a database of its own (h2h_bench_api: dropped, created, and
dropped again at the end unless --keep). It seeds agents with API tokens, cases and grants far above
what the run spends, so nothing is refused: a cell with any non-2xx answer is reported as not
counting. The load itself is bench/comparison/load.lua. The result is a Markdown table on standard
output; progress goes to standard error. Needs wrk (Debian/Ubuntu: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import decisions as base  # noqa: E402  (the throwaway-database helpers)

base.BENCH_DATABASE = "h2h_bench_api"
ROOT = base.ROOT
AMOUNT = "1.00"
ENDPOINTS = {
    "bare": "/bench/bare/",
    "naive": "/bench/naive/",
    "decision": "/api/v1/decisions/",
    "check": "/api/v1/authority-check/",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="seconds of load per cell (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the endpoints; medians reported (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--agents", type=int, default=8, help="agents, each with its own token (default 8)")
    parser.add_argument("--cases", type=int, default=25, help="cases per agent (default 25)")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS),
                        help=f"which endpoints, comma-separated (default {','.join(ENDPOINTS)})")
    parser.add_argument("--keep", action="store_true", help="keep the h2h_bench_api database afterwards")
    args = parser.parse_args()
    args.endpoints = [name.strip() for name in args.endpoints.split(",") if name.strip()]
    unknown = sorted(set(args.endpoints) - set(ENDPOINTS))
    if unknown or not args.endpoints:
        parser.error(f"unknown endpoints {unknown}: choose among {', '.join(ENDPOINTS)}")
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads (wrk gives each thread its share)")
    return args


def configure_django(database) -> None:
    """The production environment of .ci/deploy-smoke (DEBUG=0, no demo), on the throwaway database."""
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database.url,
        "H2H_VAR_DIR": str(database.tmpdir / "var"),
        "STATIC_ROOT": str(database.tmpdir / "static"),
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-" + secrets.token_hex(24),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on localhost
        # The user throttle stays on the path of every endpoint, at a rate the run never reaches.
        "H2H_API_THROTTLE_USER": "100000000/min",
        # One database session per gunicorn worker for the whole run (production's 60 s would reconnect
        # once a minute, a cost too small to see): a backend that ends mid-cell would take its CPU time
        # with it, and the database CPU per request is read from the backends.
        "CONN_MAX_AGE": "3600",
    })
    for name in ("H2H_TEST_DATABASE_NAME", "H2H_DEMO"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()


def seed(agents: int, cases_per_agent: int) -> list[tuple[str, list[int]]]:
    """Return [(token key, [case ids])] per agent: each with its own cases, grant, token and naive counter."""
    from datetime import timedelta
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from djmoney.money import Money

    from authority.models import AuthorityKind, Grant, GrantStatus, Period
    from bench.comparison.models import NaiveCounter
    from h2h_core.api_tokens import api_token_new
    from h2h_core.models import Case, CaseCategory, CaseStatus, Customer, Role, Team

    now = timezone.now()
    kind = AuthorityKind.objects.get(code="refund")
    team = Team.objects.create(name="Bench", slug="bench")
    agent_role = Group.objects.get_or_create(name=Role.AGENT)[0]
    world = []
    for number in range(agents):
        # A customer per agent: no two agents' decisions meet on a customer (bench/throughput.py measures that).
        customer = Customer.objects.create(name=f"Bench customer {number}", customer_since=now.date(),
                                           annual_value=Money(Decimal("12000"), "EUR"))
        agent = get_user_model().objects.create_user(f"bench-agent-{number}")
        agent.groups.add(agent_role)
        team.members.add(agent)
        cases = Case.objects.bulk_create([
            Case(customer=customer, subject=f"Bench case {number}-{i}", category=CaseCategory.BILLING_ERROR,
                 amount_at_stake=Money(Decimal("100"), "EUR"), status=CaseStatus.OWNED, team=team, owner=agent,
                 opened_at=now)
            for i in range(cases_per_agent)
        ])
        grant = Grant.objects.create(subject_user=agent, kind=kind, per_case_limit=base.LARGE,
                                     period_limit=base.LARGE, period=Period.MONTH, currency="EUR",
                                     valid_from=now - timedelta(days=1), status=GrantStatus.ACTIVE,
                                     reason="benchmark", created_at=now)
        Grant.objects.filter(pk=grant.pk).update(lineage=grant.pk)
        NaiveCounter.objects.create(agent=agent, cap=base.LARGE)
        issued = api_token_new(user=agent)
        issued.token.save(force_insert=True)
        world.append((issued.key, [case.pk for case in cases]))
    return world


# --- load: wrk with a generated Lua script ----------------------------------------------------------

LUA = Path(__file__).resolve().parent / "comparison" / "load.lua"


def lua_script(world, path: str, threads: int) -> str:
    """The run's parameters as Lua globals, then comparison/load.lua."""
    # Consecutive requests go to different agents: agent-major order would queue them on one counter.
    pairs = [(key, cases[i]) for i in range(max(len(c) for _, c in world)) for key, cases in world if i < len(cases)]
    prelude = "\n".join([
        "pairs_ = {" + ", ".join(f'{{"{key}", {case}}}' for key, case in pairs) + "}",
        f'run = "{secrets.token_hex(6)}"',
        f'path = "{path}"',
        f"nthreads = {threads}",
        f'amount = "{AMOUNT}"',
    ])
    return prelude + "\n" + LUA.read_text()


def wrk(url: str, script: Path, *, seconds: float, connections: int, threads: int) -> dict:
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
               "--timeout", "30s", "-s", str(script), url]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode:
        raise SystemExit(f"wrk failed ({finished.returncode}): {finished.stderr or finished.stdout}")
    output = finished.stdout
    numbers = re.search(r"^BENCH requests=(\d+) duration_us=(\d+) non2xx=(\d+) socket_errors=(\d+) "
                        r"p50_us=(\d+) p99_us=(\d+)$", output, re.M)
    if numbers is None:
        raise SystemExit(f"wrk printed no result line:\n{output}")
    requests, duration, non2xx, socket_errors, p50, p99 = (int(n) for n in numbers.groups())
    first = re.search(r"^BENCH first_non2xx=(.*)$", output, re.M)
    return {"rps": requests / (duration / 1e6), "requests": requests, "non2xx": non2xx,
            "socket_errors": socket_errors, "p50_ms": p50 / 1000, "p99_ms": p99 / 1000,
            "first_non2xx": first.group(1).strip() if first else ""}


# --- the server --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(*, port: int, workers: int, log: Path) -> subprocess.Popen:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "h2h_core.wsgi", "--chdir", str(ROOT), "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--worker-class", "sync", "--timeout", "60", "--log-level", "warning"]
    if "--no-control-socket" in subprocess.run([gunicorn, "--help"], capture_output=True, text=True).stdout:
        command.append("--no-control-socket")  # newer gunicorn opens one in the home directory otherwise
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited ({server.returncode}):\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz/", timeout=5).close()
            return server
        except urllib.error.HTTPError:
            return server  # it answers, whatever it says about the queue
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not answer within 60 s") from None
            time.sleep(0.3)


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _cpu_seconds(pid: int | str) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime and stime (stat's 14th, 15th)


def workers_cpu_seconds(server: subprocess.Popen) -> float | None:
    """CPU time (user + system) of gunicorn's workers so far, from /proc; None where there is no /proc."""
    try:
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        return sum(_cpu_seconds(pid) for pid in children)
    except (OSError, ValueError, IndexError):
        return None


def database_cpu_seconds() -> dict[int, float]:
    """CPU time so far of each PostgreSQL backend serving the benchmark's database, by process id.

    Found by process title ("postgres: USER h2h_bench_api ..."): only when the server runs on this machine.
    """
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("postgres: ") and f" {base.BENCH_DATABASE} " in title:
                found[int(entry.name)] = _cpu_seconds(entry.name)
        except (OSError, ValueError, IndexError):
            continue
    return found


def smoke(base_url: str, world, endpoints: list[str]) -> None:
    """One request to each endpoint, so a misconfiguration shows its message instead of a table of zeros."""
    key, cases = world[0]
    body = (f'{{"case": {cases[0]}, "kind": "refund", "amount": "{AMOUNT}", "currency": "EUR", '
            '"rationale": "benchmark"}').encode()
    for name in endpoints:
        path = ENDPOINTS[name]
        request = urllib.request.Request(base_url + path, data=body, method="POST", headers={
            "Authorization": f"Token {key}", "Content-Type": "application/json",
            "Idempotency-Key": f"smoke-{secrets.token_hex(8)}"})
        try:
            urllib.request.urlopen(request, timeout=30).close()
        except urllib.error.HTTPError as error:
            text = error.read()[:500].decode(errors="replace")
            raise SystemExit(f"{name} ({path}) answered {error.code}: {text}") from None


# --- the run -----------------------------------------------------------------------------------------


def measure(args, base_url: str, world, workdir: Path, server) -> dict[str, list[dict]]:
    """Warm every endpoint up, then run the cells round after round, the order rotated each round."""
    def cell(name: str, seconds: float) -> dict:
        script = workdir / f"{name}.lua"
        script.write_text(lua_script(world, ENDPOINTS[name], args.threads))  # a fresh run id: keys never repeat
        cpu_before, db_before = workers_cpu_seconds(server), database_cpu_seconds()
        result = wrk(base_url + ENDPOINTS[name], script, seconds=seconds, connections=args.connections,
                     threads=args.threads)
        cpu_after, db_after = workers_cpu_seconds(server), database_cpu_seconds()
        # CPU per request, of the app server and of its database backends: what the endpoint costs,
        # which the machine's other load disturbs far less than the rate.
        requests = result["requests"]
        result["cpu_ms"] = (None if cpu_before is None or cpu_after is None or not requests
                            else (cpu_after - cpu_before) * 1000 / requests)
        result["db_cpu_ms"] = (None if not db_after or not requests
                               else sum(t - db_before.get(pid, 0) for pid, t in db_after.items()) * 1000 / requests)
        return result

    for name in args.endpoints:
        warm = cell(name, 2)
        if warm.get("non2xx"):
            raise SystemExit(f"{name}: {warm['non2xx']} non-2xx answers while warming up, e.g. {warm['first_non2xx']}")
    cells: dict[str, list[dict]] = {name: [] for name in args.endpoints}
    for number in range(args.rounds):
        shift = number % len(args.endpoints)
        for name in args.endpoints[shift:] + args.endpoints[:shift]:
            result = cell(name, args.seconds)
            result["load"] = os.getloadavg()[0]
            cells[name].append(result)
            bad = f", {result['non2xx']} non-2xx: {result['first_non2xx']}" if result["non2xx"] else ""
            base.note(f"round {number + 1}/{args.rounds} {name}: {result['rps']:.0f} req/s, "
                      f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, load {result['load']:.2f}{bad}")
    return cells


def sealer(stop_event) -> None:
    """Run the worker's audit sealer thread until `stop_event` is set (a process of its own, as a worker is)."""
    import django

    sys.path.insert(0, str(ROOT))  # the settings module is bench.settings (the environment names it)
    django.setup()
    from edges.worker.management.commands.run_worker import Sealer

    thread = Sealer(interval=0.25, idle=1.0)
    thread.start()
    stop_event.wait()
    thread.stopping.set()
    thread.join()


def integrity() -> list[str]:
    """What the run left in the database: rows written, and both audit chains checked.

    Each check reports its own failure, so a change elsewhere (say, in the product's chain) still leaves the table.
    """
    from authority.models import Decision
    from bench.comparison.models import BareRow, NaiveAuditEvent, NaiveAuditHead, NaiveDecision
    from bench.comparison.views import naive_chain_problems

    def rows() -> str:
        return (f"{BareRow.objects.count():,} bare, {NaiveDecision.objects.count():,} naive decisions, "
                f"{Decision.objects.count():,} H2H decisions")

    def naive_chain() -> str:
        decisions, events = NaiveDecision.objects.count(), NaiveAuditEvent.objects.count()
        problems = naive_chain_problems()
        if events != decisions:
            problems.append(f"{events:,} events for {decisions:,} decisions")
        head = NaiveAuditHead.objects.get(pk=1).seq
        return f"{events:,} events, head at #{head:,}, " + (f"BROKEN: {'; '.join(problems[:3])}" if problems
                                                             else "intact")

    def product_chain() -> str:
        from h2h_core.audit import audit_seal
        from h2h_core.audit.verify import verify_chain

        while audit_seal():  # what the sealer had not linked when the load stopped
            pass
        report = verify_chain()
        return (f"{report.total:,} events, " + ("intact" if report.ok else f"BROKEN: {report.message}")
                + (f", {report.pending:,} not sealed" if report.pending else ""))

    lines = []
    for label, check in (("rows written", rows), ("naive audit chain", naive_chain),
                         ("H2H audit chain (verify_chain)", product_chain)):
        try:
            lines.append(f"- {label}: {check()}")
        except Exception as error:  # reported, not hidden: the table above stands
            lines.append(f"- {label}: could not check ({type(error).__name__}: {error})")
    return lines


def table(args, cells: dict[str, list[dict]]) -> list[str]:
    def counted(name):
        return [c for c in cells.get(name, []) if not c["non2xx"]]

    def median(name, field):
        values = [c[field] for c in counted(name) if c[field] is not None]
        return statistics.median(values) if values else None

    def ratio(name, other):
        mine, theirs = median(name, "rps"), median(other, "rps")
        return f"{mine / theirs:.2f}" if mine and theirs else "–"

    lines = ["| endpoint | req/s (median) | per round | × bare | × naive | non-2xx | socket errors | p50 ms | p99 ms "
             "| app CPU ms/request | database CPU ms/request |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in args.endpoints:
        rps, cpu, db_cpu = median(name, "rps"), median(name, "cpu_ms"), median(name, "db_cpu_ms")
        rounds = " / ".join(f"{c['rps']:.0f}" + ("*" if c["non2xx"] else "") for c in cells[name])
        lines.append(
            f"| {name} `{ENDPOINTS[name]}` | {f'{rps:.0f}' if rps else '–'} | {rounds} | {ratio(name, 'bare')} | "
            f"{ratio(name, 'naive')} | {sum(c['non2xx'] for c in cells[name])} | "
            f"{sum(c['socket_errors'] for c in cells[name])} | "
            f"{median(name, 'p50_ms') or 0:.1f} | {median(name, 'p99_ms') or 0:.1f} | "
            f"{'–' if cpu is None else f'{cpu:.1f}'} | {'–' if db_cpu is None else f'{db_cpu:.1f}'} |")
    if any(c["non2xx"] for results in cells.values() for c in results):
        lines.append("\n\\* a cell with non-2xx answers: left out of the median and the ratios.")
    goals = [("decision", "bare", 0.5), ("decision", "naive", 1.0), ("check", "bare", 1.0)]
    met = []
    for name, other, target in goals:
        if name in cells and other in cells:
            reached = (median(name, "rps") or 0) >= target * (median(other, "rps") or float("inf"))
            met.append(f"{name} ≥ {target}× {other}: {ratio(name, other)} ({'met' if reached else 'not met'})")
    if met:
        lines.append("\nIssue 11's goals: " + "; ".join(met) + ".")
    return lines


def main() -> None:
    args = parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/api.py needs wrk, the HTTP load generator: apt-get install wrk (Debian, Ubuntu), "
                         "brew install wrk (macOS).")
    database = base.ThrowawayDatabase(os.environ.get("DATABASE_URL", ""), keep=args.keep)
    if database.vendor != "postgresql":
        raise SystemExit("bench/api.py needs PostgreSQL: set DATABASE_URL to a PostgreSQL server's database.")
    load_before = os.getloadavg()
    server = None
    database.create()
    try:
        configure_django(database)
        from django.core.management import call_command
        from django.db import connections

        base.note(f"migrating {base.BENCH_DATABASE} with bench.settings")
        call_command("migrate", verbosity=0)
        world = seed(args.agents, args.cases)
        connections.close_all()  # gunicorn's workers open their own
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        base.note(f"gunicorn: {args.workers} sync workers on port {port}; wrk: {args.connections} connections, "
                  f"{args.threads} threads, {args.seconds:g} s per cell, {args.rounds} rounds")
        server = start_gunicorn(port=port, workers=args.workers, log=database.tmpdir / "gunicorn.log")
        # A worker's audit sealer runs throughout, as in production: its CPU is part of every cell's load.
        sealing = multiprocessing.get_context("spawn").Event()
        seal = multiprocessing.get_context("spawn").Process(target=sealer, args=(sealing,))
        seal.start()
        smoke(base_url, world, args.endpoints)
        cells = measure(args, base_url, world, database.tmpdir, server)
        stop(server)
        sealing.set()
        seal.join()
        load_after = os.getloadavg()
        print(f"gunicorn {args.workers} sync workers (DEBUG=0), wrk {args.connections} connections "
              f"/ {args.threads} threads, {args.seconds:g} s × {args.rounds} rounds, {args.agents} agents × "
              f"{args.cases} cases; load average {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} "
              f"before, {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} after.\n")
        print("\n".join(table(args, cells)))
        print()
        print("\n".join(integrity()))
    finally:
        if server is not None:
            stop(server)
        from django.db import connections

        connections.close_all()
        database.remove()
        if not args.keep:
            shutil.rmtree(database.tmpdir, ignore_errors=True)


if __name__ == "__main__":
    main()
