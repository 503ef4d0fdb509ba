"""decision_execute: rules 3, 4 and 5 of DESIGN.md, read as tests."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from authority import periods, usage
from authority.errors import AuthorityDenied, IdempotencyConflict
from authority.models import Decision, ExchangeRate, OutboxMessage, Period, UsageCounter
from authority.services import decision_execute
from h2h_core.errors import CaseNotOpen, NotCaseOwner
from h2h_core.models import AuditEvent, CaseEvent, CaseStatus, Role
from h2h_core.models.audit import Outcome
from h2h_core.organisation import current_organisation
from h2h_core.services import case_handover
from tests.factories import CaseFactory, GrantFactory, UserFactory, kind, set_usage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def bob(retention):
    user = UserFactory(username="bob", roles=[Role.AGENT])
    retention.members.add(user)
    return user


@pytest.fixture
def refund():
    return kind("refund")


def grant_refund(agent, *, per_case="500", per_month="1000", currency="EUR"):
    return GrantFactory(
        subject_user=agent,
        per_case_limit=Decimal(per_case) if per_case is not None else None,
        period_limit=Decimal(per_month) if per_month is not None else None,
        period=Period.MONTH if per_month is not None else Period.NONE,
        currency=currency,
    )


def period_key(agent, *, code="refund", currency="EUR"):
    start = periods.bucket_start(Period.MONTH, timezone.now(), current_organisation().tz)
    return usage.period_key(agent_id=agent.pk, kind_code=code, currency=currency, period=Period.MONTH, start=start)


def case_key(case, *, code="refund", currency="EUR"):
    return usage.case_key(case_id=case.pk, kind_code=code, currency=currency)


def used(key):
    return UsageCounter.objects.filter(key=key).values_list("used", flat=True).first() or Decimal(0)


def state():
    """Everything a decision could change, except the audit log (asserted separately)."""
    return {
        "decisions": list(Decision.objects.values_list("pk", flat=True)),
        "outbox": list(OutboxMessage.objects.values_list("pk", flat=True)),
        "counters": dict(UsageCounter.objects.values_list("key", "used")),
        "case_events": CaseEvent.objects.count(),
    }


def assert_refusal_recorded_and_nothing_changed(before, *, audit_before, actor, case):
    assert state() == before
    new_events = list(AuditEvent.objects.filter(id__gt=audit_before))
    assert [(e.action, e.outcome) for e in new_events] == [("decision.refused", Outcome.DENIED)]
    assert new_events[0].actor_id == actor.pk
    assert new_events[0].object_type == "case" and new_events[0].object_id == str(case.pk)


def last_audit_id():
    """The newest audit event's id: events written later have larger ids, sealed into the chain or not yet."""
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def execute(actor, case, amount, *, currency="EUR", rationale="double charge", key=None, code="refund"):
    return decision_execute(actor=actor, case=case, kind=kind(code), amount=amount, currency=currency,
                            rationale=rationale, idempotency_key=key)


# --- within limits -----------------------------------------------------------------------------


def test_refund_within_limits_writes_decision_outbox_counters_and_one_audit_event(alice, case_owned_by_alice,
                                                                                   refund):
    # given alice may refund 500 per case and 1,000 per month
    grant = grant_refund(alice)
    # when she refunds 200 EUR
    decision = execute(alice, case_owned_by_alice, "200.00")
    # then the decision records what was decided, by whom, under which grant
    assert decision.case_id == case_owned_by_alice.pk and decision.agent_id == alice.pk
    assert decision.amount == Decimal("200") and decision.currency == "EUR"
    assert decision.counted_amount == Decimal("200") and decision.counted_currency == "EUR"
    assert decision.grant_id == grant.pk and decision.verdict["allowed"] is True
    assert decision.rate is None and decision.request_id is None
    # and an outbox message asks billing to do it, on the kind's topic
    message = OutboxMessage.objects.get()
    assert message.decision_id == decision.pk
    assert message.topic == refund.outbox_topic == "billing.refund.issue"
    assert message.payload["amount"] == "200" and message.payload["case_reference"] == case_owned_by_alice.reference
    # (no webhook endpoint subscribes here, so it is settled at once; deliveries: test_webhook_jobs.py)
    assert message.delivered_at is not None and message.last_error == "No active endpoint subscribed."
    # and both counters rose by the amount
    assert used(case_key(case_owned_by_alice)) == Decimal("200")
    assert used(period_key(alice)) == Decimal("200")
    # and exactly one audit event says so
    event = AuditEvent.objects.get()
    assert (event.action, event.outcome) == ("decision.executed", Outcome.SUCCESS)
    assert event.object_id == str(decision.pk) and event.after["amount"] == "200"
    assert event.reason == "double charge"


