"""The hand-off from an AI agent to a person: one owner, the whole context, chosen by one rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from authority.errors import AuthorityDenied
from authority.models import Grant, RequestStatus
from authority.services import authority_request_approve, authority_request_open, decision_execute
from h2h_core.errors import CaseNotOpen, IdempotencyConflict, NotAllowed, NotCaseOwner
from h2h_core.hand_offs import case_hand_off, hand_off_pick_up
from h2h_core.models import AuditEvent, Case, CaseEvent, CaseStatus, HandOff, HandOffReason, Role
from tests.factories import CaseFactory, GrantFactory, UserFactory, ai_agent, kind, successful_audit_events
from workflows import services
from workflows.hand_off_routing import hand_off_receiver
from workflows.steps.hand_offs import case_flow_hand_off

from .conftest import open_case, task_states

TRANSCRIPT = [
    {"from": "customer", "text": "You charged me twice and I want my money back now."},
    {"from": "ai", "text": "I can see two charges of 120 EUR on 3 November. Let me check what I can do."},
]
ATTEMPTS = [{"kind": "refund", "amount": "120.00", "currency": "EUR", "outcome": "refused",
             "reasons": ["Over the per-case limit of 50.00 EUR."]}]


@pytest.fixture
def bot(retention):
    return ai_agent(retention, "ava-bot")


@pytest.fixture
def case_owned_by_bot(bot, alice, customer):
    # given a complaint in the Retention queue, claimed by the AI agent
    case = open_case(alice, customer)
    return services.case_flow_claim(actor=bot.user, case=case)


def hand_off(bot, case, **extra):
    fields = {"reason": HandOffReason.OVER_AUTHORITY, "reason_text": "Refund of 120 EUR is over my authority.",
              "summary": "Double charge on 3 Nov; customer wants a refund.", "transcript": TRANSCRIPT,
              "attempts": ATTEMPTS, **extra}
    return case_flow_hand_off(actor=bot.user, case=case, **fields)


def state(case) -> dict:
    case = Case.objects.get(pk=case.pk)
    return {"owner": case.owner_id, "status": case.status, "hand_offs": HandOff.objects.count(),
            "events": CaseEvent.objects.count(), "audit": successful_audit_events(),
            "task": task_states(case)["own"]}


@pytest.mark.django_db
def test_a_hand_off_leaves_one_owner_the_person_and_keeps_the_context(bot, alice, case_owned_by_bot):
    # when the AI agent hands its case off, with what the customer said and what it tried
    result = hand_off(bot, case_owned_by_bot)
    # then alice, the only person of the team, owns the case and its ownership task; the AI does not
    case = Case.objects.get(pk=case_owned_by_bot.pk)
    assert case.owner_id == alice.pk and case.status == CaseStatus.OWNED
    assert task_states(case)["own"] == ("ASSIGNED", alice.pk)
    # and the hand-off row keeps the whole context
    row = HandOff.objects.get()
    assert row == result and row.to_user_id == alice.pk and row.from_agent_id == bot.user.pk
    assert row.transcript == TRANSCRIPT and row.attempts == ATTEMPTS
    assert row.summary == "Double charge on 3 Nov; customer wants a refund." and row.picked_up_at is None
    # and the timeline says who handed it to whom and why
    event = case.events.get(kind=CaseEvent.Kind.HAND_OFF)
    assert event.text == "Handed to alice by AI agent ava-bot: Refund of 120 EUR is over my authority."
    # and the audit keeps before/after, reason and attempts, but not the customer's words
    audit = AuditEvent.objects.get(action="case.handed_off")
    assert audit.before["owner_id"] == bot.user.pk and audit.after["owner_id"] == alice.pk
    assert audit.after["attempts"] == ATTEMPTS and audit.after["transcript_lines"] == 2
    assert "charged me twice" not in str(audit.after) and audit.reason.startswith("over_authority: ")


@pytest.mark.django_db
def test_after_a_hand_off_the_ai_no_longer_decides_on_the_case(bot, alice, case_owned_by_bot):
    # given the AI agent could credit 25 EUR on its cases, and handed this one off
    GrantFactory(subject_user=bot.user, kind=kind("goodwill_credit"), per_case_limit=Decimal("25"))
    hand_off(bot, case_owned_by_bot)
    # when it tries to decide on it anyway
    with pytest.raises(NotCaseOwner):
        decision_execute(actor=bot.user, case=case_owned_by_bot, kind=kind("goodwill_credit"), amount="10",
                         currency="EUR", rationale="sorry", confidence="0.9")
    # then it may not: only the owner (alice) decides
    assert Case.objects.get(pk=case_owned_by_bot.pk).owner_id == alice.pk


@pytest.mark.django_db
def test_a_replay_with_the_same_key_returns_the_first_hand_off_and_changes_nothing(bot, alice, case_owned_by_bot):
    first = hand_off(bot, case_owned_by_bot, idempotency_key="hand-off-1")
    before = state(case_owned_by_bot)
    # when the AI agent retries the same call (its answer was lost)
    again = hand_off(bot, case_owned_by_bot, idempotency_key="hand-off-1")
    # then it gets the same hand-off, and nothing more was written
    assert again.pk == first.pk and state(case_owned_by_bot) == before
    # and the same key with another payload is refused
    with pytest.raises(IdempotencyConflict):
        hand_off(bot, case_owned_by_bot, idempotency_key="hand-off-1", reason_text="something else")
    assert state(case_owned_by_bot) == before


@pytest.mark.django_db
def test_a_replay_does_not_void_an_approval_given_to_the_person_since(bot, alice, maria, case_owned_by_bot):
    # given the hand-off made alice the owner, and maria then approved alice a one-off refund of 600
    hand_off(bot, case_owned_by_bot, idempotency_key="hand-off-1")
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    request = authority_request_open(actor=alice, case=case_owned_by_bot, kind=kind("refund"), amount="600",
                                       currency="EUR", justification="double charge, plus fees")
    authority_request_approve(actor=maria, request=request, note="ok")
    # when the AI agent's retry of the hand-off arrives
    hand_off(bot, case_owned_by_bot, idempotency_key="hand-off-1")
    # then alice's approval still stands
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED


@pytest.mark.django_db
def test_the_hand_off_voids_the_ais_approvals_on_the_case(bot, alice, maria, case_owned_by_bot):
    # given maria approved the AI agent a one-off credit on its case
    credit = kind("goodwill_credit")
    GrantFactory(subject_user=bot.user, kind=credit, per_case_limit=Decimal("25"))
    GrantFactory(subject_user=maria, kind=credit, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    request = authority_request_open(actor=bot.user, case=case_owned_by_bot, kind=credit, amount="40",
                                       currency="EUR", justification="goodwill")
    authority_request_approve(actor=maria, request=request, note="ok")
    # when it hands the case off
    hand_off(bot, case_owned_by_bot)
    # then the approval is void: it was for the AI as owner
    request.refresh_from_db()
    assert request.status == RequestStatus.VOIDED
    assert Grant.objects.get(pk=request.one_off_grant_id).void_reason.startswith(
        f"{case_owned_by_bot.reference} was handed off by AI agent ava-bot to alice")


@pytest.mark.django_db
def test_the_receiver_is_a_person_whose_authority_covers_the_decision_then_the_least_loaded(
        bot, retention, alice, bob, case_owned_by_bot):
    # given alice owns two open cases and bob none; only alice may refund 120 EUR
    CaseFactory(owner=alice, team=retention)
    CaseFactory(owner=alice, team=retention)
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    senior = UserFactory(username="zoe", roles=[Role.SENIOR_AGENT], is_active=False)
    retention.members.add(senior)
    case = Case.objects.select_related("customer").get(pk=case_owned_by_bot.pk)
    # then without a decision to cover, the least loaded person receives it (bob; zoe is inactive)
    assert hand_off_receiver(case=case) == bob
    # and with a refund of 120 EUR pending, alice, whose own authority covers it, comes first
    assert hand_off_receiver(case=case, kind="refund", amount="120", currency="EUR") == alice
    # and with one over everyone's authority, load decides again
    assert hand_off_receiver(case=case, kind="refund", amount="900", currency="EUR") == bob
    # and the step routes by the same rule
    result = hand_off(bot, case_owned_by_bot, kind=kind("refund"), amount="120", currency="EUR")
    assert result.to_user_id == alice.pk


@pytest.mark.django_db
def test_choosing_the_receiver_costs_a_fixed_number_of_queries(bot, retention, alice, case_owned_by_bot,
                                                              django_assert_max_num_queries):
    refund = kind("refund")
    for n in range(8):
        person = UserFactory(username=f"p{n}", roles=[Role.AGENT])
        retention.members.add(person)
        GrantFactory(subject_user=person, per_case_limit=Decimal(100 * n))
        CaseFactory(owner=person, team=retention)
    case = Case.objects.select_related("customer").get(pk=case_owned_by_bot.pk)
    with django_assert_max_num_queries(8):
        receiver = hand_off_receiver(case=case, kind=refund, amount="450", currency="EUR")
    assert receiver.username == "p5"


@pytest.mark.django_db
def test_an_ai_agent_and_the_owner_never_receive_a_hand_off(retention, bot, alice, case_owned_by_bot):
    # given the team has only AI agents (alice left it)
    retention.members.remove(alice)
    ai_agent(retention, "other-bot")
    # then nobody receives the case
    assert hand_off_receiver(case=case_owned_by_bot) is None


@pytest.mark.django_db
def test_with_no_person_in_the_team_the_case_waits_in_the_queue_and_a_claim_picks_it_up(
        retention, bot, customer, maria):
    # given a team with no person but its AI agent, which owns a case
    opener = UserFactory(username="intake", roles=[Role.MANAGER])
    case = services.case_flow_claim(actor=bot.user, case=open_case(opener, customer))
    # when the AI agent hands it off
    result = hand_off(bot, case)
    # then the case waits unowned in the team queue, and so does its ownership task
    case.refresh_from_db()
    assert case.owner_id is None and case.status == CaseStatus.QUEUED and result.to_user_id is None
    assert task_states(case)["own"] == ("NEW", None)
    assert case.events.get(kind=CaseEvent.Kind.HAND_OFF).text.startswith("Handed to the Retention queue by AI")
    # and another AI agent may not claim it: it waits for a person
    other = ai_agent(retention, "other-bot")
    with pytest.raises(NotAllowed, match="a person claims it"):
        services.case_flow_claim(actor=other.user, case=case)
    # when a person of the team claims it
    dan = UserFactory(username="dan", roles=[Role.AGENT])
    retention.members.add(dan)
    services.case_flow_claim(actor=dan, case=case)
    # then dan owns it and the hand-off is picked up, once
    result.refresh_from_db()
    assert result.picked_up_by_id == dan.pk and result.picked_up_at is not None
    assert AuditEvent.objects.filter(action="hand_off.picked_up").count() == 1


@pytest.mark.django_db
def test_an_unowned_hand_off_is_not_repeated(retention, bot, customer):
    opener = UserFactory(username="intake", roles=[Role.MANAGER])
    case = services.case_flow_claim(actor=bot.user, case=open_case(opener, customer))
    hand_off(bot, case)
    before = state(case)
    # when the AI agent (which could claim from the queue) hands the waiting case off again
    with pytest.raises(CaseNotOpen, match="already waits for a person"):
        hand_off(bot, case)
    # then nothing changed
    assert state(case) == before


@pytest.mark.django_db
def test_pickup_is_recorded_once_by_the_receiver(bot, alice, bob, case_owned_by_bot):
    result = hand_off(bot, case_owned_by_bot)
    # when bob, who does not own the case, tries to pick it up
    with pytest.raises(NotCaseOwner):
        hand_off_pick_up(actor=bob, hand_off=result)
    assert HandOff.objects.get().picked_up_at is None
    # when alice picks it up, twice
    first = hand_off_pick_up(actor=alice, hand_off=result)
    at = HandOff.objects.get().picked_up_at
    second = hand_off_pick_up(actor=alice, hand_off=HandOff.objects.get())
    # then the first call recorded it, and the second was a no-op returning the row
    assert first.picked_up_by_id == alice.pk and at is not None
    assert second.picked_up_at == at
    assert AuditEvent.objects.filter(action="hand_off.picked_up").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("transcript", "message"), [
    ("hello", "list of lines"),
    ([{"from": "agent", "text": "hi"}], '"from" must be "customer" or "ai"'),
    ([{"from": "ai", "text": ""}], "non-empty text"),
    ([{"from": "ai", "text": "x" * 4001}], "at most 4000"),
    ([{"from": "ai", "text": "hi", "mood": "angry"}], "unknown fields: mood"),
    ([{"from": "ai", "text": "hi"}] * 201, "At most 200 lines"),
    (["hi"], "not an object"),
])
def test_a_bad_transcript_is_refused_with_a_clear_error_and_changes_nothing(bot, case_owned_by_bot, transcript,
                                                                         message):
    before = state(case_owned_by_bot)
    with pytest.raises(ValidationError, match=message):
        hand_off(bot, case_owned_by_bot, transcript=transcript)
    assert state(case_owned_by_bot) == before


@pytest.mark.django_db
@pytest.mark.parametrize(("attempts", "message"), [
    ({"kind": "refund"}, "list of objects"),
    ([{"kind": "refund", "amount": 1.5}], "not a binary floating-point"),
    ([{"kind": "refund", "verdict": {}}], "unknown fields: verdict"),
    ([{"reasons": [1]}], "each reason must be text"),
])
def test_bad_attempts_are_refused_with_a_clear_error(bot, case_owned_by_bot, attempts, message):
    before = state(case_owned_by_bot)
    with pytest.raises(ValidationError, match=message):
        hand_off(bot, case_owned_by_bot, attempts=attempts)
    assert state(case_owned_by_bot) == before


@pytest.mark.django_db
def test_an_ai_that_does_not_own_the_case_cannot_hand_it_off_and_nothing_changes(retention, bot, alice, bob,
                                                                                 case_owned_by_bot):
    # given alice owns a case now, and another AI agent of the team
    services.case_flow_handover(actor=bot.user, case=case_owned_by_bot, to_user=alice, note="yours")
    other = ai_agent(retention, "other-bot")
    before = state(case_owned_by_bot)
    # when that AI (or the first one, no longer owner) tries to hand it off
    for ai in (other, bot):
        with pytest.raises(NotCaseOwner):
            hand_off(ai, case_owned_by_bot)
    # then nothing changed, and the refusals are on the record
    assert state(case_owned_by_bot) == before
    assert AuditEvent.objects.filter(action="case.hand_off.refused").count() == 2


@pytest.mark.django_db
def test_the_service_itself_refuses_an_ai_that_does_not_own_the_case(bot, alice, bob, case_owned_by_alice):
    # given a case alice owns, outside any workflow (the service enforces the rule under its lock)
    before = (Case.objects.get(pk=case_owned_by_alice.pk).owner_id, HandOff.objects.count(), successful_audit_events())
    # when the AI agent hands it off to bob
    with pytest.raises(NotCaseOwner, match="Only the AI agent that owns"):
        case_hand_off(actor=bot.user, case=case_owned_by_alice, to_user=bob, reason=HandOffReason.ASKED,
                      reason_text="Let me pass it on")
    # then nothing changed
    assert (Case.objects.get(pk=case_owned_by_alice.pk).owner_id, HandOff.objects.count(),
            successful_audit_events()) == before


@pytest.mark.django_db
def test_a_person_cannot_use_the_hand_off(alice, case_owned_by_alice, bob):
    with pytest.raises(NotAllowed, match="Only an AI agent"):
        case_hand_off(actor=alice, case=case_owned_by_alice, to_user=bob, reason=HandOffReason.ASKED,
                      reason_text="mine")
    assert HandOff.objects.count() == 0 and Case.objects.get(pk=case_owned_by_alice.pk).owner_id == alice.pk


@pytest.mark.django_db
def test_a_manager_hands_off_on_behalf_of_a_suspended_ai_and_the_audit_names_both(bot, alice, maria,
                                                                                  case_owned_by_bot):
    # when maria hands the AI agent's case off while suspending it
    hand_off(bot, case_owned_by_bot, reason=HandOffReason.SUSPENDED, reason_text="ava-bot suspended", by=maria)
    # then alice owns it, and the audit names maria as actor and the AI as the agent it came from
    audit = AuditEvent.objects.get(action="case.handed_off")
    assert audit.actor_id == maria.pk and audit.after["from_agent_id"] == bot.user.pk
    assert audit.after["by_id"] == maria.pk
    assert Case.objects.get(pk=case_owned_by_bot.pk).owner_id == alice.pk
    # and someone who manages no team of the case may not act on the AI's behalf
    case2 = services.case_flow_claim(actor=bot.user, case=open_case(alice, case_owned_by_bot.customer))
    with pytest.raises(NotAllowed):
        hand_off(bot, case2, reason=HandOffReason.SUSPENDED, reason_text="x", by=alice)
    assert Case.objects.get(pk=case2.pk).owner_id == bot.user.pk


@pytest.mark.django_db
def test_a_hand_off_to_a_person_cannot_be_a_refusal_in_disguise(bot, alice, case_owned_by_bot):
    # a hand-off names a reason the product knows, and says why
    with pytest.raises(ValidationError, match="Unknown hand-off reason"):
        hand_off(bot, case_owned_by_bot, reason="bored")
    with pytest.raises(ValidationError, match="Say why"):
        hand_off(bot, case_owned_by_bot, reason_text="   ")
    assert Case.objects.get(pk=case_owned_by_bot.pk).owner_id == bot.user.pk


@pytest.mark.django_db
def test_the_refusal_of_an_over_authority_decision_leaves_the_ai_owner_until_it_hands_off(bot, case_owned_by_bot):
    # the refusal alone moves nothing: the hand-off is its own, explicit step
    with pytest.raises(AuthorityDenied):
        decision_execute(actor=bot.user, case=case_owned_by_bot, kind=kind("refund"), amount="120",
                         currency="EUR", rationale="double charge", confidence="0.9")
    assert Case.objects.get(pk=case_owned_by_bot.pk).owner_id == bot.user.pk


# --- PostgreSQL: two concurrent hand-offs ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_hand_offs_of_one_case_leave_one_hand_off_and_one_owner(retention, settings):
    from tests.workflows.test_concurrency import run_together

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    assert connection.vendor == "postgresql"
    # given an AI agent owns a case; its team has two people
    bot = ai_agent(retention, "ava-bot")
    people = []
    for name in ("alice", "bob"):
        person = UserFactory(username=name, roles=[Role.AGENT])
        retention.members.add(person)
        people.append(person)
    from tests.factories import CustomerFactory

    case = services.case_flow_claim(actor=bot.user, case=open_case(people[0], CustomerFactory()))
    # when it hands the case off twice at the same instant (two workers, two keys)
    results = run_together([
        lambda: hand_off(bot, case, idempotency_key="race-1"),
        lambda: hand_off(bot, case, idempotency_key="race-2"),
    ])
    # then one hand-off won, the other was refused, and the case has one owner: a person
    outcomes = sorted(kind for kind, _ in results)
    assert outcomes == ["error", "ok"], results
    assert HandOff.objects.count() == 1
    case.refresh_from_db()
    assert case.owner_id in {p.pk for p in people} and case.owner_id == HandOff.objects.get().to_user_id
    assert task_states(case)["own"] == ("ASSIGNED", case.owner_id)
