"""Action-bound approvals (issue 12): an approval covers exactly the case, kind, amount and currency
approved, for the owner it was given to; a handover, a claim by someone else or a reopening voids it."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from authority import policy, usage
from authority.errors import AuthorityDenied
from authority.models import AuthorityRequest, Decision, Grant, OutboxMessage, RequestStatus, UsageCounter
from authority.services import (
    authority_request_approve,
    authority_request_open,
    decision_execute,
    one_off_grants_void,
)
from h2h_core.errors import NotCaseOwner
from h2h_core.models import AuditEvent, Case, CaseEvent, CaseStatus, Role
from tests.api.helpers import client_for
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, UserFactory, kind, loaded_case, set_usage
from workflows import services as steps

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def bob(retention):
    user = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(user)
    return user


@pytest.fixture
def case(alice, maria, bob):
    """alice (500 per case) owns a case opened and claimed through the workflow; maria may approve 5,000,
    bob (500 per case) is a second agent of the team."""
    for agent in (alice, bob):
        GrantFactory(subject_user=agent, per_case_limit=Decimal("500"), period_limit=Decimal("1000"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    customer = CustomerFactory(name="Acme Corp", email="billing@acme.example")
    opened = steps.case_flow_open(actor=alice, customer=customer, subject="Charged twice", category="complaint",
                                  amount_at_stake=Decimal("1200"), currency="EUR")
    return steps.case_flow_claim(actor=alice, case=opened)


@pytest.fixture
def approval(alice, maria, case):
    """maria approved alice's request for a refund of exactly 1,200.00 EUR on the case."""
    request = authority_request_open(actor=alice, case=case, kind=kind("refund"), amount="1200", currency="EUR",
                                     justification="Charged twice, key account")
    return authority_request_approve(actor=maria, request=request, note="Fine")


def refund(actor, case, amount, currency="EUR"):
    return decision_execute(actor=actor, case=case, kind=kind("refund"), amount=amount, currency=currency,
                            rationale="double charge")


def state():
    """Everything a decision, a void or a step could change."""
    return {
        "requests": list(AuthorityRequest.objects.order_by("pk").values_list("pk", "status")),
        "grants": list(Grant.objects.order_by("pk").values_list("pk", "superseded_at", "void_reason")),
        "decisions": Decision.objects.count(),
        "outbox": OutboxMessage.objects.count(),
        "counters": dict(UsageCounter.objects.values_list("key", "used")),
        "case": list(Case.objects.order_by("pk").values_list("pk", "owner_id", "status")),
        "case_events": CaseEvent.objects.count(),
        # A refusal is itself audited (outcome denied); nothing that succeeded may appear.
        "audit": AuditEvent.objects.exclude(outcome="denied").count(),
    }


def assert_void(approval, *, reason_contains: str):
    grant = Grant.objects.get(pk=approval.one_off_grant_id)
    assert grant.superseded_at is not None and reason_contains in grant.void_reason
    assert AuthorityRequest.objects.get(pk=approval.pk).status == RequestStatus.VOIDED
    event = AuditEvent.objects.get(action="grant.voided")
    assert event.object_id == str(grant.pk) and reason_contains in event.reason
    assert event.before["request"]["status"] == "approved" and event.after["request"]["status"] == "voided"
    assert event.after["grant"]["void_reason"] == grant.void_reason
    assert CaseEvent.objects.filter(case_id=grant.case_id, text__contains="is void").count() == 1


# --- the approval covers exactly what was approved ----------------------------------------------


def test_approval_is_bound_to_the_owner_it_was_given_to(alice, approval):
    # given maria approved alice's request
    # then the one-off grant names alice as the owner it is bound to, and the audit says so
    assert approval.one_off_grant.bound_owner_id == alice.pk
    event = AuditEvent.objects.get(action="authority_request.approved")
    assert event.after["grant"]["bound_owner_id"] == alice.pk


def test_the_approved_amount_is_decided_through_the_approval(alice, case, approval):
    # given maria approved exactly 1,200.00 EUR
    # when alice refunds exactly that
    decision = refund(alice, case, "1200")
    # then it executes through the one-off grant, linked to the request, and uses it up
    assert decision.verdict["level"] == "one-off" and decision.request_id == approval.pk
    assert UsageCounter.objects.get(key=usage.one_off_key(grant_id=approval.one_off_grant_id)).used == Decimal("1200")


@pytest.mark.parametrize(
    ("amount", "currency", "reason"),
    [
        pytest.param("1300", "EUR", "covers exactly that amount; this decision is 1,300.00 EUR", id="more"),
        pytest.param("1100", "EUR", "covers exactly that amount; this decision is 1,100.00 EUR", id="less"),
        pytest.param("1200", "USD", "covers exactly that amount in EUR; this decision is in USD", id="currency"),
    ],
)
def test_another_amount_or_currency_is_refused_with_the_reason_and_changes_nothing(
    alice, case, approval, amount, currency, reason
):
    # given maria approved exactly 1,200.00 EUR
    before = state()
    # when alice refunds another amount, or the same figure in another currency
    with pytest.raises(AuthorityDenied) as refused:
        refund(alice, case, amount, currency)
    # then the refusal says first that the approval covers exactly what it approved
    first = refused.value.verdict.reasons[0]
    assert first.startswith(f"The approval of 1,200.00 EUR on {case.reference} ") and reason in first
    # and nothing changed: the approval is still there, unused, for the exact amount
    assert state() == before
    assert refund(alice, case, "1200").request_id == approval.pk


