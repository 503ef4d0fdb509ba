"""What-if: the verdict and its reasons for a person, kind, amount, case or category and date; nothing changes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from authority.models import Decision, UsageCounter
from h2h_core.models import CaseCategory
from h2h_core.organisation import current_organisation
from tests.factories import CaseFactory, GrantFactory, successful_audit_events

pytestmark = pytest.mark.django_db


def nothing_changed():
    return successful_audit_events(), Decision.objects.count(), list(UsageCounter.objects.values_list("key", "used"))


def ask(client, **params):
    query = {"person": "alice", "kind": "refund", "amount": "100", "currency": "EUR", **params}
    return client.get(reverse("authority:what_if"), query)


def test_over_the_per_case_limit_on_a_real_case_is_refused_with_reasons(client, cast):
    case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    client.force_login(cast["maria"])
    before = nothing_changed()
    page = ask(client, amount="700", case=case.reference)
    assert page.status_code == 200
    assert "Refused" in page.text
    assert "200.00 EUR over your per-case limit of 500.00 EUR: 500.00 EUR left on case" in page.text
    assert "Who could approve more" in page.text
    assert nothing_changed() == before


def test_a_category_without_a_case_is_answered_too(client, cast):
    client.force_login(cast["maria"])
    before = nothing_changed()
    page = ask(client, amount="450", category=CaseCategory.RENEWAL, tier="gold")
    assert "Allowed" in page.text and "on a new renewal case of a gold customer" in page.text
    assert "Within your authority" in page.text
    assert nothing_changed() == before


def test_the_answer_depends_on_the_date_asked_about(client, cast):
    # given bob gets 3,000 per case only from next week
    starts = timezone.now() + timedelta(days=7)
    GrantFactory(subject_user=cast["bob"], per_case_limit=Decimal("3000"), period_limit=None,
                 period="none", valid_from=starts)
    client.force_login(cast["maria"])
    # when maria asks about 2,500 now and a week from tomorrow
    now_answer = ask(client, person="bob", amount="2500", category=CaseCategory.COMPLAINT)
    local = timezone.localtime(starts + timedelta(days=1), current_organisation().tz).strftime("%Y-%m-%dT%H:%M")
    then_answer = ask(client, person="bob", amount="2500", category=CaseCategory.COMPLAINT, at=local)
    # then it is refused now and allowed then
    assert "Refused" in now_answer.text and "Allowed" in then_answer.text


def test_a_suspension_shows_as_such(client, cast):
    client.force_login(cast["maria"])
    page = ask(client, person="dave", kind="goodwill_credit", amount="10", category=CaseCategory.BILLING_ERROR)
    assert "Refused: suspended" in page.text and "under review" in page.text


def test_people_and_cases_outside_my_teams_cannot_be_asked_about(client, cast):
    erin_case = CaseFactory(owner=cast["erin"], team=cast["onboarding"])
    client.force_login(cast["maria"])
    other_person = ask(client, person="erin", category=CaseCategory.ONBOARDING)
    other_case = ask(client, case=erin_case.reference)
    assert "Select a valid choice" in other_person.text and "Allowed" not in other_person.text
    assert "No such case in your teams" in other_case.text


def test_bad_input_is_a_message_not_an_error_page(client, cast):
    client.force_login(cast["maria"])
    for params in ({"amount": "abc", "category": "complaint"}, {"amount": "-1", "category": "complaint"},
                   {"amount": "10"}, {"amount": "10", "case": "not-a-case"}):
        page = ask(client, **params)
        assert page.status_code == 200 and 'class="errorlist' in page.text, params


def test_what_if_costs_a_handful_of_queries(client, cast, django_assert_max_num_queries):
    client.force_login(cast["maria"])
    ask(client, category=CaseCategory.COMPLAINT)
    with django_assert_max_num_queries(14):  # 12, and the navigation's two counts (waiting, approvals)
        ask(client, category=CaseCategory.COMPLAINT)
