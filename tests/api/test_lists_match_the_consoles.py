"""The API's decision and audit lists read the same rows as the auditor console for the same filter:
both ask one reader (authority.reports.decisions_matching, authority.reports.events_matching)."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from authority.errors import AuthorityDenied
from authority.services import decision_execute
from h2h_core.audit import audit_seal
from tests.factories import CaseFactory, GrantFactory, kind

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(alice, bob, retention, alice_may_refund_500):
    """Refunds and goodwill credits by alice and bob on their cases, and one refusal of alice's."""
    GrantFactory(subject_user=alice, kind=kind("goodwill_credit"), per_case_limit=Decimal("100"))
    GrantFactory(subject_user=bob, per_case_limit=Decimal("500"))
    for agent, code, amount in (("alice", "refund", "120"), ("alice", "goodwill_credit", "30"),
                                ("bob", "refund", "80"), ("alice", "refund", "200"), ("bob", "refund", "90")):
        user = alice if agent == "alice" else bob
        decision_execute(actor=user, case=CaseFactory(owner=user, team=retention), kind=kind(code), amount=amount,
                         currency="EUR", rationale="Double charge")
    with pytest.raises(AuthorityDenied):
        decision_execute(actor=alice, case=CaseFactory(owner=alice, team=retention), kind=kind("refund"),
                         amount="900", currency="EUR", rationale="Too much")
    audit_seal()  # the API lists the chain: when the sealer has run (PostgreSQL; SQLite links at once)


def console_rows(audrey, url: str, query: dict, key: str) -> list:
    client = Client()
    client.force_login(audrey)
    response = client.get(url, query)
    assert response.status_code == 200
    return [getattr(row, key) for row in response.context["page"].rows]


def api_rows(as_audrey, url: str, query: dict, key: str) -> list:
    response = as_audrey.get(url, query)
    assert response.status_code == 200, response.json()
    return [row[key] for row in response.json()["results"]]


@pytest.mark.parametrize(("query", "count"), [
    ({}, 5), ({"agent": "alice"}, 3), ({"kind": "refund"}, 4), ({"agent": "bob", "kind": "refund"}, 2),
    ({"agent": "nobody"}, 0),
], ids=["all", "agent", "kind", "agent-and-kind", "no-match"])
def test_the_api_lists_the_decisions_the_decision_log_shows(history, audrey, as_audrey, query, count):
    # given refunds and credits by alice and bob
    # when an auditor filters the decision log and the API's decision list alike
    console = console_rows(audrey, reverse("audit:decisions"), query, "id")
    api = api_rows(as_audrey, "/api/v1/decisions/", query, "id")
    # then both show the same decisions, in the same order
    assert api == console and len(console) == count


@pytest.mark.parametrize(("query", "count"), [
    ({"action": "decision.executed"}, 5), ({"actor": "alice", "action": "decision.executed"}, 3),
    ({"outcome": "denied"}, 1), ({"object_type": "decision", "actor": "bob"}, 2),
    ({"action": "case.claimed", "actor": "alice"}, 0),
], ids=["action", "actor-and-action", "outcome", "object-and-actor", "no-match"])
def test_the_api_lists_the_events_the_audit_log_shows(history, audrey, as_audrey, query, count):
    # when an auditor filters the audit log page and the API's event list alike
    console = console_rows(audrey, reverse("audit:log"), query, "seq")
    api = api_rows(as_audrey, "/api/v1/audit-events/", query, "seq")
    # then both show the same events, newest first
    assert api == console and len(console) == count
    assert console == sorted(console, reverse=True)


@pytest.mark.parametrize(("url", "at", "key", "after", "before"), [
    ("/api/v1/decisions/", "executed_at", "id", "executed_after", "executed_before"),
    ("/api/v1/audit-events/", "occurred_at", "seq", "occurred_after", "occurred_before"),
], ids=["decisions", "events"])
def test_the_api_bounds_its_lists_to_the_exact_instant(history, as_audrey, url, at, key, after, before):
    # given the rows newest first, and an instant some of them share with no older row
    rows = as_audrey.get(url).json()["results"]
    last = next(i for i in range(1, len(rows) - 1) if rows[i][at] != rows[i + 1][at])
    instant = rows[last][at]
    # when the list is bounded at that instant
    since = api_rows(as_audrey, url, {after: instant}, key)
    until = api_rows(as_audrey, url, {before: instant}, key)
    # then "after" includes the instant itself and "before" excludes it: the rows split there
    assert since + until == [row[key] for row in rows]
    assert since[-1] == rows[last][key]
