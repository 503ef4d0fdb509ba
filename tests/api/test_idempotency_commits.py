"""Which commits of a keyed request wait for PostgreSQL's WAL flush, counted in pg_stat_wal.

A keyed decision commits three times: the key's claim, the decision, the stored answer. Only the
decision must wait for its flush; the record's own statements commit asynchronously, except the store
of a refusal (edges.api.idempotency says why that loses nothing). The counts are the server's own.
They are cluster-wide, so the upper bounds leave room for the WAL writer's background flushes (at
most one every `wal_writer_delay` while the requests run) and for a few by other work on the server.
The lower bounds are exact: every commit that waits is flushed, and the next one starts only after it.
"""

import math
import time

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
#: Flushes a run may see besides its own waits and the WAL writer's: other work on the server.
OTHERS = 4


def wal_flushes() -> int:
    """WAL flushes so far on the server, this session's included (its statistics are sent first)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # reported as the session goes idle after it
        cursor.execute("SELECT wal_sync FROM pg_stat_wal")
        return cursor.fetchone()[0]


def background_allowance(seconds: float) -> int:
    """The flushes others may add while a run takes `seconds`: the WAL writer's at its pace, and OTHERS."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting::float / 1000 FROM pg_settings WHERE name = 'wal_writer_delay'")
        delay = cursor.fetchone()[0]
    return OTHERS + math.ceil(seconds / delay) + 1


def decide(client, case, *, key: str, amount: str = "10.00"):
    return client.post("/api/v1/decisions/", {"case": case.pk, "kind": "refund", "amount": amount,
                                              "currency": "EUR", "rationale": "double charge"},
                       format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_keyed_decision_waits_for_one_flush_its_own(alice, case_owned_by_alice):
    # given alice may refund, with a token, and has decided once (what a process compiles once is compiled)
    grant_refund(alice, per_case="500", per_month="100000")
    client = client_for(alice)
    assert decide(client, case_owned_by_alice, key="warm-up").status_code == 201
    before, started = wal_flushes(), time.monotonic()
    # when she makes twenty keyed decisions
    for number in range(REQUESTS):
        assert decide(client, case_owned_by_alice, key=f"decision-{number}").status_code == 201
    flushes, allowance = wal_flushes() - before, background_allowance(time.monotonic() - started)
    # then each decision's commit waited for its flush, and the key's claim and stored answer did not
    # (they would make it three a decision)
    assert REQUESTS <= flushes <= REQUESTS + allowance, (flushes, allowance)
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
    before, started = wal_flushes(), time.monotonic()
    # when she asks for twenty refunds over her limit, each with its own key
    for number in range(REQUESTS):
        assert decide(client, case_owned_by_alice, key=f"refused-{number}", amount="900.00").status_code == 403
    flushes, allowance = wal_flushes() - before, background_allowance(time.monotonic() - started)
    # then each waited for two flushes: the refusal's audit event, and the stored refusal (which no row
    # could answer again after a crash); the claim did not wait
    assert 2 * REQUESTS <= flushes <= 2 * REQUESTS + allowance, (flushes, allowance)
    assert not Decision.objects.exists()
