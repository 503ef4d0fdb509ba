"""The audit head is really the last lock, and a lock covers only the rows it names (PostgreSQL).

Each test stops one writer right before its audit append, while it holds its row locks, and runs a
second transaction against those locks, deterministically (no timing luck):

- a foreign-key check that PostgreSQL defers to COMMIT must not run after the second transaction
  has taken the audit head: the paused writer would then wait for the head while the head's holder
  waits for the writer's row, and one of them would die of a deadlock;
- locking a case (a grant, a request) must not lock the customer (the kind) it joins.

The data is committed first (transaction=True); every thread closes its own connection.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from authority.models import AuthorityKind, AuthorityRequest, Decision, Grant, RequestStatus
from authority.services import authority_request_open, authority_request_reject, decision_execute, grant_end
from h2h_core.audit import audit_seal
from h2h_core.audit.verify import verify_chain
from h2h_core.models import AuditEvent, CaseEvent, CaseStatus, Customer, Role
from h2h_core.services import case_add_note, case_resolve
from tests.factories import GrantFactory, UserFactory, kind

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="lock tests need PostgreSQL row locks (set DATABASE_URL to a PostgreSQL server)"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

TIMEOUT = 30


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class Worker(threading.Thread):
    """Run `work` on a connection of its own; keep ("ok"|"error", value)."""

    def __init__(self, work: Callable[[], object]):
        super().__init__(daemon=True)
        self.work = work
        self.outcome: tuple[str, object] = ("missing", None)
        self.backend_pid: int | None = None
        self.connected = threading.Event()

    def run(self) -> None:
        try:
            connection.ensure_connection()
            self.backend_pid = connection.connection.info.backend_pid
            self.connected.set()
            self.outcome = ("ok", self.work())
        except BaseException as error:  # the main thread asserts on it
            self.outcome = ("error", error)
        finally:
            self.connected.set()
            connection.close()


class PausedBeforeAudit:
    """Run `work` in a thread that stops at its audit append (its row locks held) until `release()`.

    `module` is the module whose `audit_record` the work calls; only this thread is stopped there.
    """

    def __init__(self, work: Callable[[], object], *, module: str):
        self.worker = Worker(work)
        self.reached = threading.Event()
        self.go = threading.Event()
        real = importlib.import_module(module).audit_record

        def stop_then_record(*args, **kwargs):
            if threading.current_thread() is self.worker and not self.go.is_set():
                self.reached.set()
                self.go.wait(TIMEOUT)
            return real(*args, **kwargs)

        self.patch = mock.patch(f"{module}.audit_record", stop_then_record)

    def __enter__(self):
        self.patch.start()
        self.worker.start()
        assert self.reached.wait(TIMEOUT), f"the paused writer never reached its audit append: {self.worker.outcome}"
        return self

    def release(self) -> tuple[str, object]:
        self.go.set()
        self.worker.join(TIMEOUT)
        assert not self.worker.is_alive(), "the paused writer hung"
        return self.worker.outcome

    def __exit__(self, *exc_info):
        self.go.set()
        self.worker.join(TIMEOUT)
        self.patch.stop()


def waiting_for_a_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return bool(row) and row[0] == "Lock"


def run_until_done_or_blocked(work: Callable[[], object]) -> Worker:
    """Start `work` in a thread; return once it has finished or waits for a row lock."""
    worker = Worker(work)
    worker.start()
    assert worker.connected.wait(TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while worker.is_alive() and not waiting_for_a_lock(worker.backend_pid):
        assert time.monotonic() < deadline, "the second transaction neither finished nor waited for a lock"
        time.sleep(0.02)
    return worker


def race_against_paused_writer(*, paused: Callable[[], object], module: str, other: Callable[[], object]):
    """Pause one writer before its audit append, run `other` until it is done or blocked, then let the
    writer go on. Return both outcomes: (paused writer's, other's)."""
    with PausedBeforeAudit(paused, module=module) as writer:
        second = run_until_done_or_blocked(other)
        first = writer.release()
        second.join(TIMEOUT)
        assert not second.is_alive(), "the second transaction hung"
    return first, second.outcome


def assert_both_committed(first, second) -> None:
    assert first[0] == "ok", f"paused writer failed: {first[1]!r}"
    assert second[0] == "ok", f"second transaction failed: {second[1]!r}"


def assert_chain_intact_with(events: int) -> None:
    audit_seal()  # when the sealer has run
    report = verify_chain()
    assert report.ok, report.message
    assert report.count == events == AuditEvent.objects.count()


# --- the audit head is the last lock --------------------------------------------------------------


def test_a_note_added_while_a_decision_holds_its_case_waits_before_the_audit_head(alice, case_owned_by_alice):
    # given alice may refund 500 per case, and a refund of hers holds the case row, about to append its event
    GrantFactory(subject_user=alice)
    refund = kind("refund")
    case = case_owned_by_alice

    # when a note on that case is added meanwhile (its event's foreign key points at the locked case)
    first, second = race_against_paused_writer(
        paused=lambda: decision_execute(actor=alice, case=case, kind=refund, amount="100", currency="EUR",
                                        rationale="double charge"),
        module="authority.services.decisions",
        other=lambda: case_add_note(actor=alice, case=case, text="Called the customer back."),
    )

    # then neither dies of a deadlock: the note's foreign-key check waited before it took the head
    assert_both_committed(first, second)
    assert Decision.objects.filter(case=case).count() == 1
    assert CaseEvent.objects.filter(case=case, kind=CaseEvent.Kind.NOTE).count() == 1
    assert_chain_intact_with(2)


def test_a_request_opened_while_its_kind_is_locked_by_another_writer_never_deadlocks(alice, maria,
                                                                                    case_owned_by_alice):
    # given alice may refund 500 per case, maria 5,000; another writer holds the refund kind's row
    # (a lock someone may take some day) and is about to append its audit event
    GrantFactory(subject_user=alice)
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    refund = kind("refund")

    def hold_the_kind_then_record():
        from h2h_core.audit import record

        with transaction.atomic(durable=True):
            AuthorityKind.objects.select_for_update().filter(pk=refund.pk).exists()
            record.audit_record(actor=maria, action="test.kind_held", object_type="authority_kind",
                                object_id=refund.pk)

    # when alice opens a request over her limit meanwhile (its foreign key points at the kind)
    first, second = race_against_paused_writer(
        paused=hold_the_kind_then_record,
        module="h2h_core.audit.record",
        other=lambda: authority_request_open(actor=alice, case=case_owned_by_alice, kind=refund, amount="1200",
                                             currency="EUR", justification="Charged three times"),
    )

    # then both commit: the request's foreign-key checks ran before it took the audit head
    assert_both_committed(first, second)
    assert AuthorityRequest.objects.get().status == RequestStatus.OPEN
    assert_chain_intact_with(2)


def test_a_request_opened_while_a_grant_of_its_kind_ends_never_deadlocks(alice, maria, retention,
                                                                        case_owned_by_alice):
    # given alice may refund 500 per case, maria 5,000, and bob holds a refund grant maria is ending
    GrantFactory(subject_user=alice)
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    bob = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(bob)
    bobs = GrantFactory(subject_user=bob)
    refund = kind("refund")

    # when alice opens a request over her limit while the end of bob's grant holds its lock
    first, second = race_against_paused_writer(
        paused=lambda: grant_end(actor=maria, grant=bobs, reason="Moved to another team"),
        module="authority.services.grants",
        other=lambda: authority_request_open(actor=alice, case=case_owned_by_alice, kind=refund, amount="1200",
                                             currency="EUR", justification="Charged three times"),
    )

    # then both commit (the grant's lock did not reach the kind the request points at)
    assert_both_committed(first, second)
    assert Grant.objects.get(pk=bobs.pk).superseded_at is not None
    assert AuthorityRequest.objects.get().status == RequestStatus.OPEN
    assert_chain_intact_with(2)


# --- a lock covers only the rows it names ---------------------------------------------------------


def lock_nowait(model, pk) -> str:
    """Try to lock one row without waiting, in a transaction of the main thread; say how it went."""
    try:
        with transaction.atomic():
            model.objects.select_for_update(nowait=True).filter(pk=pk).exists()
    except Exception as error:  # noqa: BLE001 (the test reports what happened)
        return f"locked by the other transaction: {type(error.__cause__ or error).__name__}"
    return "free"


def test_a_decision_holding_its_case_leaves_the_customer_free(alice, case_owned_by_alice):
    # given a refund of alice's holds the case row, about to append its event
    GrantFactory(subject_user=alice)
    refund = kind("refund")
    case = case_owned_by_alice
    with PausedBeforeAudit(lambda: decision_execute(actor=alice, case=case, kind=refund, amount="100",
                                                    currency="EUR", rationale="double charge"),
                           module="authority.services.decisions") as decision:
        # when another transaction locks the case's customer without waiting
        customer = lock_nowait(Customer, case.customer_id)
        outcome = decision.release()
    # then the customer was free, so decisions on that customer's other cases do not queue
    assert customer == "free"
    assert outcome[0] == "ok", outcome


def test_a_case_service_holding_its_case_leaves_the_customer_free(alice, case_owned_by_alice):
    # given alice resolving her case, holding its row, about to append the event
    case = case_owned_by_alice
    with PausedBeforeAudit(lambda: case_resolve(actor=alice, case=case, summary="Refunded the double charge."),
                           module="h2h_core.services") as resolving:
        # when another transaction locks the case's customer without waiting
        customer = lock_nowait(Customer, case.customer_id)
        outcome = resolving.release()
    # then the customer was free
    assert customer == "free"
    assert outcome[0] == "ok", outcome
    case.refresh_from_db()
    assert case.status == CaseStatus.RESOLVED


def test_ending_a_grant_leaves_its_kind_free(maria, retention):
    # given maria ending bob's refund grant, holding the grant row, about to append the event
    bob = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(bob)
    bobs = GrantFactory(subject_user=bob)
    with PausedBeforeAudit(lambda: grant_end(actor=maria, grant=bobs, reason="Moved to another team"),
                           module="authority.services.grants") as ending:
        # when another transaction locks the refund kind without waiting
        refund = lock_nowait(AuthorityKind, bobs.kind_id)
        outcome = ending.release()
    # then the kind was free: grant changes and requests of one kind do not queue behind each other
    assert refund == "free"
    assert outcome[0] == "ok", outcome


def test_rejecting_a_request_leaves_its_kind_free(alice, maria, case_owned_by_alice):
    # given an open request of alice's that maria is rejecting, holding the request row
    GrantFactory(subject_user=alice)
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    request = authority_request_open(actor=alice, case=case_owned_by_alice, kind=kind("refund"), amount="1200",
                                     currency="EUR", justification="Charged three times")
    with PausedBeforeAudit(lambda: authority_request_reject(actor=maria, request=request, note="Not this time."),
                           module="authority.services.requests") as rejecting:
        # when another transaction locks the refund kind without waiting
        refund = lock_nowait(AuthorityKind, request.kind_id)
        outcome = rejecting.release()
    # then the kind was free
    assert refund == "free"
    assert outcome[0] == "ok", outcome
    assert AuthorityRequest.objects.get().status == RequestStatus.REJECTED


def test_a_decision_locks_its_case_only_and_appends_its_event_with_one_insert(alice, case_owned_by_alice):
    # given alice may refund 500 per case
    GrantFactory(subject_user=alice)

    # when she refunds 100
    with CaptureQueriesContext(connection) as captured:
        decision_execute(actor=alice, case=case_owned_by_alice, kind=kind("refund"), amount="100", currency="EUR",
                         rationale="double charge", idempotency_key="k-1")
    statements = [query["sql"] for query in captured.captured_queries]
    locks = [sql for sql in statements if "FOR UPDATE" in sql]
    # then its one row lock names its own table only: the case (the audit head is the sealer's, after commit)
    locked = [sql.partition("FOR UPDATE")[2].strip() for sql in locks]
    assert locked == ['OF "h2h_core_case"']
    assert not [sql for sql in statements if "h2h_core_audithead" in sql or sql.startswith("SET CONSTRAINTS")]
    # and its audit event is inserted by the last statement before the commit, which inserts nothing else of it
    *_, last, commit = statements
    assert commit == "COMMIT"
    assert last.count('INSERT INTO "h2h_core_auditevent"') == 1
    assert 'INSERT INTO "h2h_core_auditevent"' not in " ".join(statements[:-2])
