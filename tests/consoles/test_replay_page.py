"""The replay of a pending grant change on its page and in the API: who sees it, what it says, what it costs."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authority.models import Grant, GrantStatus
from h2h_core.audit.record import audit_record
from tests.factories import CaseFactory, GrantFactory

from .factories import DecisionFactory, RequestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def raise_for_alice(cast):
    """Mike proposes to raise alice's refunds from 500 to 2,000 per case (and 5,000 a month): maria may check it."""
    old = Grant.objects.get(subject_user=cast["alice"], kind__code="refund")
    return GrantFactory(subject_user=cast["alice"], status=GrantStatus.PENDING, supersedes=old, lineage=old.lineage,
                        version=2, granted_by=cast["mike"], per_case_limit=Decimal("2000"),
                        period_limit=Decimal("5000"), reason="key accounts")


def history(alice, retention, n: int) -> None:
    """`n` refused refunds of 800, `n` requests for 900 and `n` executed refunds of 100, by alice."""
    grant = Grant.objects.get(subject_user=alice, kind__code="refund", status=GrantStatus.ACTIVE)
    for i in range(n):
        case = CaseFactory(owner=alice, team=retention)
        with transaction.atomic():
            audit_record(actor=alice, action="decision.refused", object_type="case", object_id=case.pk,
                         outcome="denied", after={"case_id": case.pk, "kind": "refund", "amount": "800",
                                                  "currency": "EUR", "error": "authority_denied", "verdict": None},
                         reason="over")
        RequestFactory(case=CaseFactory(owner=alice, team=retention), requester=alice, amount=Decimal("900"))
        DecisionFactory(case=case, agent=alice, grant=grant, amount=Decimal("100"),
                        executed_at=timezone.now() - timedelta(days=i + 1))


def replay_url(grant) -> str:
    return reverse("authority:grant_replay", args=[grant.pk])


def api_url(grant, query: str = "") -> str:
    return f"/api/v1/grants/{grant.pk}/replay/{query}"


def test_the_checker_sees_what_the_change_would_have_decided_differently(client, cast, raise_for_alice):
    # given alice was refused twice, asked twice and decided twice within her limit
    history(cast["alice"], cast["retention"], 2)
    # when maria, who may check the change, opens its replay
    client.force_login(cast["maria"])
    response = client.get(replay_url(raise_for_alice))
    # then it says what would have differed, with examples and the controls to check it
    assert response.status_code == 200
    body = response.content.decode()
    assert ("Over the last 90 days this change would have allowed 2 refused refund decisions (1,600.00 EUR), "
            "avoided 2 requests (1,800.00 EUR) and refused 0 executed decisions") in body
    assert "<caption>Refusals it would have allowed: all 2</caption>" in body
    assert f"Confirm grant {raise_for_alice.label}" in body


def test_the_pending_list_links_to_the_replay(client, cast, raise_for_alice):
    # given a pending change / when maria opens the pending list / then it links to the change's replay
    client.force_login(cast["maria"])
    assert replay_url(raise_for_alice) in client.get(reverse("authority:pending")).content.decode()


def test_the_maker_sees_the_replay_without_the_controls(client, cast, raise_for_alice):
    # given mike proposed the change / when he opens its replay
    client.force_login(cast["mike"])
    response = client.get(replay_url(raise_for_alice))
    # then he sees it, but may not confirm his own change
    assert response.status_code == 200
    assert "Confirm grant" not in response.content.decode()
    assert "The maker of a change cannot also confirm it" in response.content.decode()


@pytest.mark.parametrize("who", ["alice", "bob", "audrey"])
def test_agents_and_auditors_may_not_open_a_replay(client, cast, raise_for_alice, who):
    # given a pending change / when an agent or an auditor opens its replay / then they are refused
    client.force_login(cast[who])
    assert client.get(replay_url(raise_for_alice)).status_code == 403


def test_a_grant_that_is_not_pending_has_no_replay_page(client, cast):
    # given alice's grant in force / when maria asks for its replay / then there is no such pending change
    client.force_login(cast["maria"])
    grant = Grant.objects.get(subject_user=cast["alice"], kind__code="refund")
    assert client.get(replay_url(grant)).status_code == 404


def test_the_page_and_the_list_cost_the_same_queries_for_a_short_or_long_history(
        client, cast, raise_for_alice, django_assert_max_num_queries):
    # given a short history
    history(cast["alice"], cast["retention"], 2)
    client.force_login(cast["maria"])
    client.get(replay_url(raise_for_alice))
    with CaptureQueriesContext(connection) as page_few:
        client.get(replay_url(raise_for_alice))
    with CaptureQueriesContext(connection) as list_few:
        client.get(reverse("authority:pending"))
    # when it grows tenfold
    history(cast["alice"], cast["retention"], 18)
    # then neither the replay nor the pending list costs more queries
    with django_assert_max_num_queries(len(page_few.captured_queries)):
        response = client.get(replay_url(raise_for_alice))
    assert response.context["replay"].allowed_refusals.count == 20
    with django_assert_max_num_queries(len(list_few.captured_queries)):
        client.get(reverse("authority:pending"))
    assert len(page_few.captured_queries) <= 30, [q["sql"][:80] for q in page_few.captured_queries]


def test_the_api_gives_the_replay_to_a_checker(client, cast, raise_for_alice, django_assert_max_num_queries):
    # given a short history
    history(cast["alice"], cast["retention"], 2)
    client.force_login(cast["maria"])
    with CaptureQueriesContext(connection) as few:
        response = client.get(api_url(raise_for_alice))
    # then the checker gets the three differences with their money and examples
    assert response.status_code == 200
    data = response.json()
    assert data["grant"] == raise_for_alice.pk and data["replaces"] == raise_for_alice.supersedes_id
    assert data["allowed_refusals"]["count"] == 2
    assert data["allowed_refusals"]["totals"] == [{"amount": "1600.00", "currency": "EUR"}]
    assert data["avoided_requests"]["examples"][0]["amount"] == "900.00"
    assert data["refused_decisions"] == {"count": 0, "totals": [], "examples": []}
    assert data["days"] == 90 and data["truncated"] is False
    # and a longer history costs no more queries
    history(cast["alice"], cast["retention"], 8)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(api_url(raise_for_alice, "?days=30")).json()["allowed_refusals"]["count"] == 10


# mike made the change for another team's agent: the API shows him no such grant (grants_visible_to).
@pytest.mark.parametrize(("who", "status"), [("alice", 403), ("audrey", 403), ("mike", 404), ("admin", 200)])
def test_the_api_replay_is_for_managers_who_may_check_it(client, cast, raise_for_alice, who, status):
    # given a pending change / when someone asks the API for its replay / then only those who may check it get it
    client.force_login(cast[who])
    assert client.get(api_url(raise_for_alice)).status_code == status


def test_the_api_refuses_bad_days_and_grants_that_are_not_pending(client, cast, raise_for_alice):
    # given maria may check the change
    client.force_login(cast["maria"])
    # when she asks with a bad period / then a clear 400
    for bad in ("?days=0", "?days=400", "?days=ten"):
        response = client.get(api_url(raise_for_alice, bad))
        assert response.status_code == 400, bad
    # when she asks for a grant in force / then a clear 400 too
    grant = Grant.objects.get(subject_user=cast["alice"], kind__code="refund", status=GrantStatus.ACTIVE)
    response = client.get(api_url(grant))
    assert response.status_code == 400
    assert "Only a pending grant change can be replayed." in response.content.decode()
