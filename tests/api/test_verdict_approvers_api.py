"""Every verdict the API renders says who could approve a request for it, whether that is the fallback pool,
and, when nobody can, why and what to do (the fields of authority.policy.verdict.Verdict)."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from authority.models import AuthorityRequest
from h2h_core.models import Role
from tests.factories import GrantFactory, UserFactory

from .helpers import grant_refund, state

pytestmark = pytest.mark.django_db

CHECK = "/api/v1/authority-check/"
REQUESTS = "/api/v1/authority-requests/"


def refund(on_case, amount):
    return {"case": on_case.pk, "kind": "refund", "amount": amount, "currency": "EUR"}


@pytest.fixture
def maria_may_refund_2000(maria):
    return grant_refund(maria, per_case="2000", per_month="50000")


@pytest.fixture
def fiona(db):
    """A fallback approver outside the team, with authority for 10,000."""
    user = UserFactory(username="fiona", roles=[Role.MANAGER])
    user.groups.add(Group.objects.get_or_create(name=settings.H2H_FALLBACK_APPROVER_GROUP)[0])
    GrantFactory(subject_user=user, per_case_limit=Decimal("10000"), period_limit=Decimal("50000"))
    return user


def test_the_dry_run_names_the_team_pool_when_a_manager_covers_it(as_alice, case_owned_by_alice,
                                                                  alice_may_refund_500, maria_may_refund_2000):
    verdict = as_alice.post(CHECK, refund(case_owned_by_alice, "1200"), format="json").json()
    assert verdict["allowed"] is False and verdict["approvers"] == ["maria"]
    assert verdict["approvers_are_fallback"] is False and verdict["no_approver"] == ""


def test_the_dry_run_names_the_fallback_pool_when_no_manager_covers_it(as_alice, case_owned_by_alice, fiona,
                                                                      alice_may_refund_500, maria_may_refund_2000):
    # given maria may approve 2,000 and fiona, a fallback approver, 10,000
    # when alice checks 10,000
    verdict = as_alice.post(CHECK, refund(case_owned_by_alice, "10000"), format="json").json()
    # then the verdict says the approvers are the fallback pool
    assert verdict["approvers"] == ["fiona"] and verdict["approvers_are_fallback"] is True
    assert verdict["no_approver"] == ""


def test_the_dry_run_says_why_nobody_can_approve_and_changes_nothing(as_alice, case_owned_by_alice,
                                                                     alice_may_refund_500, maria_may_refund_2000):
    # given nobody may approve 10,000 (maria: 2,000; no fallback approver)
    before = state()
    # when alice checks 10,000
    verdict = as_alice.post(CHECK, refund(case_owned_by_alice, "10000"), format="json").json()
    # then nobody is named, and the verdict says why and what to do
    assert verdict["approvers"] == [] and verdict["approvers_are_fallback"] is False
    assert verdict["no_approver"].startswith("Nobody can approve 10,000.00 EUR of refund")
    assert "fallback approver" in verdict["no_approver"]
    assert state() == before


def test_a_request_routed_to_the_fallback_pool_carries_the_verdict_that_says_so(
    as_alice, case_owned_by_alice, fiona, alice_may_refund_500, maria_may_refund_2000
):
    response = as_alice.post(REQUESTS, {**refund(case_owned_by_alice, "10000"), "justification": "Outage"},
                             format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["pool_is_fallback"] is True
    assert response.json()["verdict"]["approvers_are_fallback"] is True
    assert response.json()["verdict"]["no_approver"] == ""


def test_a_verdict_stored_before_these_fields_existed_renders_their_defaults(
    as_alice, case_owned_by_alice, alice_may_refund_500, maria_may_refund_2000
):
    # given a request whose stored verdict predates the two fields
    opened = as_alice.post(REQUESTS, {**refund(case_owned_by_alice, "1200"), "justification": "Outage"},
                           format="json").json()
    request = AuthorityRequest.objects.get(pk=opened["id"])
    old = {key: value for key, value in request.verdict.items() if key not in ("approvers_are_fallback",
                                                                                "no_approver")}
    AuthorityRequest.objects.filter(pk=request.pk).update(verdict=old)
    # when it is read
    verdict = as_alice.get(f"{REQUESTS}{request.pk}/").json()["verdict"]
    # then the fields are there with what they meant then: the team pool, and somebody could approve
    assert verdict["approvers_are_fallback"] is False and verdict["no_approver"] == ""