def test_decisions_up_to_the_exact_cap_are_allowed(alice, case_owned_by_alice):
    # given alice may refund 500 per case
    grant_refund(alice)
    # when she refunds 300 and then exactly the 200 left
    execute(alice, case_owned_by_alice, "300")
    execute(alice, case_owned_by_alice, "200")
    # then both are executed and the case counter sits at the cap
    assert Decision.objects.count() == 2
    assert used(case_key(case_owned_by_alice)) == Decimal("500")


# --- over a cap --------------------------------------------------------------------------------


def test_refund_over_per_case_cap_is_refused_and_changes_nothing(alice, case_owned_by_alice):
    # given alice may refund 500 per case and has refunded 300 on this case
    grant_refund(alice)
    execute(alice, case_owned_by_alice, "300")
    before, audit_before = state(), last_audit_id()
    # when she refunds another 300
    with pytest.raises(AuthorityDenied) as refused:
        execute(alice, case_owned_by_alice, "300")
    # then the verdict says how much is left on the case, and only the refusal was recorded
    reasons = " ".join(refused.value.verdict.reasons)
    assert f"200.00 EUR left on case {case_owned_by_alice.reference}" in reasons
    assert refused.value.verdict.per_case_headroom == Decimal("200")
    assert_refusal_recorded_and_nothing_changed(before, audit_before=audit_before, actor=alice,
                                                case=case_owned_by_alice)


def test_refund_over_period_cap_is_refused_and_changes_nothing(alice, case_owned_by_alice, refund):
    # given alice may refund 500 per case and 1,000 per month, and has used 900 this month
    grant_refund(alice)
    set_usage(period_key(alice), "900", kind_obj=refund, agent=alice, period=Period.MONTH, currency="EUR")
    before, audit_before = state(), last_audit_id()
    # when she refunds 200
    with pytest.raises(AuthorityDenied) as refused:
        execute(alice, case_owned_by_alice, "200")
    # then the verdict says why, and nothing was spent
    assert "100.00 EUR left this month" in refused.value.verdict.reasons[0]
    assert refused.value.verdict.period_headroom == Decimal("100")
    assert used(period_key(alice)) == Decimal("900")
    assert_refusal_recorded_and_nothing_changed(before, audit_before=audit_before, actor=alice,
                                                case=case_owned_by_alice)
    # and the refusal's audit event carries the verdict
    refusal = AuditEvent.objects.get(action="decision.refused")
    assert refusal.after["verdict"]["allowed"] is False and refusal.after["amount"] == "200"


def test_refund_without_any_grant_is_refused_and_changes_nothing(alice, case_owned_by_alice):
    # given alice holds no grant at all (deny by default)
    before, audit_before = state(), last_audit_id()
    # when she refunds 10
    with pytest.raises(AuthorityDenied) as refused:
        execute(alice, case_owned_by_alice, "10")
    # then she is told no grant gives her authority
    assert "No grant gives you authority" in refused.value.verdict.reasons[0]
    assert_refusal_recorded_and_nothing_changed(before, audit_before=audit_before, actor=alice,
                                                case=case_owned_by_alice)


# --- only the owner of an open case ------------------------------------------------------------


