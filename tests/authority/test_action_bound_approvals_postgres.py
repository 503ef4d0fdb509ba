"""A handover racing a decision through an approval, on PostgreSQL: once the handover commits, the
approval decides nothing more (issue 12: action-bound approvals).

The data is set up in the main thread and committed (transaction=True) before the threads start;
each thread writes only through services and closes its own database connection at the end.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection

from authority.errors import AuthorityDenied
from authority.models import AuthorityRequest, Decision, Grant, RequestStatus
from authority.services import authority_request_approve, authority_request_open, decision_execute
from h2h_core.audit.verify import verify_chain
from h2h_core.errors import NotCaseOwner
from h2h_core.models import AuditEvent, CaseEvent, Role
from tests.factories import CaseFactory, GrantFactory, UserFactory, kind
from workflows import services as steps
from workflows.steps import cases as case_steps

pytestmark = [
    pytest.mark.postgres,
    # serialized_rollback restores the reference data (kinds, roles, audit head) the flush removes.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

JOIN_TIMEOUT = 60


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def bob(retention):
    user = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(user)
    return user


def approved_case(alice, maria, retention):
    """A case alice owns, with maria's approval of exactly 1,200.00 EUR for her on it."""
    case = CaseFactory(owner=alice, team=retention)
    request = authority_request_open(actor=alice, case=case, kind=kind("refund"), amount="1200", currency="EUR",
                                     justification="Charged twice")
    return case, authority_request_approve(actor=maria, request=request)


def in_thread(work, results: dict, name: str) -> threading.Thread:
    def target():
        try:
            results[name] = ("ok", work())
        except BaseException as error:  # reported to the main thread, which asserts on it
            results[name] = ("error", error)
        finally:
            connection.close()

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


def test_a_decision_waiting_on_a_handover_is_refused_once_the_handover_commits(alice, bob, maria, retention):
    # given alice may refund 500 per case, maria 5,000, and maria approved 1,200.00 EUR for alice's case
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    case, approval = approved_case(alice, maria, retention)
    handed, release = threading.Event(), threading.Event()
    original = case_steps.case_services.case_handover

    def handover_then_hold(**kwargs):
        # The handover has written everything, and holds its locks until the main thread lets it commit.
        result = original(**kwargs)
        handed.set()
        assert release.wait(JOIN_TIMEOUT)
        return result

    results: dict = {}
    with mock.patch.object(case_steps.case_services, "case_handover", handover_then_hold):
        # when alice hands the case to bob, and her decision of the approved 1,200 arrives meanwhile
        handover = in_thread(lambda: steps.case_flow_handover(actor=alice, case=case, to_user=bob, note="Over to bob"),
                             results, "handover")
        assert handed.wait(JOIN_TIMEOUT)
        decision = in_thread(lambda: decision_execute(actor=alice, case=case, kind=kind("refund"), amount="1200",
                                                      currency="EUR", rationale="As approved"), results, "decision")
        time.sleep(0.5)  # the decision now waits for the case's row lock
        assert decision.is_alive(), results.get("decision")
        release.set()
        handover.join(JOIN_TIMEOUT)
        decision.join(JOIN_TIMEOUT)
    assert not handover.is_alive() and not decision.is_alive()

    # then the handover committed and the decision, which read the case after it, was refused
    assert results["handover"][0] == "ok", results["handover"]
    outcome, error = results["decision"]
    assert outcome == "error" and isinstance(error, NotCaseOwner), error
    assert Decision.objects.count() == 0
    # and the approval is void: its grant closed, its request voided, on the record
    assert Grant.objects.get(pk=approval.one_off_grant_id).superseded_at is not None
    assert AuthorityRequest.objects.get(pk=approval.pk).status == RequestStatus.VOIDED
    assert AuditEvent.objects.filter(action="grant.voided").count() == 1
    assert verify_chain().ok


def test_racing_handovers_and_decisions_never_decide_through_a_voided_approval(alice, bob, maria, retention):
    # given eight cases of alice's, each with an approval of exactly 1,200.00 EUR
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("100000"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("100000"))
    pairs = [approved_case(alice, maria, retention) for _ in range(8)]
    barrier = threading.Barrier(2 * len(pairs))
    results: dict = {}

    def released(work):
        def run():
            connection.ensure_connection()  # connect before the barrier, so the release is simultaneous
            barrier.wait(timeout=JOIN_TIMEOUT)
            return work()
        return run

    # when, on every case at once, alice decides the approved amount and hands the case to bob
    threads = []
    for i, (case, _) in enumerate(pairs):
        threads.append(in_thread(released(lambda case=case: decision_execute(
            actor=alice, case=case, kind=kind("refund"), amount="1200", currency="EUR", rationale="As approved")),
            results, f"decision-{i}"))
        threads.append(in_thread(released(lambda case=case: steps.case_flow_handover(
            actor=alice, case=case, to_user=bob, note="Over to bob")), results, f"handover-{i}"))
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a worker hung (lock wait without end?)"

    # then every handover committed, and on each case exactly one of two things happened
    for i, (case, approval) in enumerate(pairs):
        assert results[f"handover-{i}"][0] == "ok", results[f"handover-{i}"]
        outcome, value = results[f"decision-{i}"]
        request = AuthorityRequest.objects.get(pk=approval.pk)
        handover_at = CaseEvent.objects.get(case=case, kind=CaseEvent.Kind.HANDOVER).at
        if outcome == "ok":
            # the decision committed first: through the approval, before the handover; nothing was left to void
            assert value.request_id == approval.pk and value.executed_at < handover_at
            assert request.status == RequestStatus.APPROVED
        else:
            # the handover committed first: the decision was refused, and the approval is void
            assert isinstance(value, NotCaseOwner | AuthorityDenied), value
            assert not Decision.objects.filter(case=case).exists()
            assert request.status == RequestStatus.VOIDED
    assert verify_chain().ok
