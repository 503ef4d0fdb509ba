"""Which commits of a keyed request wait for PostgreSQL's WAL flush, counted in pg_stat_wal.

A keyed decision commits three times: the key's claim, the decision, the stored answer. Only the
decision must wait for its flush; the record's own statements commit asynchronously, except the store
of a refusal (edges.api.idempotency says why that loses nothing). The counts are the server's own.
They are cluster-wide, so the upper bounds leave room for the WAL writer's background flushes (one
every 200 ms at most) and for other work on the server. The lower bounds are exact: every commit that
waits is flushed, and the next one starts only after it.
"""

import pytest
from django.db import connection

from authority.models import Decision

from .helpers import client_for, grant_refund

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's WAL flushes"),
    # Not inside a test's transaction: each statement commits as in production.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

REQUESTS = 20
#: What a run may add to the flushes it waits for: the WAL writer's, and other clients' on the server.
BACKGROUND = 8


def wal_flushes() -> int:
    """WAL flushes so far on the server, this session's included (its statistics are sent first)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # reported as the session goes idle after it
        cursor.execute("SELECT wal_sync FROM pg_stat_wal")
        return cursor.fetchone()[0]


def decide(client, case, *, key: str, amount: str = "10.00"):
    return client.post("/api/v1/decisions/", {"case": case.pk, "kind": "refund", "amount": amount,
                                              "currency": "EUR", "rationale": "double charge"},
                       format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_keyed_decision_waits_for_one_flush_its_own(alice, case_owned_by_alice):
    # given alice may refund, with a token, and has decided once (what a process compiles once is compiled)
    grant_refund(alice, per_case="500", per_month="100000")
    client = client_for(alice)
    assert decide(client, case_owned_by_alice, key="warm-up").status_code == 201
    before = wal_flushes()
    # when she makes twenty keyed decisions
    for number in range(REQUESTS):
        assert decide(client, case_owned_by_alice, key=f"decision-{number}").status_code == 201
    flushes = wal_flushes() - before
    # then each decision's commit waited for its flush, and the key's claim and stored answer did not
    assert REQUESTS <= flushes <= REQUESTS + BACKGROUND, flushes
    assert Decision.objects.count() == REQUESTS + 1
    # and the session's own setting is as the server's: the asynchronous commits were the record's alone
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_commit'), reset_val FROM pg_settings "
                       "WHERE name = 'synchronous_commit'")
        current, server = cursor.fetchone()
    assert current == server


def test_a_keyed_refusal_waits_for_its_audit_event_and_for_its_stored_answer(alice, case_owned_by_alice):
    # given alice may refund up to 500 a case, with a token, and was refused once already
    grant_refund(alice, per_case="500", per_month="100000")
    client = client_for(alice)
    assert decide(client, case_owned_by_alice, key="warm-up", amount="900.00").status_code == 403
    before = wal_flushes()
    # when she asks for twenty refunds over her limit, each with its own key
    for number in range(REQUESTS):
        assert decide(client, case_owned_by_alice, key=f"refused-{number}", amount="900.00").status_code == 403
    flushes = wal_flushes() - before
    # then each waited for two flushes: the refusal's audit event, and the stored refusal (which no row
    # could answer again after a crash); the claim did not wait
    assert 2 * REQUESTS <= flushes <= 2 * REQUESTS + BACKGROUND, flushes
    assert not Decision.objects.exists()
