"""Policy replay: what a pending grant change would have decided differently over recent history."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from authority.errors import AuthorityDenied
from authority.models import Effect, Grant, GrantStatus, Period
from authority.reports.replay import grant_change_replay
from authority.services import decision_execute
from h2h_core.audit.record import audit_record
from h2h_core.models import CaseCategory, Role
from tests.consoles.factories import DecisionFactory, RequestFactory
from tests.factories import CaseFactory, GrantFactory, UserFactory, ai_agent, exchange_rate, kind, loaded_case

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)
EUR = "EUR"


def pending_version(old, **terms):
    """A pending change of `old` (version 2), made by a manager."""
    maker = UserFactory(username="mike", roles=[Role.MANAGER])
    version = terms.pop("version", 2)
    fields = {"per_case_limit": old.per_case_limit, "period_limit": old.period_limit, "period": old.period,
              "currency": old.currency, "scope_categories": old.scope_categories, **terms}
    subject = {"subject_user": old.subject_user, "subject_team": old.subject_team, "subject_role": old.subject_role}
    return GrantFactory(status=GrantStatus.PENDING, supersedes=old, lineage=old.lineage, version=version,
                        granted_by=maker, kind=old.kind, **subject, **fields)


def refuse(agent, case, amount):
    """Try a decision over the limit through the service: the refusal is audited."""
    with pytest.raises(AuthorityDenied):
        decision_execute(actor=agent, case=loaded_case(case), kind=kind("refund"), amount=amount, currency=EUR,
                         rationale="over the limit")


def refusal_event(agent, case, amount, currency=EUR):
    """A refusal audit event as decision_execute records it (stamped now: the audit log is append-only)."""
    with transaction.atomic():
        return audit_record(actor=agent, action="decision.refused", object_type="case", object_id=case.pk,
                             outcome="denied", after={"case_id": case.pk, "kind": "refund", "amount": amount,
                                                      "currency": currency, "error": "authority_denied",
                                                      "verdict": None},
                             reason="over")


def test_a_raise_allows_past_refusals_and_avoids_requests(alice, retention):
    # given alice may refund 500 per case, was refused 800 and asked for 1,200; a raise to 1,500 is pending
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    refuse(alice, CaseFactory(owner=alice, team=retention), "800")
    RequestFactory(case=CaseFactory(owner=alice, team=retention), requester=alice, amount=Decimal("1200"))
    decision_execute(actor=alice, case=loaded_case(CaseFactory(owner=alice, team=retention)), kind=kind("refund"),
                     amount="200", currency=EUR, rationale="within")
    pending = pending_version(old, per_case_limit=Decimal("1500"))
    # when the change is replayed
    replay = grant_change_replay(pending=pending)
    # then the refusal would have been allowed and the request avoided; nothing executed is refused
    assert (replay.allowed_refusals.count, replay.allowed_refusals.totals) == (1, {EUR: Decimal("800")})
    assert (replay.avoided_requests.count, replay.avoided_requests.totals) == (1, {EUR: Decimal("1200")})
    assert replay.refused_decisions.count == 0
    assert replay.examined == 3 and not replay.truncated
    assert replay.allowed_refusals.examples[0].agent == "alice"
    assert "800.00 EUR" in replay.summary and "1,200.00 EUR" in replay.summary


def test_a_raise_not_high_enough_changes_nothing(alice, retention):
    # given alice was refused 800; a raise to 700 is pending
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    refuse(alice, CaseFactory(owner=alice, team=retention), "800")
    pending = pending_version(old, per_case_limit=Decimal("700"))
    # when replayed / then the refusal stays a refusal
    replay = grant_change_replay(pending=pending)
    assert replay.allowed_refusals.count == 0 and not replay.differs


def test_a_lowering_refuses_past_decisions(alice, retention):
    # given alice executed refunds of 200 and 50 under a 500 limit; a lowering to 100 is pending
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    for amount in ("200", "50"):
        decision_execute(actor=alice, case=loaded_case(CaseFactory(owner=alice, team=retention)),
                         kind=kind("refund"), amount=amount, currency=EUR, rationale="within")
    pending = pending_version(old, per_case_limit=Decimal("100"))
    # when replayed
    replay = grant_change_replay(pending=pending)
    # then the 200 would have been refused, with the reason the new terms give
    assert (replay.refused_decisions.count, replay.refused_decisions.totals) == (1, {EUR: Decimal("200")})
    assert "over your per-case limit" in replay.refused_decisions.examples[0].reason
    assert replay.allowed_refusals.count == replay.avoided_requests.count == 0


def test_a_narrower_scope_refuses_decisions_outside_it(alice, retention):
    # given alice refunded on a complaint case and on a billing error case; the change keeps billing errors only
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    for category in (CaseCategory.COMPLAINT, CaseCategory.BILLING_ERROR):
        decision_execute(actor=alice, case=loaded_case(CaseFactory(owner=alice, team=retention, category=category)),
                         kind=kind("refund"), amount="100", currency=EUR, rationale="within")
    pending = pending_version(old, scope_categories=[CaseCategory.BILLING_ERROR])
    # when replayed / then only the complaint case's decision would have been refused
    replay = grant_change_replay(pending=pending)
    assert replay.refused_decisions.count == 1
    assert "covers Billing error cases" in replay.refused_decisions.examples[0].reason


def test_a_wider_scope_allows_refusals_outside_the_old_one(alice, retention):
    # given alice's grant covered billing errors only, and she was refused on a complaint case
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"),
                       scope_categories=[CaseCategory.BILLING_ERROR])
    refuse(alice, CaseFactory(owner=alice, team=retention, category=CaseCategory.COMPLAINT), "100")
    pending = pending_version(old, scope_categories=[])
    # when replayed / then that refusal would have been allowed
    assert grant_change_replay(pending=pending).allowed_refusals.count == 1


def test_period_caps_count_the_agents_decisions_of_that_bucket_only(alice, retention):
    # given alice's cap is 1,000 a month; she used 900 in May and 900 in June before asking on 12 June
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("1000"), period_limit=Decimal("1000"),
                       period=Period.MONTH)
    for at, amount in ((datetime(2026, 5, 25, 10, tzinfo=UTC), "900"), (datetime(2026, 6, 5, 10, tzinfo=UTC), "600"),
                       (datetime(2026, 6, 10, 10, tzinfo=UTC), "300")):
        DecisionFactory(case=CaseFactory(owner=alice, team=retention), agent=alice, grant=old, amount=Decimal(amount),
                        executed_at=at)
    asked = datetime(2026, 6, 12, 10, tzinfo=UTC)
    for amount in ("550", "650"):
        RequestFactory(case=CaseFactory(owner=alice, team=retention), requester=alice, amount=Decimal(amount),
                       created_at=asked, expires_at=asked + timedelta(days=1))
    # a raise of the cap to 1,500 is pending (600 left in June under it)
    pending = pending_version(old, period_limit=Decimal("1500"))
    # when replayed at 20 June
    replay = grant_change_replay(pending=pending, now=NOW)
    # then the 550 would have fitted, the 650 not (May's usage is another bucket)
    assert [(row.amount, row.status) for row in replay.avoided_requests.examples] == [(Decimal("550"), "open")]
    # and the decisions themselves stay within the raised cap
    assert replay.refused_decisions.count == 0
    # and bounded to the newest three rows (the requests and the 300 of 10 June), the 600 of 5 June still counts
    bounded = grant_change_replay(pending=pending, now=NOW, limit=3)
    assert bounded.truncated and [row.amount for row in bounded.avoided_requests.examples] == [Decimal("550")]


def test_per_case_usage_counts_every_earlier_decision_on_the_case(alice, retention):
    # given bob refunded 300 on a case before alice took it over and asked for 300 more
    bob = UserFactory(username="bob", roles=[Role.AGENT])
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    case = CaseFactory(owner=alice, team=retention)
    DecisionFactory(case=case, agent=bob, grant=GrantFactory(subject_user=bob), amount=Decimal("300"),
                    executed_at=NOW - timedelta(days=3))
    RequestFactory(case=case, requester=alice, amount=Decimal("300"), created_at=NOW - timedelta(days=2),
                   expires_at=NOW)
    # when a raise to 700 per case is replayed: 400 left on the case under it, 200 under the old terms
    pending = pending_version(old, per_case_limit=Decimal("700"))
    replay = grant_change_replay(pending=pending, now=NOW)
    # then the request would have been avoided
    assert replay.avoided_requests.count == 1
    # and a raise to 550 (250 left) would not have avoided it
    Grant.objects.filter(pk=pending.pk).update(status=GrantStatus.REJECTED)
    smaller = pending_version(old, per_case_limit=Decimal("550"), version=3)
    assert grant_change_replay(pending=smaller, now=NOW).avoided_requests.count == 0


def test_rows_outside_the_window_are_left_out_and_the_bound_is_said(alice, retention):
    # given three requests over alice's limit, one 100 days ago
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    for days_ago in (1, 2, 100):
        at = NOW - timedelta(days=days_ago)
        RequestFactory(case=CaseFactory(owner=alice, team=retention), requester=alice, amount=Decimal("800"),
                       created_at=at, expires_at=at + timedelta(days=1))
    pending = pending_version(old, per_case_limit=Decimal("1000"))
    # when replayed over 90 days / then the old one is not counted
    replay = grant_change_replay(pending=pending, now=NOW)
    assert (replay.avoided_requests.count, replay.examined, replay.truncated) == (2, 2, False)
    # and with a bound of one row, only the newest is replayed, and the replay says so
    bounded = grant_change_replay(pending=pending, now=NOW, limit=1)
    assert (bounded.avoided_requests.count, bounded.examined, bounded.truncated) == (1, 1, True)
    assert bounded.avoided_requests.examples[0].at == NOW - timedelta(days=1)
    assert "Only the newest 1 rows were replayed." in bounded.summary


def test_no_change_in_terms_changes_nothing(alice, retention):
    # given refusals, requests and decisions; a "change" with the same terms is pending
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    refuse(alice, CaseFactory(owner=alice, team=retention), "800")
    RequestFactory(case=CaseFactory(owner=alice, team=retention), requester=alice, amount=Decimal("1200"))
    decision_execute(actor=alice, case=loaded_case(CaseFactory(owner=alice, team=retention)), kind=kind("refund"),
                     amount="200", currency=EUR, rationale="within")
    replay = grant_change_replay(pending=pending_version(old, reason="same terms"))
    # then nothing differs
    assert replay.examined == 3 and not replay.differs
    assert replay.summary.startswith("Over the last 90 days this change would have allowed 0 refused refund")


def test_a_team_grant_replays_its_people_never_its_ai_agents(alice, retention):
    # given a team grant of 500 per case; alice and the team's AI agent each asked for 800
    old = GrantFactory(subject_team=retention, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    robot = ai_agent(retention, "ai-replay")
    for agent in (alice, robot.user):
        RequestFactory(case=CaseFactory(owner=agent, team=retention), requester=agent, amount=Decimal("800"))
    # when a raise to 1,000 is replayed
    replay = grant_change_replay(pending=pending_version(old, per_case_limit=Decimal("1000")))
    # then only alice's request counts: the team's grants never speak for an AI agent
    assert replay.agents == 1
    assert [row.agent for row in replay.avoided_requests.examples] == ["alice"]


def test_a_refusal_a_suspension_would_still_refuse_is_not_credited_to_the_change(alice, retention):
    # given alice was refused 800 while her team's refunds were suspended
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    GrantFactory(subject_team=retention, effect=Effect.FORBID, per_case_limit=None, period_limit=None)
    refuse(alice, CaseFactory(owner=alice, team=retention), "800")
    # when a raise to 1,000 is replayed / then the suspension still refuses it: no difference
    assert not grant_change_replay(pending=pending_version(old, per_case_limit=Decimal("1000"))).differs


def test_a_grant_in_force_or_one_off_cannot_be_replayed(alice):
    # given a grant in force
    grant = GrantFactory(subject_user=alice)
    # when replayed / then a clear error says why
    with pytest.raises(ValidationError, match="Only a pending grant change"):
        grant_change_replay(pending=grant)
    with pytest.raises(ValidationError, match="between 1 and 366"):
        grant_change_replay(pending=pending_version(grant, per_case_limit=Decimal("900")), days=0)


def test_refusal_events_stamped_in_the_window_are_read_from_the_audit_log(alice, retention):
    # given a refusal recorded now; a raise is pending
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    refusal_event(alice, CaseFactory(owner=alice, team=retention), "700")
    pending = pending_version(old, per_case_limit=Decimal("1000"))
    # when replayed 91 days later / then it is out of the window
    assert grant_change_replay(pending=pending, now=timezone.now() + timedelta(days=91)).examined == 0
    # and replayed now it counts
    assert grant_change_replay(pending=pending).allowed_refusals.count == 1


def test_a_refusal_the_replaced_version_already_allows_is_not_credited_to_the_change(alice, retention):
    # given alice was refused 300 under an earlier version (200 per case), since raised to 500 in force now
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    refusal_event(alice, CaseFactory(owner=alice, team=retention), "300")
    # when a raise to 1,000 is replayed
    replay = grant_change_replay(pending=pending_version(old, per_case_limit=Decimal("1000")))
    # then the 300 is no difference the change makes: the version it replaces already allows it
    assert replay.examined == 1 and not replay.differs


def test_a_suspension_refuses_the_decisions_it_would_have_stopped(alice, retention):
    # given alice refunded 200 and 50; a suspension of her refunds is proposed (a new grant)
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    for amount in ("200", "50"):
        decision_execute(actor=alice, case=loaded_case(CaseFactory(owner=alice, team=retention)),
                         kind=kind("refund"), amount=amount, currency=EUR, rationale="within")
    maker = UserFactory(username="mike", roles=[Role.MANAGER])
    suspension = GrantFactory(subject_user=alice, effect=Effect.FORBID, per_case_limit=None, period_limit=None,
                              status=GrantStatus.PENDING, granted_by=maker, reason="under review")
    # when replayed / then both decisions would have been refused, and it says it replaces nothing
    replay = grant_change_replay(pending=suspension)
    assert replay.replaced is None
    assert (replay.refused_decisions.count, replay.refused_decisions.totals) == (2, {EUR: Decimal("250")})
    assert replay.refused_decisions.examples[0].reason.startswith("Suspended")


def test_a_promotion_from_shadow_allows_what_the_shadow_grant_could_not(alice, retention):
    # given alice's refund grant is shadow (log only): her refund of 100 was refused
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"), shadow=True)
    refuse(alice, CaseFactory(owner=alice, team=retention), "100")
    # when its promotion to live, same terms, is replayed / then that refusal would have been allowed
    replay = grant_change_replay(pending=pending_version(old, shadow=False))
    assert replay.allowed_refusals.count == 1


def test_amounts_in_another_currency_are_converted_with_the_dated_rate(alice, retention):
    # given alice's limit is 500 EUR and she was refused 600 USD (540 EUR at 0.9)
    exchange_rate("USD", "EUR", "0.9", timezone.now().date() - timedelta(days=10))
    old = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("10000"))
    refusal_event(alice, CaseFactory(owner=alice, team=retention), "600", currency="USD")
    # when a raise to 550 EUR is replayed
    pending = pending_version(old, per_case_limit=Decimal("550"))
    replay = grant_change_replay(pending=pending)
    # then it would have allowed it (540 EUR), with the money in the currency asked
    assert (replay.allowed_refusals.count, replay.allowed_refusals.totals) == (1, {"USD": Decimal("600")})
    # and a raise to 530 EUR would not have (540 EUR is over it)
    Grant.objects.filter(pk=pending.pk).update(status=GrantStatus.REJECTED)
    assert not grant_change_replay(pending=pending_version(old, per_case_limit=Decimal("530"), version=3)).differs
