"""One-hop authority requests: rule 3a of DESIGN.md and the approval life cycle, read as tests."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import timezone
from guardian.shortcuts import assign_perm

from authority import periods, policy, usage
from authority.errors import AlreadyDecided, AuthorityDenied, NotAllowed
from authority.models import (
    AuthorityRequest,
    Decision,
    Effect,
    Grant,
    OutboxMessage,
    Period,
    RequestStatus,
    UsageCounter,
)
from authority.services import (
    authority_request_approve,
    authority_request_open,
    authority_request_reject,
    authority_requests_expire,
    decision_execute,
)
from h2h_core.errors import NotCaseOwner
from h2h_core.models import AuditEvent, Case, CaseEvent, Role
from h2h_core.models.audit import Outcome
from h2h_core.organisation import current_organisation
from tests.factories import CaseFactory, GrantFactory, UserFactory, kind, set_usage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- the cast ----------------------------------------------------------------------------------


@pytest.fixture
def bob(retention):
    user = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(user)
    return user


def team_manager(username, team):
    user = UserFactory(username=username, roles=[Role.MANAGER])
    assign_perm("h2h_core.manage_team", user, team)
    return user


@pytest.fixture
def mona(retention):
    """A second manager of Retention."""
    return team_manager("mona", retention)


@pytest.fixture
def fiona(db):
    """A fallback approver outside the team."""
    user = UserFactory(username="fiona", roles=[Role.MANAGER])
    user.groups.add(Group.objects.get_or_create(name=settings.H2H_FALLBACK_APPROVER_GROUP)[0])
    return user


def grant_refund(agent, *, per_case="500", per_month="1000", currency="EUR", **fields):
    return GrantFactory(
        subject_user=agent,
        per_case_limit=Decimal(per_case) if per_case is not None else None,
        period_limit=Decimal(per_month) if per_month is not None else None,
        period=Period.MONTH if per_month is not None else Period.NONE,
        currency=currency,
        **fields,
    )


@pytest.fixture
def alice_may_refund_500(alice):
    return grant_refund(alice)


@pytest.fixture
def maria_may_refund_5000(maria):
    return grant_refund(maria, per_case="5000", per_month="20000")


# --- helpers -----------------------------------------------------------------------------------


def period_key(agent, *, currency="EUR"):
    start = periods.bucket_start(Period.MONTH, timezone.now(), current_organisation().tz)
    return usage.period_key(agent_id=agent.pk, kind_code="refund", currency=currency, period=Period.MONTH,
                            start=start)


def case_key(case):
    return usage.case_key(case_id=case.pk, kind_code="refund", currency="EUR")


def used(key):
    return UsageCounter.objects.filter(key=key).values_list("used", flat=True).first() or Decimal(0)


def state():
    """Everything a request, an approval or a decision could change."""
    return {
        "requests": list(AuthorityRequest.objects.order_by("pk").values_list(
            "pk", "status", "decided_by_id", "decided_at", "decision_note", "one_off_grant_id")),
        "grants": list(Grant.objects.order_by("pk").values_list("pk", flat=True)),
        "decisions": list(Decision.objects.values_list("pk", flat=True)),
        "outbox": list(OutboxMessage.objects.values_list("pk", flat=True)),
        "counters": dict(UsageCounter.objects.values_list("key", "used")),
        "case_events": CaseEvent.objects.count(),
        # A refusal is itself audited (outcome denied); nothing that succeeded may appear.
        "audit": AuditEvent.objects.exclude(outcome="denied").count(),
    }


def last_audit_id():
    """The newest audit event's id: events written later have larger ids, sealed into the chain or not yet."""
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def open_request(actor, case, amount="1200", justification="Key account, double charge twice"):
    return authority_request_open(actor=actor, case=case, kind=kind("refund"), amount=amount, currency="EUR",
                                  justification=justification)


def execute(actor, case, amount, rationale="goodwill"):
    return decision_execute(actor=actor, case=case, kind=kind("refund"), amount=amount, currency="EUR",
                            rationale=rationale)


