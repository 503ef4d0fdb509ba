"""Limit recommendations from evidence: each signal moves the recommendation, quality guards a raise,
the suggested amount, and accepting one as an ordinary maker-checker grant change."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from authority import usage
from authority.errors import AuthorityDenied
from authority.models import Grant, GrantStatus, Period, RequestStatus
from authority.reports.recommendations import LOWER, RAISE, _last_buckets, recommendations, round_up
from authority.services import decision_execute
from authority.services.recommendations import NoRecommendation, recommendation_accept
from h2h_core.errors import NotAllowed, StaleView
from h2h_core.models import CaseEvent, Role
from h2h_core.organisation import current_organisation
from tests.consoles.factories import DecisionFactory, RequestFactory
from tests.factories import (
    CaseFactory,
    GrantFactory,
    TeamFactory,
    UserFactory,
    ai_agent,
    kind,
    role,
    set_usage,
    team_manager,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(retention):
    user = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(user)
    return user


@pytest.fixture
def grants(alice, maria):
    """alice: 500 per case and 1,000 a month of refunds; maria (her manager): 2,000 and 5,000 a month."""
    GrantFactory(subject_user=maria, per_case_limit=Decimal("2000"), period_limit=Decimal("5000"))
    return GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"))


def utilisation(agent, *shares, period=Period.MONTH, cap=1000):
    """Set the agent's refund usage of the last buckets (oldest first), as % of a `cap` EUR cap."""
    starts = _last_buckets(period, timezone.now(), current_organisation().tz)
    for start, share in zip(starts, shares, strict=True):
        set_usage(usage.period_key(agent_id=agent.pk, kind_code="refund", currency="EUR", period=period, start=start),
                  Decimal(share) * cap / 100, kind_obj=kind("refund"), agent=agent, period=period, bucket_start=start,
                  currency="EUR")


def requests(agent, team, amounts, *, approved: int):
    """Authority requests of `agent` for these amounts: the first `approved` approved, the others rejected."""
    for index, amount in enumerate(amounts):
        RequestFactory(case=CaseFactory(owner=agent, team=team), amount=Decimal(amount),
                       status=RequestStatus.APPROVED if index < approved else RequestStatus.REJECTED,
                       decided_at=timezone.now())


def refuse(agent, team, amount):
    with pytest.raises(AuthorityDenied):
        decision_execute(actor=agent, case=CaseFactory(owner=agent, team=team), kind=kind("refund"),
                         amount=str(amount), currency="EUR", rationale="charged twice")


def decisions(agent, team, grant, count, *, rating=None, reversed_=0, reopened=0):
    made = []
    for index in range(count):
        case = CaseFactory(owner=agent, team=team, rating=rating)
        decision = DecisionFactory(case=case, agent=agent, grant=grant,
                                   executed_at=timezone.now() - timedelta(days=3),
                                   reversed_at=timezone.now() if index < reversed_ else None)
        if index < reopened:
            CaseEvent.objects.create(case=case, kind=CaseEvent.Kind.REOPENED, at=timezone.now() - timedelta(days=1))
        made.append(decision)
    return made


def row_for(manager, team, agent, code="refund"):
    report = recommendations(teams=[team], manager=manager)
    return next(row for row in report.rows if row.agent == agent and row.kind.code == code)


# --- each signal ---------------------------------------------------------------------------------


def test_high_utilisation_with_approved_requests_and_good_quality_suggests_a_raise(maria, alice, retention, grants):
    # given alice used 90 %, 95 % and 88 % of her monthly cap, and 5 of her 6 requests were approved
    utilisation(alice, 90, 95, 88)
    requests(alice, retention, ["600", "620", "640", "650", "700", "900"], approved=5)
    # when maria looks at the recommendations
    row = row_for(maria, retention, alice)
    # then a raise: the per-case limit to the 90th percentile of what she needed (700), the cap by a quarter
    assert row.action == RAISE
    assert row.evidence.utilisation == [90, 95, 88]
    assert (row.evidence.requests_approved, row.evidence.requests_decided) == (5, 6)
    assert row.per_case_limit == Decimal("700") and row.period_limit == Decimal("1250")
    assert "utilisation 90 % / 95 % / 88 % of 1,000.00 EUR" in row.reason


