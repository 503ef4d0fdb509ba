"""Shadow mode, read as tests: shadow grants record what an agent would have decided and never execute;
people's decisions are compared with them; moving a grant between shadow and live takes two managers."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from guardian.shortcuts import assign_perm

from authority import policy, selectors
from authority.errors import AuthorityDenied, IdempotencyConflict, NotCaseOwner
from authority.models import Decision, Effect, Grant, GrantStatus, OutboxMessage, Period, ShadowDecision, UsageCounter
from authority.reports.shadow import ai_grant_evidence, shadow_agreement, shadow_comparisons
from authority.services import (
    GrantTerms,
    decision_execute,
    grant_change,
    grant_confirm,
    grant_create,
    shadow_decision_record,
)
from h2h_core.ai_agents import AiAgentSuspended
from h2h_core.models import AuditEvent, CaseStatus, Role
from h2h_core.models.audit import Outcome
from tests.factories import CaseFactory, GrantFactory, UserFactory, ai_agent, kind, loaded_case, role

pytestmark = pytest.mark.django_db

SMALL = GrantTerms(per_case_limit=Decimal("100"), period_limit=Decimal("500"), period=Period.MONTH, currency="EUR")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def refund():
    return kind("refund")


@pytest.fixture
def ava(retention):
    """An AI agent of Retention."""
    return ai_agent(retention, "ava-bot", model_name="support-llm", model_version="2026-11")


@pytest.fixture
def mona(retention):
    """A second manager of Retention: the checker."""
    user = UserFactory(username="mona", roles=[Role.MANAGER])
    assign_perm("h2h_core.manage_team", user, retention)
    return user


def shadow_grant(subject, *, per_case="100", per_month="500", **fields):
    return GrantFactory(subject_user=subject, shadow=True, per_case_limit=Decimal(per_case),
                        period_limit=Decimal(per_month), period=Period.MONTH, **fields)


def nothing_executed():
    return {"decisions": Decision.objects.count(), "outbox": OutboxMessage.objects.count(),
            "counters": dict(UsageCounter.objects.values_list("key", "used"))}


def record(agent, case, amount, *, key=None, rationale="double charge", **extra):
    return shadow_decision_record(actor=agent, case=case, kind=kind("refund"), amount=amount, currency="EUR",
                                  rationale=rationale, confidence=extra.pop("confidence", "0.9"),
                                  idempotency_key=key, **extra)


# --- shadow decisions: recorded, never executed --------------------------------------------------


def test_shadow_decision_within_the_shadow_grant_is_recorded_as_allowed_and_executes_nothing(ava, retention):
    # given ava-bot may refund 100 per case in shadow only, owns a case, and alice's counters exist
    grant = shadow_grant(ava.user)
    case = CaseFactory(owner=ava.user, team=retention)
    before = nothing_executed()
    # when it decides a refund of 80
    shadow = record(ava.user, case, "80")
    # then what it would have done is recorded with its model, version and confidence...
    assert shadow.allowed is True and shadow.grant_id == grant.pk
    assert (shadow.amount, shadow.currency, shadow.rationale) == (Decimal("80"), "EUR", "double charge")
    assert (shadow.ai_model, shadow.ai_model_version, shadow.confidence) == ("support-llm", "2026-11",
                                                                            Decimal("0.900"))
    assert shadow.verdict["allowed"] is True
    # ...and nothing executed: no decision, no outbox message, no usage consumed
    assert nothing_executed() == before
    event = AuditEvent.objects.get(action="decision.shadow")
    assert event.object_id == str(shadow.pk) and event.after["allowed"] is True and event.actor_id == ava.user.pk


def test_shadow_decision_over_the_shadow_limit_is_recorded_as_refused_with_reasons(ava, retention):
    # given ava-bot's shadow grant allows 100 per case
    grant = shadow_grant(ava.user)
    case = CaseFactory(owner=ava.user, team=retention)
    # when it would refund 150
    shadow = record(ava.user, case, "150")
    # then it is recorded as refused, by the same shadow grant, saying how far over it is
    assert shadow.allowed is False and shadow.grant_id == grant.pk
    assert "50.00 EUR over your per-case limit of 100.00 EUR" in shadow.verdict["reasons"][0]
    assert Decision.objects.count() == 0 and UsageCounter.objects.count() == 0


def test_shadow_decisions_never_consume_usage_so_a_second_one_sees_the_same_headroom(ava, retention):
    # given a shadow grant of 100 per case and a first shadow refund of 80 on the case
    shadow_grant(ava.user)
    case = CaseFactory(owner=ava.user, team=retention)
    record(ava.user, case, "80")
    # when it would refund 80 again on the same case
    second = record(ava.user, case, "80", rationale="again")
    # then the first consumed nothing: the second fits too
    assert second.allowed is True and second.verdict["per_case_used"] == "0"
    assert UsageCounter.objects.count() == 0


def test_a_live_decision_ignores_a_shadow_grant(ava, retention):
    # given ava-bot owns a case and, without any grant, would be refused for these reasons
    case = CaseFactory(owner=ava.user, team=retention)
    without = policy.evaluate(agent=ava.user, kind=kind("refund"), amount="80", currency="EUR",
                              case=loaded_case(case), with_approvers=False)
    # when it holds a shadow grant that covers 80 and executes a live refund of 80
    shadow_grant(ava.user)
    before = nothing_executed()
    with pytest.raises(AuthorityDenied) as refused:
        decision_execute(actor=ava.user, case=case, kind=kind("refund"), amount="80", currency="EUR",
                         rationale="double charge", confidence="0.9")
    # then it is refused exactly as without the shadow grant, and nothing changed
    assert refused.value.verdict.reasons == without.reasons
    assert refused.value.verdict.deciding_grants == []
    assert nothing_executed() == before


def test_a_person_without_a_shadow_grant_records_a_refused_shadow_decision_and_no_ai_identity(alice, retention):
    # given alice owns a case and has no grant at all
    case = CaseFactory(owner=alice, team=retention)
    # when a shadow refund is recorded for her
    shadow = record(alice, case, "80", confidence=None)
    # then it is refused, names no grant, and carries no model
    assert shadow.allowed is False and shadow.grant_id is None
    assert (shadow.ai_model, shadow.ai_model_version, shadow.confidence) == ("", "", None)


def test_a_live_grant_decides_a_shadow_question_but_is_not_named_as_the_shadow_grant(ava, retention):
    # given ava-bot holds a live personal refund grant, and no shadow grant
    GrantFactory(subject_user=ava.user)
    case = CaseFactory(owner=ava.user, team=retention)
    # when a shadow refund is recorded
    shadow = record(ava.user, case, "80")
    # then the verdict is the live one's, but the record names no shadow grant
    assert shadow.allowed is True and shadow.grant_id is None


def test_shadow_decision_replays_by_key_and_refuses_the_key_for_another_payload(ava, retention):
    # given a shadow decision recorded with a key
    shadow_grant(ava.user)
    case = CaseFactory(owner=ava.user, team=retention)
    first = record(ava.user, case, "80", key="shadow-1")
    # when the same call is repeated, then the first record is returned and nothing more is written
    assert record(ava.user, case, "80", key="shadow-1").pk == first.pk
    assert ShadowDecision.objects.count() == 1
    assert AuditEvent.objects.filter(action="decision.shadow").count() == 1
    # when the key is used for another amount, then it is refused and nothing is written
    with pytest.raises(IdempotencyConflict):
        record(ava.user, case, "90", key="shadow-1")
    assert ShadowDecision.objects.count() == 1


def test_only_the_owner_records_a_shadow_decision_and_the_refusal_is_audited(ava, alice, retention):
    # given alice owns the case, and ava-bot holds a shadow grant
    shadow_grant(ava.user)
    case = CaseFactory(owner=alice, team=retention)
    # when ava-bot records a shadow refund on it
    with pytest.raises(NotCaseOwner):
        record(ava.user, case, "80")
    # then nothing was recorded, and the refusal was
    assert ShadowDecision.objects.count() == 0
    refusal = AuditEvent.objects.get(action="decision.shadow.refused")
    assert refusal.outcome == Outcome.DENIED and refusal.object_id == str(case.pk)


def test_a_suspended_ai_agent_records_no_shadow_decision(ava, retention):
    # given ava-bot is suspended
    shadow_grant(ava.user)
    case = CaseFactory(owner=ava.user, team=retention)
    ava.suspended_at = timezone.now()
    ava.suspension_reason = "wrong refunds"
    ava.save()
    # when it records a shadow refund, then it is refused and nothing is recorded
    with pytest.raises(AiAgentSuspended):
        record(ava.user, case, "80")
    assert ShadowDecision.objects.count() == 0


def test_bad_input_is_a_clear_error(ava, retention):
    # given ava-bot may refund in shadow on a case it owns
    shadow_grant(ava.user)
    case = CaseFactory(owner=ava.user, team=retention)
    # when it records without a rationale, with a confidence above 1, or a negative amount, then each says why
    with pytest.raises(ValidationError) as no_reason:
        record(ava.user, case, "80", rationale="  ")
    assert "rationale" in no_reason.value.message_dict
    with pytest.raises(ValidationError) as bad_confidence:
        record(ava.user, case, "80", confidence="1.5")
    assert "confidence" in bad_confidence.value.message_dict
    with pytest.raises(ValidationError):
        record(ava.user, case, "-5")
    assert ShadowDecision.objects.count() == 0


def test_has_shadow_authority_is_a_shadow_permit_of_the_kind_in_force(ava, alice):
    now = timezone.now()
    refund = kind("refund")
    # given alice holds a live grant only: no shadow authority
    GrantFactory(subject_user=alice)
    assert not selectors.has_shadow_authority(agent=alice, kind_id=refund.pk, at=now)
    # given ava-bot's shadow refund grant ends tomorrow
    shadow_grant(ava.user, valid_until=now + timedelta(days=1))
    assert selectors.has_shadow_authority(agent=ava.user, kind_id=refund.pk, at=now)
    assert not selectors.has_shadow_authority(agent=ava.user, kind_id=kind("fee_waiver").pk, at=now)
    assert not selectors.has_shadow_authority(agent=ava.user, kind_id=refund.pk, at=now + timedelta(days=2))


def test_a_role_shadow_grant_gives_shadow_authority_and_a_team_one_does_not_reach_an_ai_agent(ava, retention):
    # given Retention holds a shadow refund grant: team grants never speak for an AI agent member
    GrantFactory(subject_team=retention, shadow=True)
    assert not selectors.has_shadow_authority(agent=ava.user, kind_id=kind("refund").pk)
    # when the AI agent role holds one, then its AI agent has shadow authority
    GrantFactory(subject_role=role(Role.AI_AGENT), shadow=True)
    assert selectors.has_shadow_authority(agent=ava.user, kind_id=kind("refund").pk)  # now, by default


# --- approver pools never use shadow grants --------------------------------------------------------


def test_an_approver_pool_never_counts_a_shadow_grant(alice, maria, retention):
    # given alice may refund 100; maria, her manager, may refund 5,000 only in shadow
    GrantFactory(subject_user=alice, per_case_limit=Decimal("100"))
    shadow_grant(maria, per_case="5000", per_month="50000")
    case = loaded_case(CaseFactory(owner=alice, team=retention))
    # when alice's refund of 1,000 needs approval
    pool = policy.approver_pool(requester=alice, case=case, kind=kind("refund"), amount="1000", currency="EUR")
    # then maria is not among the approvers: her shadow authority approves nothing
    assert maria.pk not in pool.user_ids
    # and with the same grant live, she would be
    Grant.objects.filter(subject_user=maria).update(shadow=False)
    assert maria.pk in policy.approver_pool(requester=alice, case=case, kind=kind("refund"), amount="1000",
                                            currency="EUR").user_ids


# --- agreement: what the person then decided -------------------------------------------------------


def decided(case, agent, amount, *, at, currency="EUR", code="refund", **fields):
    """A decision executed at `at` (given, as the decision service would have written it)."""
    grant = GrantFactory(subject_user=agent, kind=kind(code), per_case_limit=Decimal("10000"))
    return Decision.objects.create(case=case, agent=agent, kind=kind(code), amount=Decimal(amount),
                                   currency=currency, counted_amount=Decimal(amount), counted_currency=currency,
                                   grant=grant, verdict={}, rationale="decided", executed_at=at, **fields)


def shadowed(case, agent, amount, *, at, code="refund"):
    return ShadowDecision.objects.create(case=case, agent=agent, kind=kind(code), amount=Decimal(amount),
                                         currency="EUR", allowed=True, verdict={}, rationale="would refund",
                                         created_at=at)


@pytest.fixture
def four_outcomes(ava, alice, bob_agent, retention):
    """One shadow decision per outcome: agreed, differed, declined, pending (oldest first)."""
    start = timezone.now() - timedelta(days=3)
    cases = [CaseFactory(owner=alice, team=retention) for _ in range(4)]
    shadows = [shadowed(case, ava.user, "80", at=start + timedelta(hours=i)) for i, case in enumerate(cases)]
    decided(cases[0], alice, "80", at=start + timedelta(days=1))
    decided(cases[1], bob_agent, "60", at=start + timedelta(days=1))
    decided(cases[1], alice, "80", at=start + timedelta(days=2))  # later: not the one compared
    cases[2].status = CaseStatus.RESOLVED
    cases[2].save()
    return shadows


@pytest.fixture
def bob_agent(retention):
    user = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(user)
    return user


def test_each_shadow_decision_is_agreed_differed_declined_or_pending(four_outcomes, alice, bob_agent):
    # when the comparisons are read (newest first)
    rows = shadow_comparisons()
    # then each shadow decision has its outcome and the first later human decision beside it
    by_shadow = {row.shadow.pk: row for row in rows}
    agreed, differed, declined, pending = (by_shadow[s.pk] for s in four_outcomes)
    assert [row.outcome for row in rows] == ["pending", "declined", "differed", "agreed"]
    assert agreed.outcome == "agreed" and agreed.human.agent == alice and agreed.human.amount == Decimal("80")
    assert differed.outcome == "differed" and differed.human.agent == bob_agent
    assert differed.human.amount == Decimal("60")
    assert declined.outcome == "declined" and declined.human is None
    assert pending.outcome == "pending" and pending.human is None


def test_agreement_rate_leaves_pending_out(four_outcomes, ava):
    # when ava-bot's agreement is read, then 1 of 3 decided cases agreed
    agreement = shadow_agreement(agent_id=ava.user.pk)
    assert {k: agreement[k] for k in ("agreed", "differed", "declined", "pending", "total")} == {
        "agreed": 1, "differed": 1, "declined": 1, "pending": 1, "total": 4}
    assert agreement["rate"] == Decimal("0.3333") and agreement["rate_percent"] == 33
    # and for another kind nothing is known
    assert shadow_agreement(agent_id=ava.user.pk, kind_id=kind("fee_waiver").pk)["rate"] is None


def test_only_a_later_decision_of_the_kind_by_someone_else_counts(ava, alice, retention):
    now = timezone.now()
    case = CaseFactory(owner=alice, team=retention)
    shadowed(case, ava.user, "80", at=now - timedelta(hours=5))
    # given decisions that do not answer it: one before it, one of another kind, one by the AI itself
    decided(case, alice, "80", at=now - timedelta(hours=6))
    decided(case, alice, "80", at=now - timedelta(hours=4), code="goodwill_credit")
    decided(case, ava.user, "80", at=now - timedelta(hours=3))
    # then it is still pending
    assert [row.outcome for row in shadow_comparisons()] == ["pending"]
    # when alice refunds 80 in another currency, then it differed
    decided(case, alice, "80", at=now - timedelta(hours=2), currency="USD")
    assert [row.outcome for row in shadow_comparisons()] == ["differed"]


def test_comparisons_cost_the_same_queries_for_one_row_or_many(ava, alice, retention, django_assert_num_queries):
    # given six shadow decisions, half of them decided by alice since
    now = timezone.now()
    for i in range(6):
        case = CaseFactory(owner=alice, team=retention)
        shadowed(case, ava.user, "80", at=now - timedelta(hours=10 - i))
        if i % 2:
            decided(case, alice, "80", at=now - timedelta(hours=1))
    refund_id = kind("refund").pk
    # when they are compared, then two queries read them all, with what each row shows
    with django_assert_num_queries(2):
        rows = shadow_comparisons(agent_ids=[ava.user.pk], kind_id=refund_id, since=now - timedelta(days=1))
        assert len(rows) == 6 and all(row.shadow.case.customer.name for row in rows)
        assert {row.human.agent.username for row in rows if row.human} == {"alice"}


def test_grant_evidence_gives_agreement_reversals_csat_and_period(four_outcomes, ava, alice, retention,
                                                                  django_assert_num_queries):
    # given ava-bot also executed two refunds (one reversed since) on rated cases
    now = timezone.now()
    first = CaseFactory(owner=alice, team=retention, rating=5)
    second = CaseFactory(owner=alice, team=retention, rating=2)
    decided(first, ava.user, "20", at=now - timedelta(days=10))
    decided(second, ava.user, "30", at=now - timedelta(days=9), reversed_at=now, reversal_reason="wrong")
    four_outcomes[0].case.rating = 4
    four_outcomes[0].case.save()
    # when the evidence for its refund grant is read
    refund = kind("refund")
    with django_assert_num_queries(3):
        evidence = ai_grant_evidence(agent=ava.user, kind=refund)
    # then it says how often people agreed, how often it was reversed, what customers said, and since when
    assert evidence["agreement"]["agreed"] == 1 and evidence["agreement"]["rate_percent"] == 33
    assert evidence["reversals"] == {"decisions": 2, "reversed": 1, "rate": Decimal("0.5000")}
    assert evidence["csat"] == {"mean": Decimal("3.67"), "count": 3}
    assert evidence["period"]["from"] == now - timedelta(days=10)
    assert evidence["period"]["to"] == four_outcomes[3].created_at


# --- shadow grants: maker-checker --------------------------------------------------------------------


def test_a_manager_gives_a_shadow_grant_below_the_threshold_in_force_at_once(maria, ava):
    # when maria gives ava-bot a shadow refund grant below the threshold, then it is in force and audited as shadow
    grant = grant_create(actor=maria, kind=kind("refund"), terms=SMALL, reason="trial", user=ava.user, shadow=True)
    assert grant.shadow is True and grant.status == GrantStatus.ACTIVE
    assert AuditEvent.objects.get(action="grant.created").after["shadow"] is True


def test_a_shadow_suspension_is_refused_and_nothing_is_written(maria, ava):
    # when maria gives ava-bot a shadow suspension, then it is refused (a suspension forbids for real)
    with pytest.raises(ValidationError) as refused:
        grant_create(actor=maria, kind=kind("refund"), terms=GrantTerms(effect=Effect.FORBID),
                     reason="stop", user=ava.user, shadow=True)
    assert "cannot be shadow" in refused.value.message_dict["shadow"][0]
    assert Grant.objects.count() == 0


def test_promotion_from_shadow_to_live_needs_a_second_manager_even_below_the_threshold(maria, mona, ava):
    # given ava-bot's shadow refund grant of 100 per case (far below the 2,000 threshold)
    shadow = grant_create(actor=maria, kind=kind("refund"), terms=SMALL, reason="trial", user=ava.user, shadow=True)
    # when maria promotes it to live with the same limits
    live = grant_change(actor=maria, grant=shadow, terms=SMALL, reason="agrees with people", shadow=False)
    # then the change waits for a second manager, and the shadow version stays in force meanwhile
    assert live.status == GrantStatus.PENDING and live.shadow is False
    shadow.refresh_from_db()
    assert shadow.superseded_at is None
    event = AuditEvent.objects.get(action="grant.change_pending")
    assert event.before["shadow"] is True and event.after["shadow"] is False
    # when mona confirms it, then it is live
    confirmed = grant_confirm(actor=mona, grant=live)
    assert confirmed.status == GrantStatus.ACTIVE and not confirmed.shadow
    assert not selectors.has_shadow_authority(agent=ava.user, kind_id=kind("refund").pk, at=timezone.now())


def test_demotion_from_live_to_shadow_needs_a_second_manager_too(maria, ava):
    # given a live grant below the threshold; when maria demotes it to shadow, then it waits for a second manager
    live = grant_create(actor=maria, kind=kind("refund"), terms=SMALL, reason="start", user=ava.user)
    demoted = grant_change(actor=maria, grant=live, terms=SMALL, reason="too many reversals", shadow=True)
    assert demoted.status == GrantStatus.PENDING and demoted.shadow is True


def test_a_change_that_keeps_the_mode_follows_the_threshold_as_before(maria, ava):
    # given a shadow grant
    shadow = grant_create(actor=maria, kind=kind("refund"), terms=SMALL, reason="trial", user=ava.user, shadow=True)
    # when its limit changes below the threshold, without saying the mode
    wider = GrantTerms(per_case_limit=Decimal("150"), period_limit=Decimal("500"), period=Period.MONTH,
                       currency="EUR")
    changed = grant_change(actor=maria, grant=shadow, terms=wider, reason="wider trial")
    # then it takes effect at once and stays shadow
    assert changed.status == GrantStatus.ACTIVE and changed.shadow is True


def test_the_shadow_flag_is_a_yes_or_no(maria, ava):
    # when the mode is given as text, then it is refused and nothing is written
    with pytest.raises(ValidationError) as refused:
        grant_create(actor=maria, kind=kind("refund"), terms=SMALL, reason="trial", user=ava.user, shadow="yes")
    assert "shadow" in refused.value.message_dict
    assert Grant.objects.count() == 0

