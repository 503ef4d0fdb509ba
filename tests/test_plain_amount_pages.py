"""The web pages take amounts in the one plain form the API takes: anything else is a form error, nothing happens.

Regression: the decision form trimmed and handed its text to Decimal(), so "١٠", "１０", "1_000", "1e3",
" 10" and "+10" were read as numbers; the intake form's DecimalField read them too.
"""

from decimal import Decimal

import pytest
from django.urls import reverse

from authority.models import AuthorityRequest, Decision, Grant, UsageCounter
from h2h_core.models import AuditEvent, Case
from tests.factories import CustomerFactory, GrantFactory

pytestmark = pytest.mark.django_db

NOT_PLAIN = [
    pytest.param("١٠", id="arabic-indic-digits"),
    pytest.param("１０", id="fullwidth-digits"),
    pytest.param("1_000", id="underscore"),
    pytest.param("1e3", id="exponent"),
    pytest.param(" 10", id="leading-space"),
    pytest.param("+10", id="plus-sign"),
    pytest.param("10\u00a0", id="trailing-no-break-space"),
    pytest.param("1,000", id="thousands-comma"),
    pytest.param(".5", id="no-leading-digit"),
    pytest.param("5.", id="no-trailing-digit"),
]


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def everything() -> tuple:
    """What a refused form must leave as it was."""
    return (list(Decision.objects.values_list("pk", flat=True)),
            list(AuthorityRequest.objects.values_list("pk", flat=True)),
            list(UsageCounter.objects.values_list("key", "used")),
            list(Grant.objects.order_by("pk").values_list("pk", "status", "superseded_at", "per_case_limit",
                                                          "period_limit")),
            list(Case.objects.values_list("pk", flat=True)),
            AuditEvent.objects.exclude(outcome="denied").count())


@pytest.mark.parametrize("amount", NOT_PLAIN)
@pytest.mark.parametrize("step", ["cases:review", "cases:decide", "cases:request"])
def test_the_decision_form_refuses_an_amount_that_is_not_plain(client, alice, maria, case_owned_by_alice, step,
                                                               amount):
    # given alice may refund 500 on her case
    GrantFactory(subject_user=alice)
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    client.force_login(alice)
    before = everything()
    # when she reviews, executes or asks for a refund written in another form
    response = client.post(reverse(step, args=[case_owned_by_alice.pk]),
                           {"kind": "refund", "amount": amount, "currency": "EUR", "rationale": "Charged twice",
                            "justification": "Charged twice"}, follow=True)
    # then she is told, and nothing was decided, asked or spent
    assert response.status_code == 200
    assert "Refused:" in response.text
    assert everything() == before


@pytest.mark.parametrize("amount", NOT_PLAIN)
def test_the_decision_form_says_how_to_write_the_amount(client, alice, case_owned_by_alice, amount):
    GrantFactory(subject_user=alice)
    client.force_login(alice)
    page = client.post(reverse("cases:decide", args=[case_owned_by_alice.pk]),
                       {"kind": "refund", "amount": amount, "currency": "EUR", "rationale": "Charged twice"})
    assert "Write the amount with the digits 0-9 and a dot, e.g. 1250.50." in page.text
    assert not Decision.objects.exists()


@pytest.mark.parametrize("amount", NOT_PLAIN)
def test_the_live_check_refuses_an_amount_that_is_not_plain(client, alice, case_owned_by_alice, amount):
    GrantFactory(subject_user=alice)
    client.force_login(alice)
    check = client.get(reverse("cases:check", args=[case_owned_by_alice.pk]),
                       {"kind": "refund", "amount": amount, "currency": "EUR"})
    assert check.status_code == 400 and check.json()["error"]["message"]


@pytest.mark.parametrize("field", ["per_case_limit", "period_limit"])
@pytest.mark.parametrize("limit", NOT_PLAIN)
@pytest.mark.parametrize("step", ["preview", "save"])
def test_the_managers_grant_form_refuses_a_limit_that_is_not_plain(client, alice, maria, field, limit, step):
    # given alice's refund grant, which maria (her team's manager) may change
    grant = GrantFactory(subject_user=alice)
    client.force_login(maria)
    before = everything()
    # when maria previews or saves a change whose limit is written in another form
    terms = {"effect": "permit", "per_case_limit": "300", "period_limit": "900", "period": "month",
             "currency": "EUR", "reason": "Quieter quarter", "step": step, field: limit}
    page = client.post(reverse("authority:grant_edit", args=[grant.pk]), terms)
    # then the form shows the error and no version was written
    assert page.status_code == 200 and 'class="errorlist' in page.text
    assert "with the digits 0-9 and a dot" in page.text
    assert everything() == before


@pytest.mark.parametrize("limit", NOT_PLAIN)
def test_a_new_grant_with_a_limit_that_is_not_plain_is_not_saved(client, alice, maria, limit):
    client.force_login(maria)
    before = everything()
    page = client.post(reverse("authority:grant_new"), {
        "subject": f"user-{alice.pk}", "kind": "refund", "effect": "permit", "per_case_limit": limit,
        "period_limit": "", "period": "none", "currency": "EUR", "reason": "New starter", "step": "save"})
    assert page.status_code == 200 and 'class="errorlist' in page.text
    assert everything() == before


def test_a_zero_limit_typed_into_the_grant_form_is_refused_not_read_as_no_limit(client, alice, maria):
    grant = GrantFactory(subject_user=alice)
    client.force_login(maria)
    before = everything()
    page = client.post(reverse("authority:grant_edit", args=[grant.pk]), {
        "effect": "permit", "per_case_limit": "0", "period_limit": "900", "period": "month", "currency": "EUR",
        "reason": "Quieter quarter", "step": "save"})
    assert page.status_code == 200 and 'class="errorlist' in page.text
    assert everything() == before


@pytest.mark.parametrize("amount", NOT_PLAIN)
def test_the_intake_form_refuses_an_amount_at_stake_that_is_not_plain(client, alice, amount):
    customer = CustomerFactory()
    client.force_login(alice)
    before = everything()
    page = client.post(reverse("cases:new"), {"customer": customer.pk, "subject": "Charged twice",
                                              "category": "billing_error", "amount_at_stake": amount,
                                              "currency": "EUR", "description": ""})
    assert page.status_code == 200 and "field-error" in page.text
    assert everything() == before


def test_plain_amounts_still_work_in_the_decision_form(client, alice, case_owned_by_alice):
    GrantFactory(subject_user=alice)
    client.force_login(alice)
    client.post(reverse("cases:decide", args=[case_owned_by_alice.pk]),
                {"kind": "refund", "amount": "10.50", "currency": "EUR", "rationale": "Charged twice"})
    assert Decision.objects.get().amount == Decimal("10.50")
