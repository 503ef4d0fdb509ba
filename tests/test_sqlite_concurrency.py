"""The embedded default under concurrency: eight writers through the API on SQLite, never a 5xx.

The test suite's own database is SQLite in memory, which another process cannot open, so this test
builds what `make run` has: a file database, migrated and cast in subprocesses, served by gunicorn
with several processes and threads, so that writes really overlap. Eight clients, each an agent,
then open and claim cases, execute decisions within their authority (some with an Idempotency-Key),
ask for decisions above it (refused, and the refusal audited in a second write), resolve cases and
read, for H2H_CONCURRENCY_SECONDS (default 30). Every answer must be the one the request deserves;
none may be a 5xx, and none may be "try again" either: the database must let writers wait their turn.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
SECONDS = float(os.environ.get("H2H_CONCURRENCY_SECONDS", "30"))
WRITERS = 8
# Over 30 seconds the embedded default manages far more; a shortened local run expects proportionally fewer.
MIN_SUCCESSFUL_WRITES = max(10, round(100 * SECONDS / 30))
API = "/api/v1"
STARTUP_SECONDS = 60
REQUEST_TIMEOUT_SECONDS = 90

pytestmark = [
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3",
                       reason="exercises the embedded SQLite default; this run uses another database"),
    pytest.mark.skipif(importlib.util.find_spec("gunicorn") is None,
                       reason="needs gunicorn (a dependency of the project) to serve with several workers"),
]


# --- the server ------------------------------------------------------------------------------------


def server_environment(directory: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "H2H_TEST_DATABASE_NAME", "DJANGO_SETTINGS_MODULE"}}
    env.update({
        "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
        "H2H_VAR_DIR": str(directory),
        "DJANGO_SETTINGS_MODULE": "h2h_core.settings",
        # The development settings, as `make run` has them (DEBUG=0 would redirect to HTTPS).
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
        # Each agent asks as fast as the server answers: more than the per-user rate a person needs.
        "H2H_API_THROTTLE_USER": "off",
    })
    return env


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/healthz/")
        return connection.getresponse().status == 200
    except OSError:
        return False


def stop(process: subprocess.Popen) -> None:
    """Stop gunicorn and its workers: they run in a session of their own, started here."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass


@contextmanager
def gunicorn(env: dict[str, str], log: Path):
    """Serve the project on a free port with two worker processes of four threads; yield the port."""
    for _attempt in range(3):  # a free port can be taken between the probe and gunicorn's bind
        port = free_port()
        with log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "h2h_core.wsgi", "--bind", f"127.0.0.1:{port}",
                 "--workers", "2", "--threads", "4", "--timeout", "120", "--graceful-timeout", "5"],
                cwd=BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while process.poll() is None and time.monotonic() < deadline and not answers(port):
                time.sleep(0.2)
            if process.poll() is None and answers(port):
                yield port
                return
        finally:
            stop(process)
        if "Address already in use" not in log.read_text(errors="replace"):
            break
    pytest.fail(f"gunicorn did not start:\n{log.read_text(errors='replace')[-5000:]}")


# --- the clients -----------------------------------------------------------------------------------


class Client:
    """One agent's HTTP client: a connection per request, every answer counted as (operation, status, code)."""

    def __init__(self, port: int, tally: Counter, lock: threading.Lock, token: str | None = None,
                 seconds: dict[str, list[float]] | None = None):
        self.port, self.tally, self.lock, self.token = port, tally, lock, token
        self.seconds = seconds if seconds is not None else {}

    def call(self, operation: str, method: str, path: str, payload: dict | None = None,
             headers: dict | None = None) -> tuple[int, dict]:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            sent["Authorization"] = f"Token {self.token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT_SECONDS)
        started = time.monotonic()
        try:
            connection.request(method, path, body=json.dumps(payload) if payload is not None else None,
                               headers=sent)
            response = connection.getresponse()
            status, raw = response.status, response.read()
        except OSError as error:  # no answer at all is as bad as a 5xx
            status, raw = 0, type(error).__name__.encode()
        finally:
            connection.close()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        code = body.get("code", "") if isinstance(body, dict) and status >= 400 else ""
        with self.lock:
            self.tally[(operation, status, code)] += 1
            self.seconds.setdefault(operation, []).append(time.monotonic() - started)
        return status, body if isinstance(body, dict) else {"results": body}


def token_for(port: int, username: str, password: str) -> str:
    status, body = Client(port, Counter(), threading.Lock()).call(
        "token", "POST", f"{API}/auth/token/", {"username": username, "password": password})
    assert status == 200, (status, body)
    return body["token"]


