"""The audit log through the API: for auditors only, filtered, paged by cursor (verifying it: test_audit_verify_api)."""

import pytest

from h2h_core.audit import audit_record, audit_seal

from .helpers import assert_error_shape

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/audit-events/"


def record(count, *, action="case.note_added", actor=None, outcome="success"):
    from django.db import transaction

    for number in range(count):
        with transaction.atomic():
            audit_record(actor=actor, action=action, object_type="case", object_id=number + 1, outcome=outcome)
    audit_seal()  # the API lists the chain: events once the sealer has run (PostgreSQL; SQLite links at once)


def test_only_auditors_read_the_audit_log(as_alice, as_maria, as_audrey):
    record(2)
    for client in (as_alice, as_maria):
        assert_error_shape(client.get(EVENTS), 403, "permission_denied")
        assert_error_shape(client.get("/api/v1/audit-verify/"), 403, "permission_denied")
    assert len(as_audrey.get(EVENTS).json()["results"]) == 2


def test_events_come_newest_first_filtered_by_action_actor_object_and_outcome(as_audrey, alice):
    record(3)
    record(2, action="decision.refused", actor=alice, outcome="denied")

    def seqs(query):
        response = as_audrey.get(f"{EVENTS}?{query}")
        assert response.status_code == 200, response.json()
        return [row["seq"] for row in response.json()["results"]]

    assert seqs("") == [5, 4, 3, 2, 1]
    assert seqs("action=decision.refused") == [5, 4]
    assert seqs("actor=alice&outcome=denied") == [5, 4]
    assert seqs("object_type=case&object_id=2") == [5, 2]
    assert seqs("occurred_after=2000-01-01T00:00:00Z&occurred_before=2001-01-01T00:00:00Z") == []
    assert as_audrey.get(f"{EVENTS}3/").json()["seq"] == 3


def test_the_cursor_pages_through_the_whole_log_without_gaps_while_it_grows(as_audrey):
    record(5)
    first = as_audrey.get(f"{EVENTS}?page_size=2").json()
    assert [row["seq"] for row in first["results"]] == [5, 4]
    record(1)  # a new event arrives between pages
    second = as_audrey.get(first["next"]).json()
    third = as_audrey.get(second["next"]).json()
    assert [row["seq"] for row in second["results"] + third["results"]] == [3, 2, 1]
    assert third["next"] is None


@pytest.mark.parametrize("cursor", ["cj14", "cD1hYmM=", "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"])
def test_a_forged_cursor_is_404(as_audrey, cursor):
    # r=x, p=abc, p=a number beyond any sequence number
    assert_error_shape(as_audrey.get(f"{EVENTS}?cursor={cursor}"), 404, "not_found")


@pytest.mark.parametrize("rows", [5, 30])
def test_listing_events_costs_the_same_queries_for_5_or_30_rows(as_audrey, rows, django_assert_max_num_queries):
    record(rows)
    with django_assert_max_num_queries(4):
        response = as_audrey.get(f"{EVENTS}?page_size=50")
    assert len(response.json()["results"]) == rows