def test_utilisation_in_only_one_of_three_periods_suggests_nothing(maria, alice, retention, grants):
    # given alice used 90 % in one month only, with her requests mostly approved
    utilisation(alice, 40, 90, 50)
    requests(alice, retention, ["600", "650"], approved=2)
    # then nothing is suggested
    assert row_for(maria, retention, alice).action == ""


def test_frequent_refusals_just_over_suggest_a_raise_and_rare_ones_do_not(maria, alice, retention, grants):
    # given 5 of 6 requests approved, and two refusals just over her 500 per-case limit, one far over
    requests(alice, retention, ["550", "560", "570", "580", "590", "600"], approved=5)
    refuse(alice, retention, 600)
    refuse(alice, retention, 620)
    refuse(alice, retention, 2000)
    # then two just over are not yet frequent: nothing
    row = row_for(maria, retention, alice)
    assert (row.evidence.refusals, row.evidence.refusals_just_over) == (3, 2)
    assert row.action == ""
    # when a third refusal just over comes
    refuse(alice, retention, 610)
    # then a raise of the per-case limit to the 90th percentile of the 8 needed amounts (620)
    row = row_for(maria, retention, alice)
    assert row.evidence.refusals_just_over == 3 and row.evidence.needed_count == 8
    assert row.action == RAISE and row.per_case_limit == Decimal("620") and row.period_limit == Decimal("1000")
    assert "3 refusals just over (of 4)" in row.reason


def test_a_poor_approval_rate_blocks_a_raise(maria, alice, retention, grants):
    # given high utilisation but only 2 of her 6 requests approved
    utilisation(alice, 90, 95, 88)
    requests(alice, retention, ["600"] * 6, approved=2)
    # then no raise, and the page says why
    row = row_for(maria, retention, alice)
    assert row.action == "" and "fewer than 75 %" in " ".join(row.why)


def test_quality_worse_than_the_team_blocks_a_raise(maria, alice, bob, retention, grants):
    # given high utilisation and approved requests, but alice's cases rate 2 where bob's rate 5
    utilisation(alice, 90, 95, 88)
    requests(alice, retention, ["600", "650"], approved=2)
    bob_grant = GrantFactory(subject_user=bob)
    decisions(alice, retention, grants, 4, rating=2)
    decisions(bob, retention, bob_grant, 8, rating=5)
    # then no raise: her CSAT is below the team's
    row = row_for(maria, retention, alice)
    assert row.evidence.quality.csat == Decimal("2.00") and row.evidence.team_quality.csat == Decimal("4.00")
    assert row.action == "" and "CSAT 2.00 is below the team's 4.00" in " ".join(row.why)
    # and with ratings as good as the team's the raise comes back
    decisions(alice, retention, grants, 20, rating=5)
    assert row_for(maria, retention, alice).action == RAISE


def test_reversals_well_above_the_team_suggest_halving_the_limits(maria, alice, bob, retention, grants):
    # given 3 of alice's 5 decisions reversed, none of bob's 10
    decisions(alice, retention, grants, 5, reversed_=3)
    decisions(bob, retention, GrantFactory(subject_user=bob), 10)
    # then lower: both limits halved
    row = row_for(maria, retention, alice)
    assert row.evidence.quality.reversal_rate == 60 and row.evidence.team_quality.reversal_rate == 20
    assert row.action == LOWER and (row.per_case_limit, row.period_limit) == (Decimal("250"), Decimal("500"))
    assert "3 reversals (60 % vs team 20 %)" in row.reason


