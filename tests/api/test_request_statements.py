"""What one keyed decision and one check send to PostgreSQL, statement by statement.

Each statement is a round trip, and round trips are most of what a decision costs (docs/performance.md,
"Fewer round trips for a keyed decision"): one added to either request shows here first.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.helpers import client_for, grant_refund

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the statements PostgreSQL is sent"),
    # Not inside a test's transaction: the decision runs as in production, in a transaction of its own.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

LABELS = [  # the first that matches names the statement
    ('"h2h_core_apitoken"', "token"),
    ("h2h_end_of_read_2", "visibility, grants and counters"),
    ("h2h_end_of_read_1", "grants and counters"),
    ("pg_try_advisory_lock", "claim"),
    ("pg_advisory_unlock", "store"),
    ("SELECT DISTINCT", "visibility"),
    ("FOR UPDATE", "case lock"),
    ('FROM "authority_grant"', "grants"),
    ('INSERT INTO "authority_decision"', "counters and decision"),
    ('FROM "authority_usagecounter"', "counters"),
    ('"authority_webhookendpoint"', "endpoints"),
    ('INSERT INTO "h2h_core_auditevent"', "outbox, case event and audit event"),
]


def labelled(captured) -> list[str]:
    def label(sql: str) -> str:
        return next((name for needle, name in LABELS if needle in sql), sql.split(None, 1)[0])

    return [label(query["sql"]) for query in captured.captured_queries]


def decide(client, case, key: str):
    return client.post("/api/v1/decisions/", {"case": case.pk, "kind": "refund", "amount": "10.00",
                                              "currency": "EUR", "rationale": "double charge"},
                       format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_keyed_decision_sends_eleven_statements(alice, case_owned_by_alice):
    # given alice may refund, with a token, and decided once already (what a process compiles once is compiled)
    grant_refund(alice)
    client = client_for(alice)
    assert decide(client, case_owned_by_alice, "first").status_code == 201
    # when she decides again, with a new key
    with CaptureQueriesContext(connection) as captured:
        response = decide(client, case_owned_by_alice, "second")
    # then these are the statements, in this order
    assert response.status_code == 201, response.json()
    assert labelled(captured) == [
        "token", "claim", "visibility", "BEGIN", "case lock", "grants and counters", "counters and decision",
        "endpoints", "outbox, case event and audit event", "COMMIT", "store",
    ]


def test_a_check_sends_two_statements(alice, case_owned_by_alice):
    # given alice may refund, with a token, and checked once already
    grant_refund(alice)
    client = client_for(alice)
    body = {"case": case_owned_by_alice.pk, "kind": "refund", "amount": "10.00", "currency": "EUR"}
    assert client.post("/api/v1/authority-check/", body, format="json").status_code == 200
    # when she checks again
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/api/v1/authority-check/", body, format="json")
    # then it reads the token, and the case with her grants and her counters (one statement), and nothing else
    assert response.status_code == 200
    assert labelled(captured) == ["token", "visibility, grants and counters"]