# --- opening: who gets the request -------------------------------------------------------------


def test_a_request_goes_to_the_team_managers_whose_authority_covers_it(
    alice, maria, mona, case_owned_by_alice, alice_may_refund_500, maria_may_refund_5000
):
    # given maria may refund 5,000 per case but mona only 1,000
    grant_refund(mona, per_case="1000", per_month="20000")
    # when alice asks for 1,200
    request = open_request(alice, case_owned_by_alice)
    # then only maria is in the pool, and it is the team's pool, not the fallback
    assert request.pool == [maria.pk]
    assert request.pool_is_fallback is False
    assert request.status == RequestStatus.OPEN and request.requester_id == alice.pk
    assert request.amount == Decimal("1200") and request.currency == "EUR"
    assert request.verdict["allowed"] is False
    # and the request is audited and on the case's timeline
    event = AuditEvent.objects.get()
    assert event.action == "authority_request.opened" and event.after["pool"] == [maria.pk]
    assert CaseEvent.objects.filter(case=case_owned_by_alice, kind=CaseEvent.Kind.REQUEST).count() == 1


def test_when_no_manager_covers_it_the_fallback_group_gets_it_directly(
    alice, maria, fiona, case_owned_by_alice, alice_may_refund_500
):
    # given maria may refund only 1,000 per case, fiona (a fallback approver) 10,000
    grant_refund(maria, per_case="1000", per_month="20000")
    grant_refund(fiona, per_case="10000", per_month="50000")
    # when alice asks for 1,200
    request = open_request(alice, case_owned_by_alice)
    # then it goes straight to the fallback pool: one hop, not maria and then fiona
    assert request.pool == [fiona.pk]
    assert request.pool_is_fallback is True
    # and fiona may approve it
    authority_request_approve(actor=fiona, request=request)
    assert AuthorityRequest.objects.get().status == RequestStatus.APPROVED


def test_when_nobody_at_all_covers_it_opening_is_refused_and_changes_nothing(
    alice, maria, case_owned_by_alice, alice_may_refund_500
):
    # given neither maria nor any fallback approver may refund 1,200
    grant_refund(maria, per_case="1000", per_month="20000")
    before = state()
    # when alice asks for 1,200
    with pytest.raises(NotAllowed) as refused:
        open_request(alice, case_owned_by_alice)
    # then she is told to ask an administrator, and no request exists
    assert "fallback approver" in refused.value.message
    assert state() == before


def test_opening_is_refused_when_the_amount_is_within_authority(
    alice, maria, case_owned_by_alice, alice_may_refund_500, maria_may_refund_5000
):
    # given alice may refund 500
    before = state()
    # when she asks for 200
    with pytest.raises(ValidationError) as refused:
        open_request(alice, case_owned_by_alice, amount="200")
    # then she is told to decide it herself, and nothing changed
    assert "decide it directly" in refused.value.message_dict["amount"][0]
    assert state() == before


def test_opening_is_refused_while_suspended(alice, maria, case_owned_by_alice, alice_may_refund_500,
                                            maria_may_refund_5000):
    # given alice is suspended from refunds
    GrantFactory(subject_user=alice, effect=Effect.FORBID, per_case_limit=None, period_limit=None,
                 period=Period.NONE, reason="under review")
    before = state()
    # when she asks for 1,200
    with pytest.raises(AuthorityDenied) as refused:
        open_request(alice, case_owned_by_alice)
    # then the suspension is the reason, and nothing changed
    assert refused.value.verdict.suspended is True
    assert "Suspended" in refused.value.verdict.reasons[0]
    assert state() == before


def test_only_the_owner_may_open_a_request(alice, bob, maria, case_owned_by_alice, maria_may_refund_5000):
    # given bob may refund 500, but alice owns the case
    grant_refund(bob)
    before = state()
    # when bob asks for 1,200 on alice's case
    with pytest.raises(NotCaseOwner):
        open_request(bob, case_owned_by_alice)
    # then nothing changed
    assert state() == before


