"""The customer's rating page: a signed, expiring link; no login; one rating per case."""

import re

import pytest
from django.urls import reverse

from h2h_core.models import AuditEvent, CaseEvent
from tests.jobs import run_jobs
from workflows import services
from workflows.models import CaseProcess

from .conftest import open_case


@pytest.fixture
def resolved_case(alice, maria, customer):
    case = open_case(alice, customer)
    services.case_flow_claim(actor=alice, case=case)
    return services.case_flow_resolve(actor=alice, case=case, summary="We refunded the second charge.")


@pytest.mark.django_db
def test_the_customer_rates_the_outcome_through_the_signed_link_without_logging_in(client, resolved_case):
    url = services.rating_url(resolved_case)
    # when the customer opens the link
    page = client.get(url)
    # then they see their case and the question, and no login was needed
    assert page.status_code == 200 and "How did we do?" in page.text
    assert "We refunded the second charge." in page.text
    # when they rate 4
    done = client.post(url, {"rating": "4"})
    # then the rating is on the case, its timeline, its process and in the audit log
    assert done.status_code == 200 and "4 out of 5" in done.text
    resolved_case.refresh_from_db()
    assert resolved_case.rating == 4
    assert resolved_case.events.filter(kind=CaseEvent.Kind.RATED).exists()
    assert AuditEvent.objects.get(action="case.rated").after == {"rating": 4}
    assert CaseProcess.objects.get(case=resolved_case).data["rating"] == 4


@pytest.mark.django_db
def test_a_forged_link_is_refused_and_nothing_changes(client, resolved_case):
    token = services.rating_token(resolved_case)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    audit = AuditEvent.objects.exclude(outcome="denied").count()
    response = client.post(reverse("cases:rate", args=[forged]), {"rating": "1"})
    assert response.status_code == 404 and "does not work" in response.text
    resolved_case.refresh_from_db()
    assert resolved_case.rating is None and AuditEvent.objects.exclude(outcome="denied").count() == audit


@pytest.mark.django_db
def test_an_expired_link_is_refused(client, resolved_case, settings):
    # given links that are valid for no time at all
    settings.H2H_FOLLOW_UP_DAYS = 0
    settings.H2H_RATING_LINK_SLACK_DAYS = 0
    response = client.post(services.rating_url(resolved_case), {"rating": "5"})
    assert response.status_code == 404
    resolved_case.refresh_from_db()
    assert resolved_case.rating is None


@pytest.mark.django_db
def test_a_case_is_rated_once(client, resolved_case):
    url = services.rating_url(resolved_case)
    client.post(url, {"rating": "5"})
    again = client.post(url, {"rating": "1"})
    assert "Already rated" in again.text
    resolved_case.refresh_from_db()
    assert resolved_case.rating == 5 and AuditEvent.objects.filter(action="case.rated").count() == 1


@pytest.mark.django_db
def test_a_rating_out_of_range_is_refused(client, resolved_case):
    audit = AuditEvent.objects.exclude(outcome="denied").count()
    response = client.post(services.rating_url(resolved_case), {"rating": "7"})
    assert response.status_code == 200 and "Choose a rating from 1 to 5" in response.text
    resolved_case.refresh_from_db()
    assert resolved_case.rating is None and AuditEvent.objects.exclude(outcome="denied").count() == audit


@pytest.mark.django_db
def test_an_open_case_cannot_be_rated_yet(client, alice, maria, customer):
    case = open_case(alice, customer)
    response = client.post(services.rating_url(case), {"rating": "3"})
    assert response.status_code == 200 and "Not resolved yet" in response.text
    case.refresh_from_db()
    assert case.rating is None


@pytest.mark.django_db
def test_resolving_mails_the_rating_link_to_the_customer(alice, maria, customer, mailoutbox,
                                                          django_capture_on_commit_callbacks):
    case = open_case(alice, customer)
    services.case_flow_claim(actor=alice, case=case)
    with django_capture_on_commit_callbacks(execute=True):
        services.case_flow_resolve(actor=alice, case=case, summary="Refunded")
    run_jobs()  # the mail is queued with the resolution and sent by its job
    # then the customer got a link that opens the rating page of this very case
    assert [m.to for m in mailoutbox] == [["billing@acme.example"]]
    token = re.search(r"/cases/rate/([^/\s]+)/", mailoutbox[0].body).group(1)
    assert services.case_for_rating_token(token) == case


def test_the_case_page_offers_the_rating_link_exactly_as_the_rule_says(client, alice, bob, maria, resolved_case):
    # given a resolved, unrated case of alice's in the Retention team (maria manages it, bob works in it)
    link = services.rating_url(resolved_case)
    # (the token is timestamped, so a page rendered a second later carries another one: look for the path)
    rate_path = reverse("cases:rate", args=["token"]).removesuffix("token/")
    # when each of them opens the case page
    offered = {}
    for person in (alice, maria, bob):
        client.force_login(person)
        offered[person.username] = rate_path in client.get(reverse("cases:detail", args=[resolved_case.pk])).text
    # then the owner and the team's manager are offered the link, a colleague is not
    assert offered == {"alice": True, "maria": True, "bob": False}
    # and once the customer has rated, nobody is
    client.post(link, {"rating": "4"})
    client.force_login(alice)
    assert rate_path not in client.get(reverse("cases:detail", args=[resolved_case.pk])).text