def test_an_amount_within_her_own_authority_does_not_touch_the_approval(alice, case, approval):
    # given maria approved 1,200.00 EUR and alice may refund 500 herself
    # when alice refunds 300
    decision = refund(alice, case, "300")
    # then her own grant decides it, and the approval stays whole
    assert decision.verdict["level"] == "person" and decision.request_id is None
    assert not UsageCounter.objects.filter(key=usage.one_off_key(grant_id=approval.one_off_grant_id)).exists()


def test_an_approval_covers_one_decision(alice, case, approval):
    # given alice decided the 1,200.00 EUR approved
    refund(alice, case, "1200")
    before = state()
    # when she tries it again
    with pytest.raises(AuthorityDenied) as refused:
        refund(alice, case, "1200")
    # then the approval is said to be used, and nothing changed
    assert "was already used: an approval covers one decision" in refused.value.verdict.reasons[0]
    assert state() == before


def test_an_approval_bound_to_another_owner_covers_nothing_and_says_why(alice, bob, case):
    # given a live one-off grant for alice on her case, approved while bob owned the case (never voided)
    GrantFactory(subject_user=alice, case=case, per_case_limit=Decimal("1200"), period_limit=None, period="none",
                 bound_owner=bob)
    # when alice asks about 1,200.00 EUR
    verdict = policy.evaluate(agent=alice, kind=kind("refund"), amount="1200", currency="EUR",
                              case=loaded_case(case), with_approvers=False)
    # then it is refused, and the reason names both owners
    assert verdict.allowed is False
    assert verdict.reasons[0] == "The approval was given while bob owned the case; alice owns it now: it is void."


# --- a change of owner or a reopening voids it ---------------------------------------------------


def test_a_handover_voids_the_approval_and_handing_back_does_not_revive_it(alice, bob, case, approval):
    # given maria approved 1,200.00 EUR for alice
    # when alice hands the case over to bob
    steps.case_flow_handover(actor=alice, case=case, to_user=bob, note="Customer prefers bob")
    # then the approval is void: the grant is closed with the reason, the request voided, audited
    assert_void(approval, reason_contains=f"{case.reference} was handed over to bob")
    # and alice may not decide (not the owner), nor bob through her approval
    with pytest.raises(NotCaseOwner):
        refund(alice, case, "1200")
    with pytest.raises(AuthorityDenied):
        refund(bob, case, "1200")
    # and when bob hands it back, the approval stays void
    steps.case_flow_handover(actor=bob, case=case, to_user=alice, note="Back to you")
    before = state()
    with pytest.raises(AuthorityDenied) as refused:
        refund(alice, case, "1200")
    assert "over your per-case limit" in refused.value.verdict.reasons[0]
    assert state() == before


def test_a_refused_handover_voids_nothing(alice, bob, carol, case, approval):
    # given maria approved 1,200.00 EUR for alice
    before = state()
    # when bob, who does not own the case, tries to hand it to himself... and carol (another team) is offered it
    with pytest.raises(NotCaseOwner):
        steps.case_flow_handover(actor=bob, case=case, to_user=bob, note="Mine now")
    with pytest.raises(ValidationError):
        steps.case_flow_handover(actor=alice, case=case, to_user=carol, note="Billing's problem")
    # then nothing changed: the approval is live and alice decides through it
    assert state() == before
    assert refund(alice, case, "1200").request_id == approval.pk


def test_reopening_voids_the_approval(alice, case, approval):
    # given maria approved 1,200.00 EUR for alice, and alice resolved the case without deciding it
    steps.case_flow_resolve(actor=alice, case=case, summary="Customer withdrew")
    # when the case is reopened
    case = steps.case_flow_reopen(actor=alice, case=case, reason="Customer came back")
    # then the approval is void, and alice (the owner again) cannot decide through it
    assert_void(approval, reason_contains=f"{case.reference} was reopened")
    assert Case.objects.get(pk=case.pk).owner_id == alice.pk
    with pytest.raises(AuthorityDenied):
        refund(alice, case, "1200")
    assert Decision.objects.count() == 0


def test_a_claim_by_another_agent_voids_the_approval(alice, bob, retention):
    # given a case back in the team queue with a live approval bound to alice (its last owner)
    case = CaseFactory(owner=None, status=CaseStatus.QUEUED, team=retention)
    grant = GrantFactory(subject_user=alice, case=case, per_case_limit=Decimal("1200"), period_limit=None,
                         period="none", bound_owner=alice)
    # when bob claims it
    steps.case_flow_claim(actor=bob, case=case)
    # then the approval is closed, saying who claimed it, and audited
    grant.refresh_from_db()
    assert grant.superseded_at is not None and grant.void_reason == f"{case.reference} was claimed by bob"
    assert AuditEvent.objects.filter(action="grant.voided", object_id=str(grant.pk)).count() == 1


