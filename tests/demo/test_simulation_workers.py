"""`simulate --workers 2` on PostgreSQL: the crews run side by side, each in a process of its own."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from authority.models import Decision
from edges.demo.simulation import simulate
from h2h_core.audit.sealer import audit_seal
from h2h_core.audit.verify import verify_chain
from h2h_core.models import AuditEvent, Case, CaseEvent

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite takes one writer at a time"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

JUNE = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_two_workers_run_the_two_crews_side_by_side_within_the_caps():
    # when two days with 120 cases are simulated by two processes
    report = simulate(start=JUNE, days=2, cases=120, seed=7, workers=2)

    # then both crews worked, each on its own cases and its own clock, which never ran back
    assert report["workers"] == 2
    cases = Case.objects.filter(idempotency_key__startswith="sim:20260601:")
    assert report["cases"] == cases.count() == 120
    for crew in (0, 1):
        of_crew = cases.filter(idempotency_key__startswith=f"sim:20260601:{crew}:")
        opened = list(of_crew.order_by("pk").values_list("opened_at", flat=True))
        assert len(opened) == 60 and opened == sorted(opened)
        # (a sweep that fired another crew's timers would write them at its own clock's time, out of order)
        happened = list(CaseEvent.objects.filter(case__in=of_crew).order_by("pk").values_list("at", flat=True))
        assert happened == sorted(happened)
    # and the workers' sweeps fired the crews' due timers (first responses missed overnight among them)
    assert report["simulated"]["timers fired"] > 0
    # and the work went through the services: decisions executed, each audited, the chain intact
    decisions = Decision.objects.filter(case__in=cases)
    assert report["decisions"] == decisions.count() > 10
    audit_seal()
    assert AuditEvent.objects.filter(action="decision.executed").count() == Decision.objects.count()
    assert verify_chain().ok
    # and every period cap held under the two processes
    counted = defaultdict(Decimal)
    for decision in decisions.select_related("grant"):
        if decision.grant.period_limit is not None:
            counted[decision.agent_id, decision.grant] += decision.counted_amount
    assert counted and all(total <= grant.period_limit for (_, grant), total in counted.items())
