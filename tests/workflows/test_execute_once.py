"""Every web form that changes state executes at most once: a double click, a second tab or the back
button shows the first submission's result instead of acting again."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from authority.models import Decision, UsageCounter
from h2h_core.models import AuditEvent, Case, CaseEvent
from tests.factories import GrantFactory, kind
from workflows import services

from .conftest import open_case

TOKEN = re.compile(r'name="once_token" value="([^"]+)"')
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


@pytest.fixture
def alices_case(alice, maria, customer):
    GrantFactory(subject_user=alice, kind=kind("goodwill_credit"), per_case_limit=Decimal("200"),
                 period_limit=Decimal("800"))
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    return services.case_flow_claim(actor=alice, case=open_case(alice, customer))


def form_tokens(html: str) -> list[str]:
    return TOKEN.findall(html)


def first_token(html: str) -> str:
    tokens = form_tokens(html)
    return tokens[0] if tokens else ""


def page_of(client, case) -> str:
    return client.get(reverse("cases:detail", args=[case.pk])).text


GOODWILL = {"kind": "goodwill_credit", "amount": "50", "currency": "EUR", "rationale": "Lost a week of service"}


def review(client, case, form=GOODWILL) -> str:
    response = client.post(reverse("cases:review", args=[case.pk]), form)
    assert response.status_code == 200
    return response.text


def execute(client, case, review_page: str, form=GOODWILL, **extra):
    data = {**form, "idempotency_key": KEY.search(review_page).group(1), "once_token": first_token(review_page)}
    return client.post(reverse("cases:decide", args=[case.pk]), data, follow=True, **extra)


def usage_of(agent, code: str) -> list[Decimal]:
    return list(UsageCounter.objects.filter(kind=kind(code), agent=agent).order_by("key").values_list("used",
                                                                                                     flat=True))


@pytest.mark.django_db
def test_a_decision_reviewed_in_two_tabs_and_executed_in_both_is_executed_once(client, alice, alices_case):
    # given alice reviews the same goodwill credit of 50 in two tabs
    client.force_login(alice)
    first_tab, second_tab = review(client, alices_case), review(client, alices_case)
    # when she presses Execute in the first tab, then in the second
    done = execute(client, alices_case, first_tab)
    again = execute(client, alices_case, second_tab)
    # then one decision was recorded, audited once and counted once
    assert "Goodwill credit of 50.00 EUR executed" in done.text
    decision = Decision.objects.get()
    assert (decision.kind.code, decision.amount) == ("goodwill_credit", Decimal("50"))
    assert AuditEvent.objects.filter(action="decision.executed").count() == 1
    assert CaseEvent.objects.filter(kind=CaseEvent.Kind.DECISION).count() == 1
    assert Decimal("50") in usage_of(alice, "goodwill_credit")
    assert all(used == Decimal("50") for used in usage_of(alice, "goodwill_credit"))
    # and the second tab, whose page token was its own, shows the first result
    assert first_token(first_tab) != first_token(second_tab)
    assert again.redirect_chain[-1][0] == reverse("cases:detail", args=[alices_case.pk])
    assert "Already executed: Goodwill credit of 50.00 EUR" in again.text and "here it is" in again.text.lower()


@pytest.mark.django_db
def test_the_same_decision_reviewed_again_after_it_was_executed_is_a_new_decision(client, alice, alices_case):
    # given alice executed a goodwill credit of 50
    client.force_login(alice)
    execute(client, alices_case, review(client, alices_case))
    # when she reviews exactly the same decision again and executes it
    done = execute(client, alices_case, review(client, alices_case))
    # then it is a second decision: the review after the first decision carries a new key
    assert "Goodwill credit of 50.00 EUR executed" in done.text
    assert Decision.objects.count() == 2
    assert len(set(Decision.objects.values_list("idempotency_key", flat=True))) == 2


@pytest.mark.django_db
def test_a_double_click_on_execute_runs_the_view_once_and_shows_the_first_result(client, alice, alices_case):
    # given alice reviewed a goodwill credit
    client.force_login(alice)
    page = review(client, alices_case)
    # when the same Execute form arrives twice (a double click), the second without the decision's key
    first = execute(client, alices_case, page)
    data = {**GOODWILL, "once_token": first_token(page)}
    second = client.post(reverse("cases:decide", args=[alices_case.pk]), data)
    # then the second was not run: it is sent to the first one's result
    assert "executed" in first.text
    assert second.status_code == 302 and second["Location"] == reverse("cases:detail", args=[alices_case.pk])
    assert "already submitted; here is its result" in client.get(second["Location"]).text
    assert Decision.objects.count() == 1


@pytest.mark.django_db
def test_an_intake_form_sent_twice_opens_one_case(client, alice, maria, customer):
    # given alice's intake form
    client.force_login(alice)
    token = first_token(client.get(reverse("cases:new")).text)
    form = {"customer": customer.pk, "subject": "Charged twice", "category": "complaint", "amount_at_stake": "90",
            "currency": "EUR", "description": "", "once_token": token}
    # when she sends it twice (a double click)
    first = client.post(reverse("cases:new"), form)
    audited = AuditEvent.objects.exclude(outcome="denied").count()
    second = client.post(reverse("cases:new"), form, HTTP_REFERER="http://testserver" + reverse("cases:new"))
    # then one case was opened, and the second submission is shown the first one's result
    case = Case.objects.get(customer=customer)
    assert first.status_code == second.status_code == 302
    assert second["Location"] == first["Location"] == reverse("cases:detail", args=[case.pk])
    assert AuditEvent.objects.exclude(outcome="denied").count() == audited
    assert "already submitted; here is its result" in client.get(second["Location"]).text


@pytest.mark.django_db
def test_a_form_shown_again_with_its_errors_can_be_sent_again(client, alice, maria, customer):
    # given alice's intake form, sent once without a subject: the view shows it again and opens nothing
    client.force_login(alice)
    token = first_token(client.get(reverse("cases:new")).text)
    form = {"customer": customer.pk, "category": "complaint", "amount_at_stake": "90", "currency": "EUR",
            "description": "", "once_token": token}
    shown_again = client.post(reverse("cases:new"), {**form, "subject": ""})
    assert shown_again.status_code == 200 and not Case.objects.filter(customer=customer).exists()
    # when she sends the same form again, now with a subject
    opened = client.post(reverse("cases:new"), {**form, "subject": "Charged twice"})
    # then it ran: the first submission had not acted and had released its token
    assert opened.status_code == 302 and Case.objects.filter(customer=customer).count() == 1