# --- the void service itself ----------------------------------------------------------------------


def test_void_keeps_what_was_decided_and_leaves_used_up_grants_alone(alice, maria, case):
    # given two one-off grants on the case: one partly used (from before approvals were exact), one used up
    partly = GrantFactory(subject_user=alice, case=case, per_case_limit=Decimal("1200"), period_limit=None,
                          period="none", bound_owner=alice)
    used_up = GrantFactory(subject_user=alice, case=case, per_case_limit=Decimal("800"), period_limit=None,
                           period="none", bound_owner=alice)
    set_usage(usage.one_off_key(grant_id=partly.pk), "700", kind_obj=kind("refund"), scope="one_off", grant=partly)
    set_usage(usage.one_off_key(grant_id=used_up.pk), "800", kind_obj=kind("refund"), scope="one_off", grant=used_up)
    # when the approvals of the case are voided
    voided = one_off_grants_void(actor=maria, case=case, reason="Case changed")
    # then only the partly used grant is closed; what it allowed stays counted
    assert voided == 1
    partly.refresh_from_db()
    used_up.refresh_from_db()
    assert partly.superseded_at is not None and partly.void_reason == "Case changed"
    assert used_up.superseded_at is None and used_up.void_reason == ""
    assert UsageCounter.objects.get(key=usage.one_off_key(grant_id=partly.pk)).used == Decimal("700")
    assert CaseEvent.objects.filter(case=case, text__contains="700.00 EUR already decided stays decided").exists()


def test_void_without_approvals_changes_nothing(maria, case):
    # given a case without approvals
    before = state()
    # when its approvals are voided
    # then there was nothing to void, and nothing changed
    assert one_off_grants_void(actor=maria, case=case, reason="Case changed") == 0
    assert state() == before


def test_void_needs_a_reason_and_changes_nothing(maria, case, approval):
    # given a live approval
    before = state()
    # when it is voided without a reason
    with pytest.raises(ValidationError):
        one_off_grants_void(actor=maria, case=case, reason="  ")
    # then nothing changed
    assert state() == before


# --- what the approver and the agent see ------------------------------------------------------------


def test_the_approver_sees_exactly_what_they_approve(client, alice, maria, case):
    # given alice asked for 1,200.00 EUR on her case
    authority_request_open(actor=alice, case=case, kind=kind("refund"), amount="1200", currency="EUR",
                           justification="Charged twice, key account")
    # when maria opens her approvals
    client.force_login(maria)
    page = " ".join(client.get(reverse("authority:approvals")).content.decode().split())
    # then she sees the kind, amount, currency, case, its state and its owner, and what binds the approval
    assert (f"Refund of <strong>1,200.00 EUR</strong> (in EUR) on {case.reference} “{case.subject}”, owned, "
            "owned by alice") in page
    assert ("This approval is bound to this case, amount and owner; it becomes void if the case is handed over "
            "or reopened.") in page
    assert "the requester no longer owns the case" not in page


def test_the_approver_is_warned_when_the_requester_no_longer_owns_the_case(client, alice, bob, maria, case):
    # given alice asked for 1,200.00 EUR, then handed the case to bob
    authority_request_open(actor=alice, case=case, kind=kind("refund"), amount="1200", currency="EUR",
                           justification="Charged twice, key account")
    steps.case_flow_handover(actor=alice, case=case, to_user=bob, note="Over to bob")
    # when maria opens her approvals, she is told
    client.force_login(maria)
    page = " ".join(client.get(reverse("authority:approvals")).content.decode().split())
    assert "owned by bob" in page and "the requester no longer owns the case: the approval would be void" in page


def test_the_case_page_shows_a_voided_approval_with_its_reason_and_no_execute_now(client, alice, bob, case,
                                                                                  approval):
    # given alice had an approval, shown as "execute now" on her case page
    client.force_login(alice)
    assert "Approved — execute now" in client.get(reverse("cases:detail", args=[case.pk])).content.decode()
    # when the case goes to bob and back
    steps.case_flow_handover(actor=alice, case=case, to_user=bob, note="Over to bob")
    steps.case_flow_handover(actor=bob, case=case, to_user=alice, note="Back to you")
    # then the page shows the approval as void, with why, and no longer offers to execute it
    page = client.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "Approved — execute now" not in page
    assert f"void: {case.reference} was handed over to bob" in page


def test_the_api_shows_a_voided_request_and_its_reason(alice, bob, case, approval):
    steps.case_flow_handover(actor=alice, case=case, to_user=bob, note="Over to bob")
    body = client_for(alice).get(f"/api/v1/authority-requests/{approval.pk}/").json()
    assert body["status"] == "voided" and body["void_reason"] == f"{case.reference} was handed over to bob"


def test_the_api_shows_no_void_reason_on_a_live_approval(alice, approval):
    body = client_for(alice).get(f"/api/v1/authority-requests/{approval.pk}/").json()
    assert body["status"] == "approved" and body["void_reason"] == ""
