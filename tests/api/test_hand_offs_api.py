"""Hand-offs through the API: those on cases the caller sees, filtered, and the pickup once."""

import pytest

from h2h_core.hand_offs import case_hand_off
from h2h_core.models import AuditEvent, CaseStatus, HandOff, HandOffReason
from tests.factories import CaseFactory, ai_agent

from .helpers import assert_error_shape, client_for

pytestmark = pytest.mark.django_db

HAND_OFFS = "/api/v1/hand-offs/"
TRANSCRIPT = [{"from": "customer", "text": "Where is my refund?"}, {"from": "ai", "text": "Let me check."}]


def handed(bot, case, to_user, **extra):
    return case_hand_off(actor=bot.user, case=case, to_user=to_user, reason=HandOffReason.OVER_AUTHORITY,
                         reason_text="Refund over my authority.", summary="Refund asked.", transcript=TRANSCRIPT,
                         attempts=[{"kind": "refund", "amount": "120", "currency": "EUR", "outcome": "refused",
                                    "reasons": ["Over 50.00 EUR per case."]}], **extra)


@pytest.fixture
def bot(retention):
    return ai_agent(retention, "ava-bot")


@pytest.fixture
def to_alice(bot, alice, retention):
    return handed(bot, CaseFactory(owner=bot.user, team=retention), alice)


def test_the_receiver_lists_the_hand_off_with_its_whole_context(to_alice, as_alice):
    rows = as_alice.get(HAND_OFFS).json()["results"]
    assert [row["id"] for row in rows] == [to_alice.pk]
    row = rows[0]
    assert row["from_agent"] == "ava-bot" and row["to_user"] == "alice" and row["reason"] == "over_authority"
    assert row["transcript"] == TRANSCRIPT and row["attempts"][0]["amount"] == "120"
    assert row["summary"] == "Refund asked." and row["picked_up_at"] is None


def test_hand_offs_on_cases_the_caller_may_not_see_are_not_listed(to_alice, billing, as_alice):
    # given an AI agent of billing handed a billing case to carol
    from tests.factories import UserFactory

    carol = UserFactory(username="carol", roles=["Agent"])
    billing.members.add(carol)
    billing_bot = ai_agent(billing, "sam-bot")
    other = handed(billing_bot, CaseFactory(owner=billing_bot.user, team=billing), carol)
    # then alice sees only her team's
    ids = [row["id"] for row in as_alice.get(HAND_OFFS).json()["results"]]
    assert ids == [to_alice.pk]
    assert as_alice.get(f"{HAND_OFFS}{other.pk}/").status_code == 404


def test_filters_picked_up_and_case(to_alice, bot, retention, alice, as_alice):
    second = handed(bot, CaseFactory(owner=bot.user, team=retention), alice)
    HandOff.objects.filter(pk=second.pk).update(picked_up_at=second.created_at, picked_up_by=alice)
    waiting = as_alice.get(f"{HAND_OFFS}?picked_up=false").json()["results"]
    assert [row["id"] for row in waiting] == [to_alice.pk]
    done = as_alice.get(f"{HAND_OFFS}?picked_up=true").json()["results"]
    assert [row["id"] for row in done] == [second.pk]
    by_case = as_alice.get(f"{HAND_OFFS}?case={second.case_id}").json()["results"]
    assert [row["id"] for row in by_case] == [second.pk]
    assert_error_shape(as_alice.get(f"{HAND_OFFS}?picked_up=maybe"), 400)


def test_the_list_costs_a_fixed_number_of_queries(bot, retention, alice, as_alice, django_assert_max_num_queries):
    for _ in range(6):
        handed(bot, CaseFactory(owner=bot.user, team=retention), alice)
    with django_assert_max_num_queries(8):
        response = as_alice.get(HAND_OFFS)
    assert response.json()["count"] == 6


def test_the_receiver_picks_up_once(to_alice, as_alice, alice):
    # when alice picks up twice
    first = as_alice.post(f"{HAND_OFFS}{to_alice.pk}/pick-up/", format="json")
    second = as_alice.post(f"{HAND_OFFS}{to_alice.pk}/pick-up/", format="json")
    # then both answer the row, and it was recorded once
    assert first.status_code == 200 and first.json()["picked_up_by"] == "alice"
    assert second.status_code == 200 and second.json()["picked_up_at"] == first.json()["picked_up_at"]
    assert AuditEvent.objects.filter(action="hand_off.picked_up").count() == 1


def test_someone_who_does_not_own_the_case_cannot_pick_it_up(to_alice, bob, maria):
    for user in (bob, maria):
        response = client_for(user).post(f"{HAND_OFFS}{to_alice.pk}/pick-up/", format="json")
        assert_error_shape(response, 403)
    assert HandOff.objects.get().picked_up_at is None
    assert AuditEvent.objects.filter(action="hand_off.pick_up.refused").count() == 2


def test_an_unowned_hand_off_is_picked_up_by_claiming_the_case(bot, retention, alice, as_alice):
    hand_off = handed(bot, CaseFactory(owner=bot.user, team=retention), None)
    assert hand_off.case.status == CaseStatus.QUEUED
    response = as_alice.post(f"{HAND_OFFS}{hand_off.pk}/pick-up/", format="json")
    assert_error_shape(response, 403)
    assert "Claim" in response.json()["message"]