class Agent:
    """Works cases of its own through the API until the deadline: decides, is refused, resolves, reads."""

    def __init__(self, client: Client, *, customer: int, per_case_limit: str, seed: int):
        self.client, self.customer, self.per_case_limit = client, customer, per_case_limit
        self.random = random.Random(seed)
        self.opened: int | None = None  # opened, not yet claimed
        self.case: int | None = None  # claimed: this agent owns it

    def take_a_case(self) -> None:
        if self.opened is None:
            status, body = self.client.call("open", "POST", f"{API}/cases/", {
                "customer": self.customer, "subject": f"Charged twice ({uuid.uuid4().hex[:8]})",
                "category": "complaint", "amount_at_stake": "120.00", "currency": "EUR"})
            if status != 201:
                return
            self.opened = body["id"]
        status, _ = self.client.call("claim", "POST", f"{API}/cases/{self.opened}/claim/")
        if status == 200:
            self.case, self.opened = self.opened, None

    def decide(self, amount: str, *, operation: str, with_key: bool = False) -> None:
        headers = {"Idempotency-Key": str(uuid.uuid4())} if with_key else None
        self.client.call(operation, "POST", f"{API}/decisions/", {
            "case": self.case, "kind": "refund", "amount": amount, "currency": "EUR",
            "rationale": "Refund of the duplicate charge"}, headers)

    def step(self) -> None:
        if self.case is None:
            self.take_a_case()
            return
        roll = self.random.random()
        if roll < 0.45:
            amount = f"0.{self.random.randint(1, 99):02d}"
            self.decide(amount, operation="decide", with_key=self.random.random() < 0.5)
        elif roll < 0.60:
            # Above the per-case limit: refused, and the refusal is audited after the rollback.
            self.decide(f"{int(self.per_case_limit) + 100}.00", operation="decide above limit")
        elif roll < 0.68:
            status, _ = self.client.call("resolve", "POST", f"{API}/cases/{self.case}/resolve/",
                                         {"summary": "Refunded the duplicate charge."})
            if status == 200:
                self.case = None
        elif roll < 0.80:
            self.client.call("read case", "GET", f"{API}/cases/{self.case}/")
        elif roll < 0.92:
            self.client.call("read decisions", "GET", f"{API}/decisions/?case={self.case}")
        else:
            self.client.call("read my cases", "GET", f"{API}/cases/?owner=me&open=true")

    def work_until(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            self.step()


# What each operation should answer; anything else is a defect of the server (or of this test).
EXPECTED = {
    "open": {(201, "")},
    "claim": {(200, "")},
    "decide": {(201, "")},
    "decide above limit": {(403, "authority_denied")},
    "resolve": {(200, "")},
    "read case": {(200, "")},
    "read decisions": {(200, "")},
    "read my cases": {(200, "")},
}
WRITES = {"open", "claim", "decide", "resolve"}


def report(tally: Counter, seconds: dict[str, list[float]]) -> str:
    lines = [f"{operation:<20} {status:>3} {code or '-':<24} {count:>6}"
             for (operation, status, code), count in sorted(tally.items())]
    timing = []
    for operation, taken in sorted(seconds.items()):
        taken = sorted(taken)
        timing.append(f"{operation:<20} {taken[len(taken) // 2]:>6.3f} {taken[int(len(taken) * 0.95)]:>6.3f}"
                      f" {taken[-1]:>6.3f}")
    return "\n".join(["operation            status code                      count", *lines,
                      "operation            median    p95    max (seconds)", *timing])


def test_eight_concurrent_writers_through_the_api_never_get_a_5xx():
    with tempfile.TemporaryDirectory(prefix="h2h-sqlite-concurrency-") as directory:
        directory = Path(directory)
        env = server_environment(directory)
        password = f"Cc-{uuid.uuid4().hex}"
        # given a migrated file database with eight agents who may refund up to 500 EUR per case
        run(["manage.py", "migrate", "--noinput", "-v", "0"], env)
        cast = json.loads(run(["-m", "tests.sqlite_concurrency_cast"],
                              {**env, "H2H_CAST_AGENTS": str(WRITERS), "H2H_CAST_PASSWORD": password})
                          .strip().splitlines()[-1])
        # and the project served by gunicorn with two processes of four threads
        with gunicorn(env, directory / "gunicorn.log") as port:
            tally, lock, seconds = Counter(), threading.Lock(), {}
            agents = [Agent(Client(port, tally, lock, token_for(port, username, password), seconds),
                            customer=cast["customer"], per_case_limit=cast["per_case_limit"], seed=number)
                      for number, username in enumerate(cast["agents"])]
            # when the eight agents work their cases at the same time
            deadline = time.monotonic() + SECONDS
            threads = [threading.Thread(target=agent.work_until, args=(deadline,), daemon=True) for agent in agents]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=SECONDS + 2 * REQUEST_TIMEOUT_SECONDS)
            assert not any(thread.is_alive() for thread in threads), "a client hung"
        server_log = (directory / "gunicorn.log").read_text(errors="replace")
        with closing(sqlite3.connect(directory / "db.sqlite3")) as database:
            journal_mode = database.execute("PRAGMA journal_mode").fetchone()[0]

    counts = report(tally, seconds)
    print(f"\n{WRITERS} writers for {SECONDS:g} s on SQLite:\n{counts}")
    # then no answer was a 5xx (or no answer at all)
    failures = {key: count for key, count in tally.items() if key[1] == 0 or key[1] >= 500}
    assert not failures, f"5xx or no answer:\n{counts}\n{server_log[-5000:]}"
    # and every answer was the one the request deserves: no "try again" either, writers waited their turn
    unexpected = {key: count for key, count in tally.items() if key[1:] not in EXPECTED[key[0]]}
    assert not unexpected, f"unexpected answers:\n{counts}\n{server_log[-5000:]}"
    # and the writers really wrote, refusals included
    succeeded = sum(count for (operation, status, _), count in tally.items() if operation in WRITES and status < 300)
    assert succeeded >= MIN_SUCCESSFUL_WRITES, f"only {succeeded} writes succeeded:\n{counts}"
    assert tally[("decide above limit", 403, "authority_denied")] > 0, counts
    # and the database the server wrote is in write-ahead-log mode, as the settings ask
    assert journal_mode == "wal"