# --- approving ---------------------------------------------------------------------------------


def test_approval_creates_a_one_off_grant_bound_to_case_kind_and_amount(
    alice, maria, case_owned_by_alice, alice_may_refund_500, maria_may_refund_5000, settings
):
    # given one-off grants last 5 hours, and alice asked for 1,200
    settings.H2H_ONE_OFF_GRANT_HOURS = 5
    request = open_request(alice, case_owned_by_alice)
    # when maria approves
    approved = authority_request_approve(actor=maria, request=request, note="Key account")
    # then the request is approved by her
    assert approved.status == RequestStatus.APPROVED
    assert approved.decided_by_id == maria.pk and approved.decided_at is not None
    assert approved.decision_note == "Key account"
    # and a one-off grant for alice covers exactly that case, kind and amount, for 5 hours
    grant = approved.one_off_grant
    assert grant.subject_user_id == alice.pk and grant.case_id == case_owned_by_alice.pk
    assert grant.kind.code == "refund" and grant.effect == Effect.PERMIT
    assert grant.per_case_limit == Decimal("1200") and grant.currency == "EUR" and grant.period == Period.NONE
    assert grant.valid_until - grant.valid_from == timedelta(hours=5)
    assert grant.granted_by_id == maria.pk and grant.lineage == grant.pk
    # and the approval is audited with before and after
    event = AuditEvent.objects.get(action="authority_request.approved")
    assert event.actor_id == maria.pk
    assert event.before["status"] == "open" and event.after["status"] == "approved"
    assert event.after["grant"]["id"] == grant.pk


def test_the_approved_amount_counts_against_the_approvers_period_usage_not_the_agents(
    alice, maria, case_owned_by_alice, alice_may_refund_500, maria_may_refund_5000
):
    # given alice has refunded 300 of her own this month, and asked for 1,200 more
    execute(alice, case_owned_by_alice, "300")
    request = open_request(alice, case_owned_by_alice)
    # when maria approves
    authority_request_approve(actor=maria, request=request)
    # then it is maria's authority being exercised: her month counter rose, alice's did not
    assert used(period_key(maria)) == Decimal("1200")
    assert used(period_key(alice)) == Decimal("300")
    # and the case counter waits for the decision itself
    assert used(case_key(case_owned_by_alice)) == Decimal("300")


def test_the_owner_then_executes_with_the_one_off_grant_and_her_own_period_usage_does_not_grow(
    alice, maria, case_owned_by_alice, alice_may_refund_500, maria_may_refund_5000
):
    # given alice refunded 300, asked for 1,200 more, and maria approved
    execute(alice, case_owned_by_alice, "300")
    request = authority_request_approve(actor=maria, request=open_request(alice, case_owned_by_alice))
    # when alice executes the 1,200
    decision = execute(alice, case_owned_by_alice, "1200")
    # then the decision is tied to the request and the one-off grant
    assert decision.request_id == request.pk and decision.grant_id == request.one_off_grant_id
    assert decision.verdict["level"] == "one-off"
    # and her own month usage did not grow; the case and the one-off grant counted it
    assert used(period_key(alice)) == Decimal("300")
    assert used(period_key(maria)) == Decimal("1200")
    assert used(case_key(case_owned_by_alice)) == Decimal("1500")
    assert used(usage.one_off_key(grant_id=request.one_off_grant_id)) == Decimal("1200")
    assert OutboxMessage.objects.filter(decision=decision).exists()


