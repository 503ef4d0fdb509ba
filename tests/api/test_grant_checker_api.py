"""Maker-checker through the API: any other manager checks a pending change, as in the web console."""

import pytest

from authority.models import Grant
from h2h_core.models import AuditEvent, Role
from tests.factories import GrantFactory, TeamFactory, UserFactory, role, team_manager

from .helpers import client_for, state

pytestmark = pytest.mark.django_db

GRANTS = "/api/v1/grants/"


def raise_for(username: str = "", **subject) -> dict:
    """A refund raise above the 2,000 confirmation threshold: it waits for a second manager."""
    return {"kind": "refund", "per_case_limit": "3000.00", "period_limit": "9000.00", "period": "month",
            "currency": "EUR", "reason": "key accounts", **({"subject_user": username} if username else subject)}


@pytest.fixture
def mike(db):
    """Manager of Onboarding only: not of Retention, where the change is made."""
    return team_manager(TeamFactory(name="Onboarding", slug="onboarding"), "mike")


@pytest.fixture
def as_mike(mike):
    return client_for(mike)


def successful_audit_events() -> int:
    return AuditEvent.objects.exclude(outcome="denied").count()


def test_a_manager_of_another_team_sees_and_confirms_a_pending_change(as_maria, as_mike, alice):
    # given maria (Retention) proposes raising alice's refunds above the threshold
    pending = as_maria.post(GRANTS, raise_for("alice"), format="json").json()
    assert pending["status"] == "pending"
    # when mike (Onboarding) lists the pending changes and opens this one
    listed = as_mike.get(f"{GRANTS}?status=pending").json()["results"]
    detail = as_mike.get(f"{GRANTS}{pending['id']}/")
    # then he sees it, as the web console shows it to him
    assert [row["id"] for row in listed] == [pending["id"]]
    assert detail.status_code == 200 and detail.json()["subject_user"] == "alice"
    # when he confirms it
    confirmed = as_mike.post(f"{GRANTS}{pending['id']}/confirm/")
    # then it is in force, confirmed by mike
    assert confirmed.status_code == 200, confirmed.json()
    assert (confirmed.json()["status"], confirmed.json()["confirmed_by"]) == ("active", "mike")
    assert Grant.objects.get(pk=pending["id"]).confirmed_by.username == "mike"


def test_a_manager_of_another_team_rejects_a_pending_change_with_a_reason(as_maria, as_mike, alice):
    # given maria's pending raise for alice
    pending = as_maria.post(GRANTS, raise_for("alice"), format="json").json()
    # when mike rejects it
    rejected = as_mike.post(f"{GRANTS}{pending['id']}/reject/", {"reason": "too much at once"}, format="json")
    # then it is rejected by him
    assert rejected.status_code == 200, rejected.json()
    assert (rejected.json()["status"], rejected.json()["confirmed_by"]) == ("rejected", "mike")


def test_the_checker_sees_no_more_than_the_pending_changes_he_may_check(as_maria, as_mike, alice):
    # given alice's active grant and maria's pending raise of bob's refunds in Retention
    active = GrantFactory(subject_user=alice)
    bob = UserFactory(username="bob", roles=[Role.AGENT])
    alice.teams.first().members.add(bob)
    pending = as_maria.post(GRANTS, raise_for("bob"), format="json").json()
    # when mike lists every grant he may see
    ids = {row["id"] for row in as_mike.get(GRANTS).json()["results"]}
    # then the pending change is there, Retention's active grants are not
    assert pending["id"] in ids and active.pk not in ids
    assert as_mike.get(f"{GRANTS}{active.pk}/").status_code == 404


def test_nobody_checks_a_change_to_their_own_authority_through_the_api(as_mike, mike):
    # given a superuser proposes raising the Manager role's refunds: mike holds that role
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    as_root = client_for(root)
    pending = as_root.post(GRANTS, raise_for(subject_role=Role.MANAGER), format="json")
    assert pending.status_code == 201, pending.json()
    pending_id = pending.json()["id"]
    before, audited = state(), successful_audit_events()
    # when mike confirms it
    response = as_mike.post(f"{GRANTS}{pending_id}/confirm/")
    # then he is refused, and nothing changed
    assert response.status_code in (403, 404)
    assert state() == before and successful_audit_events() == audited
    assert Grant.objects.get(pk=pending_id).status == "pending"
    assert role(Role.MANAGER).grants.get().pk == pending_id


def test_an_agent_neither_sees_nor_confirms_a_pending_change(as_maria, alice):
    # given maria's pending raise for bob, an agent of Retention like alice
    bob = UserFactory(username="bob", roles=[Role.AGENT])
    alice.teams.first().members.add(bob)
    pending = as_maria.post(GRANTS, raise_for("bob"), format="json").json()
    before, audited = state(), successful_audit_events()
    # when alice (an agent) looks for it and confirms it
    as_alice = client_for(alice)
    assert pending["id"] not in {row["id"] for row in as_alice.get(GRANTS).json()["results"]}
    response = as_alice.post(f"{GRANTS}{pending['id']}/confirm/")
    # then it is not found, and nothing changed
    assert response.status_code == 404
    assert state() == before and successful_audit_events() == audited
