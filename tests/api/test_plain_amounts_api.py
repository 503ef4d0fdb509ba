"""Every amount the API takes is plain ASCII decimal text: anything else is a 400 and nothing happens.

Regression: a 10 EUR decision was executed from "١٠" (Arabic-Indic digits), because Python's Decimal()
and DRF's DecimalField read every Unicode digit, underscores, signs, exponents and surrounding spaces.
"""

import pytest

from h2h_core.models import AuditEvent, Case
from tests.factories import CustomerFactory

from .helpers import assert_error_shape, state

pytestmark = pytest.mark.django_db

DECISIONS = "/api/v1/decisions/"
CHECK = "/api/v1/authority-check/"
REQUESTS = "/api/v1/authority-requests/"
GRANTS = "/api/v1/grants/"
CASES = "/api/v1/cases/"

# The six forms of the defect, then their relatives.
NOT_PLAIN = [
    pytest.param("١٠", id="arabic-indic-digits"),
    pytest.param("１０", id="fullwidth-digits"),
    pytest.param("1_000", id="underscore"),
    pytest.param("1e3", id="exponent"),
    pytest.param(" 10", id="leading-space"),
    pytest.param("+10", id="plus-sign"),
    pytest.param("১০", id="bengali-digits"),
    pytest.param("𝟏𝟎", id="mathematical-bold-digits"),
    pytest.param("1E2", id="capital-exponent"),
    pytest.param("10 ", id="trailing-space"),
    pytest.param("\u00a010", id="no-break-space"),
    pytest.param("1\u2009000", id="thin-space-inside"),
    pytest.param("10\n", id="trailing-newline"),
    pytest.param("\t10", id="tab"),
    pytest.param("1,000", id="thousands-comma"),
    pytest.param("1.000,50", id="european-grouping"),
    pytest.param("1 000", id="inner-space"),
    pytest.param("NaN", id="nan"),
    pytest.param("Infinity", id="infinity"),
    pytest.param("-0", id="minus-zero"),
    pytest.param("-10", id="negative"),
    pytest.param(".5", id="no-leading-digit"),
    pytest.param("5.", id="no-trailing-digit"),
    pytest.param("0x10", id="hexadecimal"),
    pytest.param("1" * 41, id="too-long"),
    pytest.param("", id="empty"),
]
# 1,200 written in those forms: over alice's 500, so before the fix each of them opened a request.
OVER_HER_LIMIT_NOT_PLAIN = [
    pytest.param("١٢٠٠", id="1200-arabic-indic-digits"),
    pytest.param("１２００", id="1200-fullwidth-digits"),
    pytest.param("1_200", id="1200-underscore"),
    pytest.param("1.2e3", id="1200-exponent"),
    pytest.param(" 1200", id="1200-leading-space"),
    pytest.param("+1200", id="1200-plus-sign"),
    pytest.param("1200 ", id="1200-trailing-space"),
    pytest.param("1200.", id="1200-no-trailing-digit"),
]
# JSON values that are not a string: numbers are binary floats to a JSON parser, and true is not 1.
NOT_TEXT = [
    pytest.param(10, id="json-integer"),
    pytest.param(10.1, id="json-float"),
    pytest.param(True, id="json-true"),
    pytest.param([10], id="json-array"),
    pytest.param({"amount": "10"}, id="json-object"),
]


def refund(on_case, amount, **overrides):
    return {"case": on_case.pk, "kind": "refund", "amount": amount, "currency": "EUR",
            "rationale": "Charged twice", **overrides}


def ask(on_case, amount):
    return {"case": on_case.pk, "kind": "refund", "amount": amount, "currency": "EUR",
            "justification": "Long-standing customer"}


def grant_terms(**limits):
    return {"kind": "refund", "subject_user": "alice", "per_case_limit": "300.00", "period_limit": "900.00",
            "period": "month", "currency": "EUR", "reason": "New starter", **limits}


def successful_events() -> int:
    return AuditEvent.objects.exclude(outcome="denied").count()


def assert_refused(response, field: str) -> dict:
    body = assert_error_shape(response, 400, "invalid")
    assert field in body["details"], body
    return body