def test_another_agent_may_not_decide_on_alices_case(alice, bob, case_owned_by_alice):
    # given bob has plenty of authority, but alice owns the case
    grant_refund(bob, per_case="5000", per_month="50000")
    before, audit_before = state(), last_audit_id()
    # when bob refunds on it
    with pytest.raises(NotCaseOwner):
        execute(bob, case_owned_by_alice, "10")
    # then he is refused, it is audited, and nothing changed
    assert_refusal_recorded_and_nothing_changed(before, audit_before=audit_before, actor=bob,
                                                case=case_owned_by_alice)


def test_a_manager_may_not_decide_on_a_case_she_does_not_own(alice, maria, case_owned_by_alice):
    # given maria manages the team and has more authority than alice
    grant_refund(maria, per_case="5000", per_month="50000")
    before, audit_before = state(), last_audit_id()
    # when she refunds on alice's case
    with pytest.raises(NotCaseOwner):
        execute(maria, case_owned_by_alice, "10")
    # then she is refused like anyone who is not the owner
    assert_refusal_recorded_and_nothing_changed(before, audit_before=audit_before, actor=maria,
                                                case=case_owned_by_alice)


def test_no_decision_on_a_resolved_case(alice, retention):
    # given alice owned a case that is now resolved
    grant_refund(alice)
    case = CaseFactory(owner=alice, team=retention, status=CaseStatus.RESOLVED)
    before, audit_before = state(), last_audit_id()
    # when she refunds on it
    with pytest.raises(CaseNotOpen):
        execute(alice, case, "10")
    # then she is refused, and the refusal is audited
    assert_refusal_recorded_and_nothing_changed(before, audit_before=audit_before, actor=alice, case=case)


# --- idempotency -------------------------------------------------------------------------------


def test_a_replayed_key_returns_the_first_decision_and_counts_once(alice, case_owned_by_alice):
    # given alice refunded 200 with key k1
    grant_refund(alice)
    first = execute(alice, case_owned_by_alice, "200", key="k1")
    # when the same request arrives again with the same key
    again = execute(alice, case_owned_by_alice, "200", key="k1")
    # then it is the same decision, counted once, audited once
    assert again.pk == first.pk
    assert Decision.objects.count() == 1 and OutboxMessage.objects.count() == 1
    assert used(case_key(case_owned_by_alice)) == Decimal("200")
    assert used(period_key(alice)) == Decimal("200")
    assert AuditEvent.objects.filter(action="decision.executed").count() == 1


def test_a_reused_key_with_a_different_payload_is_a_conflict_and_changes_nothing(alice, case_owned_by_alice):
    # given alice refunded 200 with key k1
    grant_refund(alice)
    first = execute(alice, case_owned_by_alice, "200", key="k1")
    before, audit_before = state(), last_audit_id()
    # when she sends 250 with the same key
    with pytest.raises(IdempotencyConflict) as conflict:
        execute(alice, case_owned_by_alice, "250", key="k1")
    # then the conflict names the first decision, and nothing changed
    assert conflict.value.details["decision_id"] == first.pk
    assert state() == before and last_audit_id() == audit_before


def test_idempotency_keys_are_scoped_per_user(alice, bob, retention, case_owned_by_alice):
    # given alice refunded with key k1, and bob owns a case of his own
    grant_refund(alice)
    grant_refund(bob)
    bobs_case = CaseFactory(owner=bob, team=retention)
    alices = execute(alice, case_owned_by_alice, "200", key="k1")
    # when bob uses the same key
    bobs = execute(bob, bobs_case, "150", key="k1")
    # then it is his own, new decision
    assert bobs.pk != alices.pk and bobs.agent_id == bob.pk
    assert Decision.objects.count() == 2
    assert used(period_key(bob)) == Decimal("150") and used(period_key(alice)) == Decimal("200")


# --- the per-case cap counts every decision on the case ----------------------------------------