def test_the_one_off_grant_covers_its_amount_once(alice, maria, case_owned_by_alice, alice_may_refund_500,
                                                  maria_may_refund_5000):
    # given alice executed the 1,200 maria approved (and has used up her own 500 on the case)
    authority_request_approve(actor=maria, request=open_request(alice, case_owned_by_alice))
    execute(alice, case_owned_by_alice, "1200")
    before, audit_before = state(), last_audit_id()
    # when she refunds 1,200 again
    with pytest.raises(AuthorityDenied):
        execute(alice, case_owned_by_alice, "1200")
    # then it is refused, audited, and nothing changed
    assert {k: v for k, v in state().items() if k != "audit"} == {k: v for k, v in before.items() if k != "audit"}
    assert list(AuditEvent.objects.filter(id__gt=audit_before).values_list("action", "outcome")) == [
        ("decision.refused", Outcome.DENIED)
    ]


def test_the_one_off_grant_does_not_help_on_another_case(alice, maria, retention, case_owned_by_alice,
                                                         alice_may_refund_500, maria_may_refund_5000):
    # given maria approved 1,200 for alice on one case, and alice owns another
    authority_request_approve(actor=maria, request=open_request(alice, case_owned_by_alice))
    other_case = CaseFactory(owner=alice, team=retention)
    before, audit_before = state(), last_audit_id()
    # when alice refunds 1,200 on the other case
    with pytest.raises(AuthorityDenied) as refused:
        execute(alice, other_case, "1200")
    # then her own limit applies there, and nothing changed but the audited refusal
    assert refused.value.verdict.level == "person"
    assert {k: v for k, v in state().items() if k != "audit"} == {k: v for k, v in before.items() if k != "audit"}
    refusal = AuditEvent.objects.get(id__gt=audit_before)
    assert (refusal.action, refusal.outcome, refusal.object_id) == ("decision.refused", Outcome.DENIED,
                                                                    str(other_case.pk))


def test_approving_never_creates_a_second_hop(alice, maria, case_owned_by_alice, alice_may_refund_500,
                                              maria_may_refund_5000):
    # given alice asked for 1,200
    request = open_request(alice, case_owned_by_alice)
    # when maria approves
    authority_request_approve(actor=maria, request=request)
    # then there is still exactly one request: the approval did not climb anywhere
    assert list(AuthorityRequest.objects.values_list("pk", flat=True)) == [request.pk]
    assert AuthorityRequest.objects.filter(requester=maria).count() == 0


def test_the_requester_cannot_approve_their_own_request(alice, maria, case_owned_by_alice, alice_may_refund_500,
                                                        maria_may_refund_5000):
    # given alice asked for 1,200
    request = open_request(alice, case_owned_by_alice)
    before = state()
    # when she approves it herself
    with pytest.raises(NotAllowed) as refused:
        authority_request_approve(actor=alice, request=request)
    # then she is refused, and nothing changed
    assert "own request" in refused.value.message
    assert state() == before


def test_someone_outside_the_pool_cannot_approve(alice, maria, mona, case_owned_by_alice, alice_may_refund_500,
                                                 maria_may_refund_5000):
    # given alice's request went to maria only (mona manages the team but may refund only 1,000)
    grant_refund(mona, per_case="1000", per_month="20000")
    request = open_request(alice, case_owned_by_alice)
    before = state()
    # when mona approves
    with pytest.raises(NotAllowed) as refused:
        authority_request_approve(actor=mona, request=request)
    # then she is refused, and nothing changed
    assert "not in the approver pool" in refused.value.message
    assert state() == before


def test_an_approver_whose_own_authority_no_longer_covers_the_amount_cannot_approve(
    alice, maria, case_owned_by_alice, alice_may_refund_500, maria_may_refund_5000
):
    # given maria was in the pool, but has since used 19,500 of her 20,000 this month
    request = open_request(alice, case_owned_by_alice)
    set_usage(period_key(maria), "19500", kind_obj=kind("refund"), agent=maria, period=Period.MONTH,
              currency="EUR")
    before = state()
    # when she approves 1,200
    with pytest.raises(AuthorityDenied) as refused:
        authority_request_approve(actor=maria, request=request)
    # then she cannot approve beyond her own authority, and nothing changed (no second hop either)
    assert "500.00 EUR left this month" in " ".join(refused.value.verdict.reasons)
    assert state() == before
    assert AuthorityRequest.objects.get().status == RequestStatus.OPEN


