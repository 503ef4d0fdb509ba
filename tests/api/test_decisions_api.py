"""Decisions through the API: the dry run, execution within authority, refusals with reasons, reading back."""

from decimal import Decimal

import pytest
from rest_framework.renderers import JSONRenderer

from authority.models import Decision
from edges.api.serializers.decisions import DecisionOut
from h2h_core.audit import audit_seal
from h2h_core.models import AuditEvent
from h2h_core.models.audit import Outcome
from tests.factories import CaseFactory

from .helpers import assert_error_shape, audit_actions, state

pytestmark = pytest.mark.django_db


def refund(on_case, amount="200.00", **overrides):
    return {"case": on_case.pk, "kind": "refund", "amount": amount, "currency": "EUR",
            "rationale": "Double charge in March", **overrides}


def test_the_dry_run_says_what_is_allowed_and_what_is_left_and_changes_nothing(as_alice, case_owned_by_alice,
                                                                               alice_may_refund_500):
    before, events = state(), AuditEvent.objects.exclude(outcome="denied").count()
    response = as_alice.post("/api/v1/authority-check/", refund(case_owned_by_alice, "200"), format="json")
    assert response.status_code == 200, response.json()
    verdict = response.json()
    assert verdict["allowed"] is True
    assert verdict["per_case_headroom"] == "500" and verdict["period_headroom"] == "1000"
    assert verdict["deciding_grants"][0]["id"] == alice_may_refund_500.pk
    assert state() == before and AuditEvent.objects.exclude(outcome="denied").count() == events


def test_the_dry_run_over_the_limit_explains_why(as_alice, case_owned_by_alice, alice_may_refund_500):
    verdict = as_alice.post("/api/v1/authority-check/", refund(case_owned_by_alice, "1200"), format="json").json()
    assert verdict["allowed"] is False
    assert any("per-case limit" in reason for reason in verdict["reasons"])


def test_the_dry_run_on_a_case_the_caller_may_not_see_is_404(as_alice, billing_case, alice_may_refund_500):
    assert_error_shape(as_alice.post("/api/v1/authority-check/", refund(billing_case), format="json"), 404)


def test_a_decision_within_authority_is_executed_and_recorded(as_alice, alice, case_owned_by_alice,
                                                              alice_may_refund_500):
    # when alice refunds 200 EUR on her case
    response = as_alice.post("/api/v1/decisions/", refund(case_owned_by_alice), format="json")
    # then it is executed, tied to the grant version that allowed it, and audited
    assert response.status_code == 201, response.json()
    body = response.json()
    decision = Decision.objects.get(pk=body["id"])
    assert response["Location"].endswith(f"/api/v1/decisions/{decision.pk}/")
    assert (body["amount"], body["currency"], body["agent"], body["kind"]) == ("200.00", "EUR", "alice", "refund")
    assert body["grant"] == alice_may_refund_500.pk and body["verdict"]["allowed"] is True
    assert decision.amount == Decimal("200") and decision.agent == alice
    assert audit_actions()[-1] == "decision.executed"


def test_the_decision_s_answer_is_what_a_fresh_decisionout_writes_of_the_stored_row(
        as_alice, case_owned_by_alice, alice_may_refund_500):
    # given two decisions answered through the serializer kept per process
    answers = [as_alice.post("/api/v1/decisions/", refund(case_owned_by_alice, amount), format="json")
               for amount in ("200", "12.5")]
    for answer in answers:
        # when the stored row is written by a new DecisionOut
        decision = Decision.objects.select_related("case", "kind", "agent", "reversed_by").get(pk=answer.json()["id"])
        want = JSONRenderer().render(DecisionOut(decision).data)
        # then the answer is the same JSON, byte for byte
        assert answer.status_code == 201 and answer.content == want


def test_a_refused_decision_is_403_with_reasons_and_headroom_and_spends_nothing(as_alice, case_owned_by_alice,
                                                                              alice_may_refund_500, maria,
                                                                              maria_may_refund_5000):
    # given alice may refund 500 per case, and maria may approve up to 5,000
    before = state()
    # when she refunds 1,200
    response = as_alice.post("/api/v1/decisions/", refund(case_owned_by_alice, "1200.00"), format="json")
    # then she is refused with the verdict's reasons and headroom, and who could grant more
    body = assert_error_shape(response, 403, "authority_denied")
    details = body["details"]
    assert any("per-case limit" in reason for reason in details["reasons"])
    assert details["per_case_headroom"] == "500" and details["period_headroom"] == "1000"
    assert details["over_limit"] is True and details["approvers"] == ["maria"]
    assert details["verdict"]["allowed"] is False
    # and nothing was spent, but the refusal is on the record
    assert state() == before
    refusal = AuditEvent.objects.get(action="decision.refused")
    assert refusal.outcome == Outcome.DENIED and refusal.actor_username == "alice"