def test_after_a_handover_the_new_owner_sees_what_the_old_one_decided(alice, bob, case_owned_by_alice):
    # given alice and bob may each refund 500 per case, and alice refunded 300 before handing over
    grant_refund(alice)
    grant_refund(bob)
    execute(alice, case_owned_by_alice, "300")
    case_handover(actor=alice, case=case_owned_by_alice, to_user=bob, note="Customer prefers phone")
    before, audit_before = state(), last_audit_id()
    # when bob refunds 300 on the case
    with pytest.raises(AuthorityDenied) as refused:
        execute(bob, case_owned_by_alice, "300")
    # then only 200 is left on the case for him: the handover did not reset it
    assert refused.value.verdict.per_case_headroom == Decimal("200")
    assert f"200.00 EUR left on case {case_owned_by_alice.reference}" in " ".join(refused.value.verdict.reasons)
    assert_refusal_recorded_and_nothing_changed(before, audit_before=audit_before, actor=bob,
                                                case=case_owned_by_alice)
    # and the 200 that is left he may decide, against his own period usage
    execute(bob, case_owned_by_alice, "200")
    assert used(case_key(case_owned_by_alice)) == Decimal("500")
    assert used(period_key(bob)) == Decimal("200") and used(period_key(alice)) == Decimal("300")


def test_the_old_owner_may_not_decide_after_a_handover(alice, bob, case_owned_by_alice):
    # given alice handed her case over to bob
    grant_refund(alice)
    case_handover(actor=alice, case=case_owned_by_alice, to_user=bob, note="Going on leave")
    before, audit_before = state(), last_audit_id()
    # when alice refunds on it
    with pytest.raises(NotCaseOwner):
        execute(alice, case_owned_by_alice, "10")
    # then she is refused
    assert_refusal_recorded_and_nothing_changed(before, audit_before=audit_before, actor=alice,
                                                case=case_owned_by_alice)


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "rationale", "field"),
    [
        ("-10", "double charge", "amount"),
        ("0", "double charge", "amount"),
        ("NaN", "double charge", "amount"),
        ("Infinity", "double charge", "amount"),
        ("10.123", "double charge", "amount"),
        ("ten", "double charge", "amount"),
        ("10", "", "rationale"),
        ("10", "   ", "rationale"),
    ],
)
def test_bad_input_is_a_validation_error_and_changes_nothing(alice, case_owned_by_alice, amount, rationale, field):
    # given alice may refund
    grant_refund(alice)
    before, audit_before = state(), last_audit_id()
    # when the input is not a valid decision
    with pytest.raises(ValidationError) as invalid:
        execute(alice, case_owned_by_alice, amount, rationale=rationale)
    # then the error names the field, and nothing at all changed (not even the audit log)
    assert field in invalid.value.message_dict
    assert state() == before and last_audit_id() == audit_before


@pytest.mark.parametrize("key", ["", "   ", "k" * 101, "line\nbreak"])
def test_a_malformed_idempotency_key_is_a_validation_error(alice, case_owned_by_alice, key):
    # given alice may refund
    grant_refund(alice)
    before, audit_before = state(), last_audit_id()
    # when her idempotency key is empty, too long or not printable
    with pytest.raises(ValidationError) as invalid:
        execute(alice, case_owned_by_alice, "10", key=key)
    # then nothing changed
    assert "idempotency_key" in invalid.value.message_dict
    assert state() == before and last_audit_id() == audit_before


def test_an_unknown_currency_is_a_validation_error(alice, case_owned_by_alice):
    # given alice may refund in EUR
    grant_refund(alice)
    before, audit_before = state(), last_audit_id()
    # when she names a currency that does not exist
    with pytest.raises(ValidationError) as invalid:
        execute(alice, case_owned_by_alice, "10", currency="EUX")
    # then nothing changed
    assert "currency" in invalid.value.message_dict
    assert state() == before and last_audit_id() == audit_before


# --- currencies --------------------------------------------------------------------------------


