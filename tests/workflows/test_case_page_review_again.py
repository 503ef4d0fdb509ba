"""A review URL reached by GET (after logging in again mid-decision) leads back to the decision form,
filled in with what was typed before the session ended."""

from decimal import Decimal

import pytest
from django.urls import reverse

from authority.models import Decision
from h2h_core.models import Role
from tests.factories import GrantFactory, UserFactory
from workflows import services

from .conftest import open_case

TYPED = {"kind": "refund", "amount": "175.50", "currency": "EUR", "rationale": "Charged twice in March"}


@pytest.fixture
def alices_case(alice, maria, customer):
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"), period_limit=Decimal("1000"))
    return services.case_flow_claim(actor=alice, case=open_case(alice, customer))


@pytest.mark.django_db
def test_a_review_sent_after_the_session_ended_comes_back_filled_in_after_logging_in(client, alice, alices_case):
    # given alice typed a refund, but her session ended before she pressed Review
    review_url = reverse("cases:review", args=[alices_case.pk])
    sent = client.post(review_url, {**TYPED, "note": "not a decision field", "once_token": "x" * 43})
    # then she is asked to log in, and comes back to the review URL
    login_url = f"{reverse('login')}?next={review_url}"
    assert sent.status_code == 302 and sent["Location"] == login_url
    # when she logs in
    logged_in = client.post(login_url, {"username": "alice", "password": "h2h-demo", "next": review_url})
    assert logged_in.status_code == 302 and logged_in["Location"] == review_url
    # and her browser opens the review URL
    back = client.get(review_url, follow=True)
    # then she is on the case page, its decision form filled in with what she typed, and nothing was decided
    assert back.redirect_chain == [(reverse("cases:detail", args=[alices_case.pk]), 302)]
    page = back.text
    form = page[page.index('id="decision-form"'):page.index("</form>", page.index('id="decision-form"'))]
    assert 'value="175.50"' in form and "Charged twice in March</textarea>" in form
    assert '<option value="refund" selected>' in form
    assert "Your decision was not submitted; check it and review again." in page
    assert Decision.objects.count() == 0
    # and only the decision fields were kept, once
    assert f"h2h:decision-draft:{alices_case.pk}" not in client.session
    again = client.get(reverse("cases:detail", args=[alices_case.pk])).text
    assert "Charged twice in March" not in again


@pytest.mark.django_db
def test_a_review_url_opened_with_nothing_kept_leads_to_the_case_page(client, alice, alices_case):
    client.force_login(alice)
    response = client.get(reverse("cases:review", args=[alices_case.pk]), follow=True)
    assert response.redirect_chain == [(reverse("cases:detail", args=[alices_case.pk]), 302)]
    assert "was not submitted" not in response.text


@pytest.mark.django_db
def test_the_kept_draft_holds_the_decision_fields_and_nothing_else(client, alices_case):
    # when an anonymous visitor posts a review with extra fields and an overlong rationale
    client.post(reverse("cases:review", args=[alices_case.pk]),
                {**TYPED, "rationale": "r" * 5000, "justification": "x", "is_superuser": "1"})
    # then only the four decision fields are kept, cut to what the form accepts
    draft = client.session[f"h2h:decision-draft:{alices_case.pk}"]
    assert set(draft) == {"kind", "amount", "currency", "rationale"}
    assert draft["amount"] == "175.50" and len(draft["rationale"]) == 2000


@pytest.mark.django_db
def test_a_review_url_of_a_case_one_may_not_see_is_not_found(client, alices_case):
    client.force_login(UserFactory(username="zed", roles=[Role.AGENT]))
    assert client.get(reverse("cases:review", args=[alices_case.pk])).status_code == 404
