"""Grants through the API: who sees which, authority as of any instant, maker-checker changes."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from authority.models import Grant, GrantStatus, Period
from h2h_core.models import Role
from tests.factories import GrantFactory, UserFactory, role

from .helpers import assert_error_shape, audit_actions, grant_refund, state

pytestmark = pytest.mark.django_db

GRANTS = "/api/v1/grants/"


def terms(**overrides):
    return {"kind": "refund", "per_case_limit": "300.00", "period_limit": "900.00", "period": "month",
            "currency": "EUR", "reason": "New starter", **overrides}


def test_an_agent_sees_the_grants_that_speak_for_her_only(as_alice, alice, bob, retention):
    # given a personal grant, a team grant, a role grant, and bob's personal grant
    own = grant_refund(alice)
    team = GrantFactory(subject_team=retention)
    by_role = GrantFactory(subject_role=role(Role.AGENT))
    grant_refund(bob)
    # then alice sees the three that apply to her
    ids = {row["id"] for row in as_alice.get(GRANTS).json()["results"]}
    assert ids == {own.pk, team.pk, by_role.pk}


def test_a_manager_sees_her_teams_grants_and_an_auditor_sees_all(as_maria, as_audrey, alice, bob, billing_case):
    mine = grant_refund(alice)
    carols = grant_refund(billing_case.owner)
    assert mine.pk in {row["id"] for row in as_maria.get(GRANTS).json()["results"]}
    assert carols.pk not in {row["id"] for row in as_maria.get(GRANTS).json()["results"]}
    assert as_audrey.get(GRANTS).json()["count"] == 2


def test_the_list_as_of_an_instant_shows_the_version_in_force_then(as_mona, as_maria, alice):
    # given alice's grant changed from 500 to 300 on 1 March 2024
    old = grant_refund(alice, valid_from=datetime(2024, 1, 1, tzinfo=UTC))
    Grant.objects.filter(pk=old.pk).update(superseded_at=datetime(2024, 3, 1, tzinfo=UTC))
    new = grant_refund(alice, per_case="300", lineage=old.lineage, version=2, supersedes=old,
                       valid_from=datetime(2024, 3, 1, tzinfo=UTC))
    # then February shows version 1 and April version 2
    feb = as_maria.get(f"{GRANTS}?at=2024-02-10T12:00:00Z&subject_user=alice").json()["results"]
    apr = as_maria.get(f"{GRANTS}?at=2024-04-10T12:00:00%2B02:00&subject_user=alice").json()["results"]
    assert [(row["id"], row["version"], row["per_case_limit"]) for row in feb] == [(old.pk, 1, "500.00")]
    assert [(row["id"], row["version"], row["per_case_limit"]) for row in apr] == [(new.pk, 2, "300.00")]
    every_version = as_maria.get(f"{GRANTS}?lineage={old.lineage}").json()["results"]
    assert [row["version"] for row in every_version] == [1, 2]


def test_an_instant_without_a_time_zone_or_out_of_range_is_400(as_maria):
    assert "at" in assert_error_shape(as_maria.get(f"{GRANTS}?at=1850-01-01T00:00:00Z"), 400, "invalid")["details"]
    assert_error_shape(as_maria.get(f"{GRANTS}?at=yesterday"), 400, "invalid")


def test_a_manager_grants_a_member_authority_below_the_threshold_at_once(as_maria, alice):
    response = as_maria.post(GRANTS, terms(subject_user="alice"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["subject_user"], body["per_case_limit"], body["granted_by"]) == (
        "active", "alice", "300.00", "maria")
    assert audit_actions()[-1] == "grant.created"


def test_above_the_threshold_a_grant_waits_for_a_second_manager_who_confirms(as_maria, as_mona, alice):
    # when maria grants alice 3,000 per case (above the refund threshold)
    pending = as_maria.post(GRANTS, terms(subject_user="alice", per_case_limit="3000.00",
                                          period_limit="10000.00"), format="json").json()
    assert pending["status"] == "pending"
    # then maria cannot confirm her own change
    before = state()
    assert_error_shape(as_maria.post(f"{GRANTS}{pending['id']}/confirm/"), 403, "not_allowed")
    assert state() == before
    # and mona confirms it
    confirmed = as_mona.post(f"{GRANTS}{pending['id']}/confirm/")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "active"
    assert confirmed.json()["confirmed_by"] == "mona"


def test_a_checker_rejects_a_pending_grant_with_a_reason(as_maria, as_mona, alice):
    pending = as_maria.post(GRANTS, terms(subject_user="alice", per_case_limit="3000.00"), format="json").json()
    missing = as_mona.post(f"{GRANTS}{pending['id']}/reject/", {}, format="json")
    assert "reason" in assert_error_shape(missing, 400, "invalid")["details"]
    rejected = as_mona.post(f"{GRANTS}{pending['id']}/reject/", {"reason": "Too much for a starter"}, format="json")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"


def test_a_change_writes_a_new_version_and_closes_the_old(as_maria, alice):
    current = grant_refund(alice)
    response = as_maria.post(f"{GRANTS}{current.pk}/change/", terms(per_case_limit="400.00", reason="Raise"),
                             format="json")
    assert response.status_code == 201, response.json()
    new = response.json()
    assert (new["version"], new["lineage"], new["supersedes"], new["status"]) == (2, current.lineage, current.pk,
                                                                                  "active")
    assert Grant.objects.get(pk=current.pk).superseded_at is not None


def test_nobody_changes_their_own_authority_and_nothing_changes(as_maria, maria):
    own = grant_refund(maria, per_case="5000", per_month="20000")
    before = state()
    response = as_maria.post(f"{GRANTS}{own.pk}/change/", terms(per_case_limit="9000.00"), format="json")
    assert_error_shape(response, 403, "not_allowed")
    assert state() == before


def test_an_agent_cannot_grant_authority_and_nothing_changes(as_alice, bob):
    before = state()
    assert_error_shape(as_alice.post(GRANTS, terms(subject_user="bob"), format="json"), 403, "not_allowed")
    assert state() == before


def test_a_grant_needs_exactly_one_known_subject(as_maria, alice, retention):
    both = as_maria.post(GRANTS, terms(subject_user="alice", subject_team="retention"), format="json")
    assert "subject" in assert_error_shape(both, 400, "invalid")["details"]
    unknown = as_maria.post(GRANTS, terms(subject_team="nowhere"), format="json")
    assert "subject_team" in assert_error_shape(unknown, 400, "invalid")["details"]
    assert not Grant.objects.exists()


def test_bad_terms_are_400_naming_each_field(as_maria, alice):
    response = as_maria.post(GRANTS, terms(subject_user="alice", period="none", currency="",
                                           valid_from="2030-01-01T00:00:00Z", valid_until="2029-01-01T00:00:00Z"),
                             format="json")
    body = assert_error_shape(response, 400, "invalid")
    assert {"currency", "valid_until"} <= set(body["details"])
    assert not Grant.objects.exists()


def test_a_manager_ends_a_grant(as_maria, alice):
    current = grant_refund(alice)
    response = as_maria.post(f"{GRANTS}{current.pk}/end/", {"reason": "Left the team"}, format="json")
    assert response.status_code == 200 and response.json()["superseded_at"]


@pytest.mark.parametrize("rows", [5, 30])
def test_listing_grants_costs_the_same_queries_for_5_or_30_rows(as_maria, retention, rows,
                                                                django_assert_max_num_queries):
    for number in range(rows):
        agent = UserFactory(username=f"agent{number}", roles=[Role.AGENT])
        retention.members.add(agent)
        GrantFactory(subject_user=agent, per_case_limit=Decimal(number + 1), period=Period.NONE, period_limit=None,
                     status=GrantStatus.ACTIVE)
    with django_assert_max_num_queries(6):
        response = as_maria.get(f"{GRANTS}?page_size=50")
    assert len(response.json()["results"]) == rows