def test_reopenings_well_above_the_team_suggest_lowering(maria, alice, bob, retention, grants):
    # given 2 of alice's 4 decisions were followed by a reopening, none of bob's
    decisions(alice, retention, grants, 4, reopened=2)
    decisions(bob, retention, GrantFactory(subject_user=bob), 10)
    # then lower
    row = row_for(maria, retention, alice)
    assert row.evidence.quality.reopened == 2 and row.action == LOWER


def test_tiny_utilisation_over_three_periods_suggests_a_lower_cap(maria, alice, retention, grants):
    # given alice used 5 %, 3 % and 0 % of her monthly cap and asked nothing
    utilisation(alice, 5, 3, 0)
    # then the cap becomes twice her highest usage (100), but no lower than her per-case limit
    row = row_for(maria, retention, alice)
    assert row.action == LOWER and (row.per_case_limit, row.period_limit) == (Decimal("500"), Decimal("500"))
    # and a grant younger than the three periods is not judged on them
    Grant.objects.filter(pk=grants.pk).update(valid_from=timezone.now() - timedelta(days=1))
    assert row_for(maria, retention, alice).action == ""


# --- the amount ----------------------------------------------------------------------------------


def test_the_suggested_amount_is_rounded_up_to_a_sensible_step():
    assert [round_up(Decimal(v)) for v in ("87.2", "641", "1234", "57010")] == [
        Decimal("88"), Decimal("645"), Decimal("1250"), Decimal("57500")]


def test_a_raise_never_goes_above_the_managers_own_authority(maria, alice, retention, grants):
    # given alice needed up to 3,000 (maria may decide 2,000 per case herself)
    utilisation(alice, 90, 95, 88)
    requests(alice, retention, ["2500", "2800", "3000"], approved=3)
    # then the raise stops at maria's own per-case limit
    row = row_for(maria, retention, alice)
    assert row.action == RAISE and row.per_case_limit == Decimal("2000")
    assert "Capped at your own per-case limit of 2,000.00 EUR." in row.capped


def test_a_manager_without_authority_of_the_kind_cannot_raise(alice, retention, grants):
    # given a manager of retention who holds no refund authority herself
    nina = team_manager(retention, "nina")
    utilisation(alice, 90, 95, 88)
    requests(alice, retention, ["600", "700"], approved=2)
    # then nothing is suggested to her, and she is told why
    row = row_for(nina, retention, alice)
    assert row.action == "" and "does not cover more" in " ".join(row.why)


def test_a_team_grant_speaks_for_an_agent_without_a_personal_grant(maria, bob, retention):
    # given bob's refund authority comes from the retention team grant
    GrantFactory(subject_user=maria, per_case_limit=Decimal("2000"), period_limit=Decimal("5000"))
    GrantFactory(subject_user=None, subject_team=retention)
    utilisation(bob, 90, 95, 88)
    requests(bob, retention, ["600", "700"], approved=2)
    # then the recommendation is about that team grant
    row = row_for(maria, retention, bob)
    assert row.grant.subject_team_id == retention.pk and row.action == RAISE


# --- accepting -----------------------------------------------------------------------------------


def test_accepting_creates_a_pending_change_carrying_the_evidence(maria, alice, retention):
    # given a raise to 2,000 per case and 2,500 a month is suggested (above the 2,000 confirmation threshold)
    GrantFactory(subject_user=maria, per_case_limit=Decimal("2000"), period_limit=Decimal("5000"))
    grants = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("2000"))
    utilisation(alice, 90, 95, 88, cap=2000)
    requests(alice, retention, ["1900", "2000"], approved=2)
    # when maria accepts it
    change = recommendation_accept(actor=maria, agent=alice, kind=kind("refund"))
    # then a new version of alice's grant waits for a second manager, with the evidence as its reason
    assert change.supersedes_id == grants.pk and change.status == GrantStatus.PENDING
    assert (change.per_case_limit, change.period_limit) == (Decimal("2000"), Decimal("2500"))
    assert change.reason.startswith("Recommended from evidence (90 days): Raise to 2,000.00 EUR per case")
    assert "utilisation 90 % / 95 % / 88 % of 2,000.00 EUR" in change.reason
    assert "2 of 2 requests approved" in change.reason and "0 reversals" in change.reason
    # and alice's authority is unchanged until it is confirmed
    assert Grant.objects.get(pk=grants.pk).superseded_at is None


