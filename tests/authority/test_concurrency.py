"""Concurrency on PostgreSQL: caps stay exact, keys count once, a request is decided once (rule 3).

Every test releases its threads together with a barrier. The data is set up in the main thread and
committed (transaction=True) before the threads start; each thread writes only through services
and closes its own database connection at the end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection
from guardian.shortcuts import assign_perm

from authority import usage
from authority.errors import AlreadyDecided, AuthorityDenied, IdempotencyConflict
from authority.models import AuthorityRequest, Decision, Grant, OutboxMessage, Period, RequestStatus, UsageCounter
from authority.services import authority_request_approve, authority_request_open, decision_execute
from h2h_core.audit import audit_seal
from h2h_core.audit.verify import verify_chain
from h2h_core.models import AuditEvent, Role
from tests.factories import CaseFactory, GrantFactory, UserFactory, kind

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="concurrency tests need PostgreSQL row locks (set DATABASE_URL to a PostgreSQL server)",
    ),
    # serialized_rollback restores the reference data (kinds, roles, audit head) the flush removes.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

THREADS = 32
JOIN_TIMEOUT = 60


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run_together(count: int, work: Callable[[int], object]) -> list[tuple[str, object]]:
    """Run work(0..count-1) in `count` threads released at once; return ("ok"|"error", value) each."""
    barrier = threading.Barrier(count)
    results: list[tuple[str, object]] = [("missing", None)] * count

    def target(index: int) -> None:
        try:
            connection.ensure_connection()  # connect before the barrier, so the release is simultaneous
            barrier.wait(timeout=JOIN_TIMEOUT)
            results[index] = ("ok", work(index))
        except BaseException as error:  # reported to the main thread, which asserts on it
            results[index] = ("error", error)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,), name=f"worker-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a worker hung (lock wait without end?)"
    return results


def split(results):
    done = [value for outcome, value in results if outcome == "ok"]
    errors = [value for outcome, value in results if outcome == "error"]
    assert len(done) + len(errors) == len(results)
    return done, errors


def assert_chain_intact_with(events: int) -> None:
    audit_seal()  # when the sealer has run
    report = verify_chain()
    assert report.ok, report.message
    assert report.count == events == AuditEvent.objects.count()


def counter(key: str) -> Decimal:
    return UsageCounter.objects.filter(key=key).values_list("used", flat=True).first() or Decimal(0)


# --- caps under concurrency --------------------------------------------------------------------


def test_parallel_decisions_never_exceed_the_period_cap(alice, retention):
    # given alice may refund 1,000 a month (no per-case limit), and owns 32 cases
    GrantFactory(subject_user=alice, per_case_limit=None, period_limit=Decimal("1000"), period=Period.MONTH)
    cases = [CaseFactory(owner=alice, team=retention) for _ in range(THREADS)]
    amounts = [Decimal(40 + 7 * i) for i in range(THREADS)]  # 40 … 257: together far over the cap
    refund = kind("refund")

    # when 32 refunds, one per case, run at the same instant
    results = run_together(THREADS, lambda i: decision_execute(
        actor=alice, case=cases[i], kind=refund, amount=amounts[i], currency="EUR", rationale=f"parallel {i}"))

    # then every attempt either executed or was refused for lack of headroom (no deadlock, no other error)
    done, errors = split(results)
    assert all(isinstance(error, AuthorityDenied) for error in errors), errors
    assert done, "at least one refund fits the cap"
    # and the cap was never exceeded: the month counter equals exactly the sum of what was decided
    decided = sum((d.counted_amount for d in Decision.objects.all()), Decimal(0))
    assert len(done) == Decision.objects.count() == OutboxMessage.objects.count()
    assert decided <= Decimal("1000")
    period_counters = UsageCounter.objects.filter(scope=UsageCounter.Scope.PERIOD, agent=alice)
    assert [c.used for c in period_counters] == [decided]
    # and no refusal was spurious: each refused amount really did not fit what was left at the end
    refused = [amounts[i] for i, (outcome, _) in enumerate(results) if outcome == "error"]
    assert all(amount > Decimal("1000") - decided for amount in refused)
    # and each case counter holds just its own decision
    for decision in Decision.objects.all():
        assert counter(usage.case_key(case_id=decision.case_id, kind_code="refund", currency="EUR")) == decision.amount
    # and the audit chain is intact, with exactly one event per attempt
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("decision.executed") == len(done) and actions.count("decision.refused") == len(errors)
    assert_chain_intact_with(THREADS)


def test_parallel_decisions_on_one_case_never_exceed_the_per_case_cap(alice, case_owned_by_alice):
    # given alice may refund 1,000 per case (no period cap)
    GrantFactory(subject_user=alice, per_case_limit=Decimal("1000"), period_limit=None, period=Period.NONE)
    refund = kind("refund")

    # when 32 refunds of 100 on the same case run at the same instant
    results = run_together(THREADS, lambda i: decision_execute(
        actor=alice, case=case_owned_by_alice, kind=refund, amount="100", currency="EUR",
        rationale=f"parallel {i}"))

    # then exactly ten fit, the rest are refused for lack of headroom on the case
    done, errors = split(results)
    assert all(isinstance(error, AuthorityDenied) for error in errors), errors
    assert len(done) == 10 and len(errors) == THREADS - 10
    assert all(error.verdict.per_case_headroom == Decimal(0) for error in errors)
    # and the case counter equals the sum of the decisions, never more than the cap
    key = usage.case_key(case_id=case_owned_by_alice.pk, kind_code="refund", currency="EUR")
    assert counter(key) == sum(d.amount for d in Decision.objects.all()) == Decimal("1000")
    # and the audit chain is intact, with exactly one event per attempt
    assert AuditEvent.objects.filter(action="decision.executed").count() == 10
    assert AuditEvent.objects.filter(action="decision.refused", outcome="denied").count() == THREADS - 10
    assert_chain_intact_with(THREADS)


# --- idempotency under concurrency -------------------------------------------------------------


def test_a_replayed_key_racing_the_original_counts_once(alice, case_owned_by_alice):
    # given alice may refund 500 per case and 1,000 a month
    GrantFactory(subject_user=alice)
    refund = kind("refund")
    racers = 8

    # when the same refund with the same key arrives 8 times at the same instant
    results = run_together(racers, lambda i: decision_execute(
        actor=alice, case=case_owned_by_alice, kind=refund, amount="200", currency="EUR",
        rationale="double charge", idempotency_key="retry-1"))

    # then all 8 return the same decision, executed and counted once
    done, errors = split(results)
    assert errors == []
    assert len({decision.pk for decision in done}) == 1
    assert Decision.objects.count() == 1 and OutboxMessage.objects.count() == 1
    key = usage.case_key(case_id=case_owned_by_alice.pk, kind_code="refund", currency="EUR")
    assert counter(key) == Decimal("200")
    assert UsageCounter.objects.get(scope=UsageCounter.Scope.PERIOD, agent=alice).used == Decimal("200")
    # and the audit log has the one execution (replays change nothing, so they record nothing)
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["decision.executed"]
    assert_chain_intact_with(1)


def test_a_key_reused_on_other_cases_at_the_same_instant_wins_once(alice, retention):
    # given alice may refund 500 per case and 10,000 a month, and owns 8 cases
    GrantFactory(subject_user=alice, period_limit=Decimal("10000"))
    racers = 8
    cases = [CaseFactory(owner=alice, team=retention) for _ in range(racers)]
    refund = kind("refund")

    # when she sends one key with 8 different payloads (one per case) at the same instant
    results = run_together(racers, lambda i: decision_execute(
        actor=alice, case=cases[i], kind=refund, amount="100", currency="EUR", rationale="double charge",
        idempotency_key="same-key"))

    # then one executes; the others are told the key belongs to that decision, and count nothing
    done, errors = split(results)
    assert len(done) == 1, errors
    assert len(errors) == racers - 1
    assert all(isinstance(error, IdempotencyConflict) for error in errors), errors
    assert {error.details["decision_id"] for error in errors} == {done[0].pk}
    assert Decision.objects.count() == 1
    assert UsageCounter.objects.get(scope=UsageCounter.Scope.PERIOD, agent=alice).used == Decimal("100")
    assert UsageCounter.objects.filter(scope=UsageCounter.Scope.CASE).count() == 1
    assert_chain_intact_with(1)


# --- a request is decided once -----------------------------------------------------------------


def test_two_approvers_racing_decide_a_request_once(alice, maria, retention):
    # given maria and mona both manage Retention and may each approve 1,200
    mona = UserFactory(username="mona", roles=[Role.MANAGER])
    assign_perm("h2h_core.manage_team", mona, retention)
    GrantFactory(subject_user=alice)
    for approver in (maria, mona):
        GrantFactory(subject_user=approver, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    refund = kind("refund")
    rounds = 5
    requests = []
    for _ in range(rounds):
        case = CaseFactory(owner=alice, team=retention)
        requests.append(authority_request_open(actor=alice, case=case, kind=refund, amount="1200", currency="EUR",
                                               justification="Key account"))
    assert all(set(request.pool) == {maria.pk, mona.pk} for request in requests)
    events_before = AuditEvent.objects.count()

    for request in requests:
        # when both approve the same request at the same instant
        approvers = (maria, mona)
        results = run_together(2, lambda i, request=request: authority_request_approve(
            actor=approvers[i], request=request, note="fine"))

        # then exactly one wins and the other is told it was already decided
        done, errors = split(results)
        assert len(done) == 1 and len(errors) == 1, errors
        assert isinstance(errors[0], AlreadyDecided), errors
        winner = done[0].decided_by
        assert f"already approved by {winner.username}" in errors[0].message
        stored = AuthorityRequest.objects.get(pk=request.pk)
        assert stored.status == RequestStatus.APPROVED and stored.decided_by_id == winner.pk
        assert Grant.objects.filter(case=request.case_id).count() == 1

    # and each approval counted once, against its approver's month
    approved = AuthorityRequest.objects.filter(status=RequestStatus.APPROVED)
    for approver in (maria, mona):
        won = approved.filter(decided_by=approver).count()
        used = UsageCounter.objects.filter(scope=UsageCounter.Scope.PERIOD, agent=approver).values_list(
            "used", flat=True).first() or Decimal(0)
        assert used == Decimal("1200") * won
    assert AuditEvent.objects.filter(action="authority_request.approved").count() == rounds
    # and each losing attempt is on the record as a denial
    assert AuditEvent.objects.filter(action="authority_request.approve.refused", outcome="denied").count() == rounds
    assert_chain_intact_with(events_before + 2 * rounds)