def test_a_suspended_approver_cannot_approve(alice, maria, mona, case_owned_by_alice, alice_may_refund_500,
                                             maria_may_refund_5000):
    # given maria was in the pool, and mona has since suspended her refund authority
    request = open_request(alice, case_owned_by_alice)
    GrantFactory(subject_user=maria, effect=Effect.FORBID, per_case_limit=None, period_limit=None,
                 period=Period.NONE, granted_by=mona, reason="under review")
    before = state()
    # when maria approves
    with pytest.raises(AuthorityDenied) as refused:
        authority_request_approve(actor=maria, request=request)
    # then she is refused, and nothing changed
    assert refused.value.verdict.suspended is True
    assert state() == before


def test_a_request_is_decided_only_once(alice, maria, mona, case_owned_by_alice, alice_may_refund_500,
                                        maria_may_refund_5000):
    # given maria and mona may both approve 1,200, and maria already approved
    grant_refund(mona, per_case="5000", per_month="20000")
    request = open_request(alice, case_owned_by_alice)
    assert set(request.pool) == {maria.pk, mona.pk}
    authority_request_approve(actor=maria, request=request)
    before = state()
    # when mona approves as well, or rejects, or maria approves again
    for attempt in (
        lambda: authority_request_approve(actor=mona, request=request),
        lambda: authority_request_reject(actor=mona, request=request, note="too much"),
        lambda: authority_request_approve(actor=maria, request=request),
    ):
        with pytest.raises(AlreadyDecided) as refused:
            attempt()
        # then each is told who decided it, and nothing changed: one grant, usage counted once
        assert "already approved by maria" in refused.value.message
    assert state() == before
    assert used(period_key(maria)) == Decimal("1200") and used(period_key(mona)) == Decimal(0)


# --- rejecting ---------------------------------------------------------------------------------


def test_rejecting_needs_a_note(alice, maria, case_owned_by_alice, alice_may_refund_500, maria_may_refund_5000):
    # given alice asked for 1,200
    request = open_request(alice, case_owned_by_alice)
    before = state()
    # when maria rejects without a reason
    for note in ("", "   "):
        with pytest.raises(ValidationError) as invalid:
            authority_request_reject(actor=maria, request=request, note=note)
        assert "note" in invalid.value.message_dict
    # then the request is still open and nothing changed
    assert state() == before


def test_rejecting_records_the_reason_and_grants_nothing(alice, maria, case_owned_by_alice, alice_may_refund_500,
                                                         maria_may_refund_5000):
    # given alice asked for 1,200
    request = open_request(alice, case_owned_by_alice)
    grants_before = Grant.objects.count()
    # when maria rejects it with a reason
    rejected = authority_request_reject(actor=maria, request=request, note="Policy says 1,000 at most")
    # then the request is rejected with her note, no grant exists and no usage counted
    assert rejected.status == RequestStatus.REJECTED and rejected.decided_by_id == maria.pk
    assert rejected.decision_note == "Policy says 1,000 at most" and rejected.one_off_grant_id is None
    assert Grant.objects.count() == grants_before
    assert used(period_key(maria)) == Decimal(0)
    event = AuditEvent.objects.get(action="authority_request.rejected")
    assert event.before["status"] == "open" and event.after["status"] == "rejected"
    assert event.reason == "Policy says 1,000 at most"
    # and alice still cannot refund 1,200
    with pytest.raises(AuthorityDenied):
        execute(alice, case_owned_by_alice, "1200")


# --- expiry ------------------------------------------------------------------------------------