def test_accepting_for_an_agent_under_a_team_grant_creates_a_personal_grant(maria, bob, retention):
    # given bob's authority comes from the team grant and a raise within the threshold is suggested
    GrantFactory(subject_user=maria, per_case_limit=Decimal("2000"), period_limit=Decimal("5000"))
    team_grant = GrantFactory(subject_user=None, subject_team=retention, scope_categories=[])
    utilisation(bob, 90, 95, 88)
    requests(bob, retention, ["600", "700"], approved=2)
    # when maria accepts
    grant = recommendation_accept(actor=maria, agent=bob, kind=kind("refund"))
    # then bob gets a personal grant in force now; the team grant is untouched
    assert grant.subject_user_id == bob.pk and grant.status == GrantStatus.ACTIVE
    assert (grant.per_case_limit, grant.period_limit) == (Decimal("700"), Decimal("1250"))
    assert Grant.objects.get(pk=team_grant.pk).superseded_at is None


def test_a_manager_of_another_team_is_refused_and_nothing_changes(alice, retention, grants):
    # given a raise is suggested for alice, and mike manages another team only
    utilisation(alice, 90, 95, 88)
    requests(alice, retention, ["600", "700"], approved=2)
    mike = team_manager(TeamFactory(name="Onboarding", slug="onboarding"), "mike")
    before = Grant.objects.count()
    # when mike accepts it
    with pytest.raises(NotAllowed, match="not in a team you manage"):
        recommendation_accept(actor=mike, agent=alice, kind=kind("refund"))
    # then nothing changed
    assert Grant.objects.count() == before


def test_accepting_recomputes_and_refuses_a_proposal_the_evidence_no_longer_supports(maria, alice, retention,
                                                                                     grants):
    # given a raise to 700 / 1,250 is suggested
    utilisation(alice, 90, 95, 88)
    requests(alice, retention, ["600", "700"], approved=2)
    before = Grant.objects.count()
    # when a tampered form claims another proposal
    with pytest.raises(StaleView, match="now suggests raise to 700.00 EUR per case"):
        recommendation_accept(actor=maria, agent=alice, kind=kind("refund"), expected="raise:5000:9000")
    # then nothing changed
    assert Grant.objects.count() == before
    # and the proposal as shown is what is written, from the evidence
    shown = row_for(maria, retention, alice).proposal_key
    change = recommendation_accept(actor=maria, agent=alice, kind=kind("refund"), expected=shown)
    assert (change.per_case_limit, change.period_limit) == (Decimal("700"), Decimal("1250"))


def test_accepting_when_nothing_is_recommended_is_refused(maria, alice, grants):
    utilisation(alice, 40, 50, 60)
    before = Grant.objects.count()
    with pytest.raises(NoRecommendation):
        recommendation_accept(actor=maria, agent=alice, kind=kind("refund"))
    assert Grant.objects.count() == before


def test_an_ai_agent_is_weighed_under_its_own_grants_never_its_teams(maria, retention):
    # given the retention team grant, and an AI agent of retention holding only the AI agent role's grant
    GrantFactory(subject_user=maria, per_case_limit=Decimal("2000"), period_limit=Decimal("5000"))
    GrantFactory(subject_user=None, subject_team=retention)
    role_grant = GrantFactory(subject_user=None, subject_role=role(Role.AI_AGENT), per_case_limit=Decimal("50"),
                              period_limit=Decimal("1000"))
    bot = ai_agent(retention, "ai-bot").user
    utilisation(bot, 90, 95, 88)
    requests(bot, retention, ["60", "70"], approved=2)
    # then its recommendation is about the AI agent role's grant
    row = row_for(maria, retention, bot)
    assert row.grant.pk == role_grant.pk and row.action == RAISE and row.per_case_limit == Decimal("70")