def test_a_usd_decision_against_a_eur_grant_records_the_rate_and_counts_the_converted_amount(
    alice, case_owned_by_alice
):
    # given alice's grant is in EUR and 1 USD was worth 0.9 EUR on 2 Jan 2024
    grant_refund(alice)
    ExchangeRate.objects.create(base="USD", quote="EUR", rate=Decimal("0.9"), valid_on=date(2024, 1, 2))
    # when she refunds 33.33 USD
    decision = execute(alice, case_owned_by_alice, "33.33", currency="USD")
    # then the decision keeps the amount asked and records the rate and the amount counted (rounded up)
    assert decision.amount == Decimal("33.33") and decision.currency == "USD"
    assert decision.rate == Decimal("0.9") and decision.rate_date == date(2024, 1, 2)
    assert decision.counted_amount == Decimal("30.00") and decision.counted_currency == "EUR"
    # and the EUR counters rose by the converted amount
    assert used(case_key(case_owned_by_alice)) == Decimal("30.00")
    assert used(period_key(alice)) == Decimal("30.00")


def test_a_converted_amount_over_the_cap_is_refused(alice, case_owned_by_alice):
    # given alice may refund 500 EUR per case and 1 USD is worth 0.9 EUR
    grant_refund(alice)
    ExchangeRate.objects.create(base="USD", quote="EUR", rate=Decimal("0.9"), valid_on=date(2024, 1, 2))
    before, audit_before = state(), last_audit_id()
    # when she refunds 600 USD (540 EUR)
    with pytest.raises(AuthorityDenied) as refused:
        execute(alice, case_owned_by_alice, "600", currency="USD")
    # then it is refused on the converted amount
    assert "this needs 540.00 EUR" in " ".join(refused.value.verdict.reasons)
    assert_refusal_recorded_and_nothing_changed(before, audit_before=audit_before, actor=alice,
                                                case=case_owned_by_alice)


def test_without_an_exchange_rate_a_foreign_currency_decision_is_refused(alice, case_owned_by_alice):
    # given alice's grant is in EUR and no GBP rate is known
    grant_refund(alice)
    before, audit_before = state(), last_audit_id()
    # when she refunds in GBP
    with pytest.raises(AuthorityDenied) as refused:
        execute(alice, case_owned_by_alice, "10", currency="GBP")
    # then the verdict says a rate is missing
    assert "No exchange rate from GBP to EUR" in refused.value.verdict.reasons[0]
    assert_refusal_recorded_and_nothing_changed(before, audit_before=audit_before, actor=alice,
                                                case=case_owned_by_alice)


# --- inside a caller's transaction ---------------------------------------------------------------


def test_a_decision_refused_inside_a_callers_transaction_aborts_all_of_it(alice, case_owned_by_alice, refund):
    # given alice may refund 500 per case
    grant_refund(alice)
    before, audit_before = state(), last_audit_id()
    # when the caller's transaction decides 400 and then 200 more (over the per-case limit)
    with pytest.raises(AuthorityDenied), transaction.atomic():
        execute(alice, case_owned_by_alice, "400")
        execute(alice, case_owned_by_alice, "200")
    # then the first decision was rolled back too, and the refusal is left to the caller to record
    assert state() == before
    assert last_audit_id() == audit_before


def test_a_refusal_names_its_approvers_looked_up_after_the_case_lock_is_released(alice, maria, case_owned_by_alice,
                                                                                 monkeypatch):
    # given alice may refund 500 per case, and maria, manager of her team, may refund 2,000
    from authority.policy import approvals
    from h2h_core.transactions import outermost

    grant_refund(alice)
    GrantFactory(subject_user=maria, kind=kind("refund"), per_case_limit=Decimal("2000"))
    looked_up_inside_a_transaction = []
    real_pool = approvals.approver_pool

    def watched_pool(**kwargs):
        looked_up_inside_a_transaction.append(not outermost())
        return real_pool(**kwargs)

    monkeypatch.setattr("authority.services.decisions.approver_pool", watched_pool)
    # when she refunds 900
    with pytest.raises(AuthorityDenied) as refused:
        execute(alice, case_owned_by_alice, "900")
    # then the refusal names maria, and her pool was looked up once, with no lock of the decision held
    assert refused.value.verdict.approvers == ["maria"] and refused.value.verdict.over_limit
    assert looked_up_inside_a_transaction == [False]
    recorded = AuditEvent.objects.filter(action="decision.refused").latest("seq")
    assert recorded.after["verdict"]["approvers"] == ["maria"]