def test_a_decision_on_a_case_someone_else_owns_is_refused_and_changes_nothing(as_bob, case_owned_by_alice,
                                                                             bob):
    before = state()
    response = as_bob.post("/api/v1/decisions/", refund(case_owned_by_alice), format="json")
    assert_error_shape(response, 403, "not_case_owner")
    assert state() == before


def test_a_decision_on_a_case_the_caller_may_not_see_is_404_and_changes_nothing(as_alice, billing_case,
                                                                              alice_may_refund_500):
    before, events = state(), AuditEvent.objects.exclude(outcome="denied").count()
    assert_error_shape(as_alice.post("/api/v1/decisions/", refund(billing_case), format="json"), 404, "not_found")
    assert state() == before and AuditEvent.objects.exclude(outcome="denied").count() == events


@pytest.mark.parametrize(("field", "value"), [
    ("amount", "0"), ("amount", "-5"), ("amount", "12.345"), ("amount", "abc"), ("amount", "NaN"),
    ("currency", "EURO"), ("kind", "teleport"), ("rationale", "   "), ("case", 0), ("case", "H2H-1"),
])
def test_bad_decision_input_is_400_naming_the_field_and_changes_nothing(as_alice, case_owned_by_alice,
                                                                       alice_may_refund_500, field, value):
    before = state()
    response = as_alice.post("/api/v1/decisions/", refund(case_owned_by_alice, **{field: value}), format="json")
    body = assert_error_shape(response, 400, "invalid")
    assert field in body["details"], body
    assert state() == before


def test_money_without_a_currency_is_400(as_alice, case_owned_by_alice, alice_may_refund_500):
    response = as_alice.post("/api/v1/decisions/", refund(case_owned_by_alice, currency=""), format="json")
    assert "currency" in assert_error_shape(response, 400, "invalid")["details"]


def test_decisions_are_listed_only_on_cases_the_caller_may_see(as_alice, as_audrey, alice, case_owned_by_alice,
                                                               alice_may_refund_500, billing_case):
    # given a decision on alice's case and one on a Billing case
    mine = as_alice.post("/api/v1/decisions/", refund(case_owned_by_alice), format="json").json()
    other = Decision.objects.create(
        case=billing_case, agent=billing_case.owner, kind=alice_may_refund_500.kind, amount=Decimal("10"),
        currency="EUR", counted_amount=Decimal("10"), counted_currency="EUR", grant=alice_may_refund_500,
        verdict=mine["verdict"], rationale="x", executed_at=billing_case.opened_at)
    # then alice sees hers only, the auditor both, and the other one is a 404 for alice
    assert [row["id"] for row in as_alice.get("/api/v1/decisions/").json()["results"]] == [mine["id"]]
    assert as_audrey.get("/api/v1/decisions/").json()["count"] == 2
    assert_error_shape(as_alice.get(f"/api/v1/decisions/{other.pk}/"), 404, "not_found")
    assert as_alice.get(f"/api/v1/decisions/{mine['id']}/").json()["rationale"] == "Double charge in March"


def test_decision_filters(as_alice, alice, retention, alice_may_refund_500):
    first, second = CaseFactory(team=retention, owner=alice), CaseFactory(team=retention, owner=alice)
    as_alice.post("/api/v1/decisions/", refund(first, "10.00"), format="json")
    as_alice.post("/api/v1/decisions/", refund(second, "20.00"), format="json")
    by_case = as_alice.get(f"/api/v1/decisions/?case={second.pk}&agent=me&kind=refund").json()["results"]
    assert [row["amount"] for row in by_case] == ["20.00"]
    assert as_alice.get("/api/v1/decisions/?executed_before=2001-01-01T00:00:00Z").json()["count"] == 0
    assert as_alice.get("/api/v1/decisions/?executed_after=2001-01-01T00:00:00Z").json()["count"] == 2


@pytest.mark.parametrize("rows", [5, 30])
def test_listing_decisions_costs_the_same_queries_for_5_or_30_rows(as_alice, alice, retention, rows,
                                                                   alice_may_refund_500,
                                                                   django_assert_max_num_queries):
    # given many small refunds on many cases (30 x 10 EUR fits alice's month)
    for case in CaseFactory.create_batch(rows, team=retention, owner=alice):
        assert as_alice.post("/api/v1/decisions/", refund(case, "10.00"), format="json").status_code == 201
    with django_assert_max_num_queries(5):
        response = as_alice.get("/api/v1/decisions/?page_size=50")
    assert len(response.json()["results"]) == rows


def test_the_decision_reads_back_in_the_audit_log(as_alice, as_audrey, case_owned_by_alice, alice_may_refund_500):
    decision = as_alice.post("/api/v1/decisions/", refund(case_owned_by_alice), format="json").json()
    audit_seal()  # the API lists the chain: when the sealer has run (PostgreSQL; SQLite links at once)
    events = as_audrey.get(f"/api/v1/audit-events/?object_type=decision&object_id={decision['id']}").json()
    (event,) = events["results"]
    assert event["action"] == "decision.executed" and event["actor_username"] == "alice"
    assert event["after"]["amount"] == "200" and event["after"]["grant_id"] == decision["grant"]
