"""Idempotency-Key on SQLite: a retry after the first attempt's process died gets a definitive answer at once.

The first attempt's claim lock is an flock on a lock file. A real process takes it and is killed
(SIGKILL): the kernel drops the lock, as it would for a worker killed mid-request that never stores
or releases anything.
"""

import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from authority.models import AuthorityKind, Decision, IdempotencyRecord
from authority.services import decision_execute
from edges.api.idempotency import fingerprint_of
from edges.web.claim_locks import claim_lock, lock_directory, lock_file_path
from edges.worker.upkeep import retention_purge
from h2h_core.models import AuditEvent, Case, Customer
from tests.factories import CaseFactory, CustomerFactory
from workflows import services as flow_steps
from workflows.models import CaseProcess

from .helpers import assert_error_shape, client_for, grant_refund, idempotency_records, state

pytestmark = [
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite claim lock"),
    pytest.mark.skipif(sys.platform == "win32", reason="no flock on Windows: the timeout applies there"),
]

DECISIONS = "/api/v1/decisions/"
CASES = "/api/v1/cases/"
KEY = "refund-1"

HOLD_THE_LOCK = """
import fcntl, sys, time
handle = open(sys.argv[1], "a")
fcntl.flock(handle, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(300)
"""


@pytest.fixture(autouse=True)
def _own_lock_directory(settings, tmp_path):
    settings.VAR_DIR = tmp_path


class LockHolder:
    """Another process holding a key's claim lock: the first attempt, alive until killed."""

    def __init__(self, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(path)], stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout.readline().strip() == "held"

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            self.kill()
        self.process.stdout.close()


def refund(case, amount="200.00"):
    return {"case": case.pk, "kind": "refund", "amount": amount, "currency": "EUR", "rationale": "Double charge"}


def claimed_in_progress(user, endpoint, payload, key=KEY):
    """The record the first attempt inserted under its claim lock, a moment ago."""
    return IdempotencyRecord.objects.create(user=user, key=key, endpoint=f"POST {endpoint}",
                                            fingerprint=fingerprint_of(endpoint=f"POST {endpoint}", body=payload),
                                            created_at=timezone.now(), held_by_session=True)