@pytest.mark.parametrize("amount", NOT_PLAIN + NOT_TEXT)
def test_a_decision_with_an_amount_that_is_not_plain_is_400_and_nothing_is_executed(
        as_alice, case_owned_by_alice, alice_may_refund_500, amount):
    # given alice may refund 500 on her case
    before, events = state(), successful_events()
    # when she sends a refund whose amount is not plain ASCII decimal text
    response = as_alice.post(DECISIONS, refund(case_owned_by_alice, amount), format="json")
    # then it is refused naming the amount, and no decision, usage or audit event was written
    assert_refused(response, "amount")
    assert state() == before and successful_events() == events


@pytest.mark.parametrize("amount", NOT_PLAIN + NOT_TEXT)
def test_the_dry_run_refuses_an_amount_that_is_not_plain(as_alice, case_owned_by_alice, alice_may_refund_500,
                                                         amount):
    before, events = state(), successful_events()
    assert_refused(as_alice.post(CHECK, refund(case_owned_by_alice, amount), format="json"), "amount")
    assert state() == before and successful_events() == events


@pytest.mark.parametrize("amount", OVER_HER_LIMIT_NOT_PLAIN + NOT_PLAIN + [1200, 1200.0, True])
def test_an_authority_request_with_an_amount_that_is_not_plain_is_400_and_opens_nothing(
        as_alice, case_owned_by_alice, alice_may_refund_500, maria_may_refund_5000, amount):
    before, events = state(), successful_events()
    assert_refused(as_alice.post(REQUESTS, ask(case_owned_by_alice, amount), format="json"), "amount")
    assert state() == before and successful_events() == events


@pytest.mark.parametrize("field", ["per_case_limit", "period_limit"])
@pytest.mark.parametrize("limit", NOT_PLAIN + NOT_TEXT)
def test_a_grant_with_a_limit_that_is_not_plain_is_400_and_grants_nothing(as_maria, alice, field, limit):
    before, events = state(), successful_events()
    assert_refused(as_maria.post(GRANTS, grant_terms(**{field: limit}), format="json"), field)
    assert state() == before and successful_events() == events


@pytest.mark.parametrize("amount", NOT_PLAIN + NOT_TEXT)
def test_a_case_with_an_amount_at_stake_that_is_not_plain_is_400_and_opens_nothing(as_alice, amount):
    customer = CustomerFactory()
    events = successful_events()
    response = as_alice.post(CASES, {"customer": customer.pk, "subject": "Charged twice", "category": "billing_error",
                                     "amount_at_stake": amount, "currency": "EUR"}, format="json")
    assert_refused(response, "amount_at_stake")
    assert not Case.objects.exists() and successful_events() == events


def test_the_refusal_names_the_field_and_the_expected_form(as_alice, case_owned_by_alice, alice_may_refund_500):
    body = assert_refused(as_alice.post(DECISIONS, refund(case_owned_by_alice, "١٠"), format="json"), "amount")
    assert "Write the amount with the digits 0-9 and a dot, e.g. 1250.50." in body["details"]["amount"][0]
    number = assert_refused(as_alice.post(DECISIONS, refund(case_owned_by_alice, 10.1), format="json"), "amount")
    assert "JSON string" in number["details"]["amount"][0]


@pytest.mark.parametrize(("amount", "rendered"), [("10", "10.00"), ("10.5", "10.50"), ("0.50", "0.50")])
def test_plain_amounts_are_executed_exactly_and_rendered_as_text(as_alice, case_owned_by_alice,
                                                                 alice_may_refund_500, amount, rendered):
    response = as_alice.post(DECISIONS, refund(case_owned_by_alice, amount), format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["amount"] == rendered


def test_plain_limits_grant_exactly(as_maria, alice):
    response = as_maria.post(GRANTS, grant_terms(per_case_limit="250.5", period_limit=None), format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["per_case_limit"], response.json()["period_limit"]) == ("250.50", None)


def test_the_schema_describes_amounts_as_plain_decimal_strings(as_alice):
    schema = as_alice.get("/api/schema/?format=json").json()
    amount = schema["components"]["schemas"]["DecisionInRequest"]["properties"]["amount"]
    assert amount["type"] == "string" and amount["pattern"] == r"^[0-9]+(\.[0-9]+)?$"

