"""Concurrency on PostgreSQL: one claim wins, and a step racing a timer on the same case never deadlocks.

Threads are released together by a barrier; the data is committed first (transaction=True); each
thread writes only through the workflow services or the timer dispatcher and closes its connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection
from viewflow.workflow.exceptions import FlowLockFailed
from viewflow.workflow.timers import fire_due_timers

from h2h_core.audit.verify import verify_chain
from h2h_core.errors import CaseNotOpen
from h2h_core.models import AuditEvent, CaseEvent, CaseStatus, Role
from tests.factories import UserFactory
from workflows import services

from .conftest import open_case, task_states

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="concurrency tests need PostgreSQL row locks (set DATABASE_URL to a PostgreSQL server)",
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

JOIN_TIMEOUT = 60


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run_together(work: list[Callable[[], object]]) -> list[tuple[str, object]]:
    """Run each callable in its own thread, released at once; return ("ok"|"error", value) each."""
    barrier = threading.Barrier(len(work))
    results: list[tuple[str, object]] = [("missing", None)] * len(work)

    def target(index: int) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=JOIN_TIMEOUT)
            results[index] = ("ok", work[index]())
        except BaseException as error:  # the main thread asserts on it
            results[index] = ("error", error)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a worker hung (a lock wait without end?)"
    return results


def test_of_eight_agents_claiming_at_once_exactly_one_owns_the_case(retention, maria, customer):
    # given eight agents of the team and a queued case
    agents = [UserFactory(username=f"agent{i}", roles=[Role.AGENT]) for i in range(8)]
    retention.members.add(*agents)
    case = open_case(maria, customer)
    # when they all claim it at the same moment
    results = run_together([lambda agent=agent: services.case_flow_claim(actor=agent, case=case)
                            for agent in agents])
    # then one of them owns the case and its task; the others were refused and changed nothing
    won = [agents[i] for i, (outcome, _) in enumerate(results) if outcome == "ok"]
    refused = [value for outcome, value in results if outcome == "error"]
    assert len(won) == 1
    assert all(isinstance(error, CaseNotOpen | FlowLockFailed) for error in refused), refused
    case.refresh_from_db()
    assert case.owner == won[0] and case.status == CaseStatus.OWNED
    assert task_states(case)["own"] == ("ASSIGNED", won[0].pk)
    assert AuditEvent.objects.filter(action="case.claimed").count() == 1
    assert verify_chain().ok


def test_a_claim_racing_the_timer_on_the_same_case_does_not_deadlock(alice, maria, customer):
    # given cases whose first response is overdue, so their timers are due
    cases = [open_case(maria, customer, hours_ago=6) for _ in range(5)]
    # when, for each, alice claims it while the timer dispatcher fires
    for case in cases:
        results = run_together([lambda case=case: services.case_flow_claim(actor=alice, case=case),
                                fire_due_timers])
        # then both finish: the claim wins the case; the timer flagged it, or left it to the next run
        assert [outcome for outcome, _ in results] == ["ok", "ok"], results
        case.refresh_from_db()
        assert case.owner == alice
    fire_due_timers()
    assert CaseEvent.objects.filter(kind=CaseEvent.Kind.SLA).count() == len(cases)
    assert verify_chain().ok