def retry_until_definitive(client, endpoint, payload, *, within: float):
    """Send the request again after each 409, as a client would, for `within` seconds: the last response."""
    deadline = time.monotonic() + within
    while True:
        response = client.post(endpoint, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
        if response.status_code != 409 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


@pytest.mark.django_db
@pytest.mark.parametrize("died", ["before_the_service", "after_commit"])
def test_a_retry_after_the_first_attempts_process_is_killed_gets_a_definitive_answer_at_once(alice, retention, died):
    # given a first attempt that claimed the key and holds its lock (and, after_commit, whose decision committed)
    grant_refund(alice)
    case = CaseFactory(owner=alice, team=retention)
    payload = refund(case)
    claimed_in_progress(alice, DECISIONS, payload)
    if died == "after_commit":
        decision_execute(actor=alice, case=case, kind=AuthorityKind.objects.get(code="refund"), amount="200.00",
                         currency="EUR", rationale="Double charge", idempotency_key=KEY)
    before = state()
    first = LockHolder(lock_file_path(user_id=alice.pk, key=KEY))
    try:
        # when the client retries while the first attempt is alive
        retry = client_for(alice).post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
        # then it is told to come back, and nothing ran
        body = assert_error_shape(retry, 409, "idempotency_in_progress")
        assert retry["Retry-After"] == "1" and body["details"] == {"retry_after_seconds": 1}
        assert state() == before
        # when the first attempt's process is killed, and the client retries
        first.kill()
        started = time.monotonic()
        response = retry_until_definitive(client_for(alice), DECISIONS, payload, within=5)
    finally:
        first.stop()
    # then within seconds it gets the decision, made exactly once, and the answer is stored
    assert response.status_code == 201, (response.status_code, response.content[:300])
    assert time.monotonic() - started < 5
    (decision,) = Decision.objects.all()
    assert response.json()["id"] == decision.pk
    assert AuditEvent.objects.filter(action="decision.executed").count() == 1
    assert idempotency_records() == [(KEY, "done", 201)]
    # and the lock file is gone with the request that released it
    assert not list(lock_directory().glob("*.lock"))


@pytest.mark.django_db
def test_a_case_opened_before_the_first_attempt_died_is_the_retrys_answer(alice):
    # given a first attempt that opened the case (committed) and was killed before it stored its response
    payload = {"customer": CustomerFactory().pk, "subject": "Charged twice", "category": "billing_error",
               "amount_at_stake": "89.90", "currency": "EUR", "description": ""}
    claimed_in_progress(alice, CASES, payload)
    opened = flow_steps.case_flow_open(actor=alice, customer=Customer.objects.get(pk=payload["customer"]),
                                       subject="Charged twice", category="billing_error", amount_at_stake="89.90",
                                       currency="EUR", description="", idempotency_key=KEY)
    first = LockHolder(lock_file_path(user_id=alice.pk, key=KEY))
    first.kill()
    first.stop()
    # when the client retries
    response = client_for(alice).post(CASES, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    # then the answer names the case the first attempt opened, and there is still one case with one flow
    assert response.status_code == 201, (response.status_code, response.content[:300])
    assert response.json()["id"] == opened.pk
    assert list(Case.objects.values_list("pk", flat=True)) == [opened.pk]
    assert CaseProcess.objects.filter(case_id=opened.pk).count() == 1
    assert AuditEvent.objects.filter(action="case.opened").count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_while_the_first_attempt_runs_in_this_process_a_retry_is_409_and_then_its_replay(alice, retention,
                                                                                        monkeypatch):
    # given a first attempt, in another thread of this process, that holds the key and has not finished
    grant_refund(alice)
    case = CaseFactory(owner=alice, team=retention)
    payload = refund(case)
    reached, go_on, outcome = threading.Event(), threading.Event(), []

    def held_decision_execute(**kwargs):
        reached.set()
        assert go_on.wait(timeout=60)
        return decision_execute(**kwargs)

    monkeypatch.setattr("edges.api.views.decisions.decision_execute", held_decision_execute)

    def post():
        try:
            outcome.append(client_for(alice).post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY))
        finally:
            connection.close()

    first = threading.Thread(target=post)
    first.start()
    try:
        assert reached.wait(timeout=30)
        # when the client retries meanwhile
        retry = client_for(alice).post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
        # then it waits its turn: nothing ran twice
        assert_error_shape(retry, 409, "idempotency_in_progress")
        assert retry["Retry-After"] == "1" and not Decision.objects.exists()
    finally:
        go_on.set()
        first.join(timeout=60)
    # and once the first attempt is done, the retry gets its answer
    assert [response.status_code for response in outcome] == [201]
    replay = client_for(alice).post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY=KEY)
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert replay.json() == outcome[0].json() and Decision.objects.count() == 1


def test_a_claim_lock_is_exclusive_and_leaves_no_file_behind():
    # given a request holding a key's claim lock
    with claim_lock(user_id=1, key=KEY) as held:
        # then another request (its own descriptor, even in this process) cannot take it, another key can
        with claim_lock(user_id=1, key=KEY) as other:
            assert (held, other) == (True, False)
        with claim_lock(user_id=2, key=KEY) as someone_else:
            assert someone_else is True
        assert lock_file_path(user_id=1, key=KEY).exists()
    # and once released, it can be taken again and no file is left
    assert not list(lock_directory().glob("*.lock"))
    with claim_lock(user_id=1, key=KEY) as again:
        assert again is True


@pytest.mark.django_db
def test_the_retention_purge_removes_lock_files_of_killed_processes_only():
    # given a lock file left by a killed process, and one a running process holds
    left = lock_file_path(user_id=1, key="left")
    dead = LockHolder(left)
    dead.kill()
    dead.stop()
    running = LockHolder(lock_file_path(user_id=1, key="running"))
    try:
        # when the daily retention purge runs
        purged = retention_purge()
        # then only the file nobody holds is gone
        assert purged["lock_files"] == 1
        assert not left.exists() and lock_file_path(user_id=1, key="running").exists()
    finally:
        running.stop()