def test_open_requests_expire_and_the_expiry_is_audited(alice, maria, case_owned_by_alice, alice_may_refund_500,
                                                        maria_may_refund_5000):
    # given alice asked for 1,200
    request = open_request(alice, case_owned_by_alice)
    # when the timers run before the request is due, nothing expires
    assert authority_requests_expire(now=request.expires_at - timedelta(seconds=1)) == 0
    assert AuthorityRequest.objects.get().status == RequestStatus.OPEN
    # when they run at its expiry
    assert authority_requests_expire(now=request.expires_at) == 1
    # then it is expired and the expiry is audited with before and after
    request.refresh_from_db()
    assert request.status == RequestStatus.EXPIRED and request.decided_at == request.expires_at
    event = AuditEvent.objects.get(action="authority_request.expired")
    assert event.actor_id is None and event.object_id == str(request.pk)
    assert event.before["status"] == "open" and event.after["status"] == "expired"
    # and running again expires nothing more
    assert authority_requests_expire(now=request.expires_at + timedelta(hours=1)) == 0


def test_an_expired_request_cannot_be_approved(alice, maria, case_owned_by_alice, alice_may_refund_500,
                                               maria_may_refund_5000):
    # given alice's request expired
    request = open_request(alice, case_owned_by_alice)
    authority_requests_expire(now=request.expires_at)
    before = state()
    # when maria approves it
    with pytest.raises(AlreadyDecided):
        authority_request_approve(actor=maria, request=request)
    # then nothing changed
    assert state() == before


def test_a_request_past_its_expiry_cannot_be_approved_even_before_the_timers_run(
    alice, maria, case_owned_by_alice, alice_may_refund_500, maria_may_refund_5000
):
    # given alice's request is past its expiry, but still marked open
    request = open_request(alice, case_owned_by_alice)
    AuthorityRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    before = state()
    # when maria approves it
    with pytest.raises(AlreadyDecided) as refused:
        authority_request_approve(actor=maria, request=request)
    # then she is told it expired, and nothing changed
    assert "expired" in refused.value.message
    assert state() == before


def test_after_expiry_the_agent_may_ask_again(alice, maria, case_owned_by_alice, alice_may_refund_500,
                                              maria_may_refund_5000):
    # given alice's first request expired
    first = open_request(alice, case_owned_by_alice)
    authority_requests_expire(now=first.expires_at)
    # when she asks again
    second = open_request(alice, case_owned_by_alice)
    # then a new request is open
    assert second.pk != first.pk and second.status == RequestStatus.OPEN


def test_a_second_open_request_for_the_same_kind_on_the_case_is_refused(
    alice, maria, case_owned_by_alice, alice_may_refund_500, maria_may_refund_5000
):
    # given alice has an open request
    open_request(alice, case_owned_by_alice)
    before = state()
    # when she asks again
    with pytest.raises(AlreadyDecided):
        open_request(alice, case_owned_by_alice, amount="1300")
    # then nothing changed
    assert state() == before


def test_the_one_off_grant_is_not_in_force_after_it_expires(alice, maria, case_owned_by_alice,
                                                            alice_may_refund_500, maria_may_refund_5000):
    # given maria approved 1,200 for alice
    request = authority_request_approve(actor=maria, request=open_request(alice, case_owned_by_alice))
    grant = request.one_off_grant
    case = Case.objects.select_related("customer").get(pk=case_owned_by_alice.pk)
    # when alice asks after the one-off grant expired
    verdict = policy.evaluate(agent=alice, kind=kind("refund"), amount="1200", currency="EUR", case=case,
                              at=grant.valid_until)
    # then it no longer covers her
    assert verdict.allowed is False and verdict.via_one_off is None


def test_a_refused_approval_is_itself_audited(alice, maria, case_owned_by_alice, alice_may_refund_500,
                                             maria_may_refund_5000):
    # given alice's open request
    request = open_request(alice, case_owned_by_alice)
    # when alice tries to approve it herself
    with pytest.raises(NotAllowed):
        authority_request_approve(actor=alice, request=request, note="me")
    # then the denial is on the record
    event = AuditEvent.objects.get(outcome="denied")
    assert (event.action, event.object_id) == ("authority_request.approve.refused", str(request.pk))
