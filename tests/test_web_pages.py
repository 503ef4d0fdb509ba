"""The web pages: who reaches what, and the agent's decide/request/approve journey over HTTP."""

from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from authority.models import AuthorityRequest, Decision, RequestStatus
from h2h_core.models import AuditEvent, Role
from tests.factories import CaseFactory, GrantFactory, UserFactory


@pytest.fixture
def audrey(db):
    return UserFactory(username="audrey", roles=[Role.AUDITOR])


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_login(client):
    for name in ("authority:mine", "cases:list", "authority:approvals", "audit:log"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_agent_sees_her_authority_but_not_the_consoles(client, alice):
    # given alice may refund 500 per case and 1,000 a month
    GrantFactory(subject_user=alice)
    client.force_login(alice)
    # when she opens her pages
    mine = client.get(reverse("authority:mine"))
    # then she sees her limits, and the manager and auditor pages are closed to her
    assert mine.status_code == 200
    assert "500.00 EUR" in mine.text and "1,000.00 EUR" in mine.text
    assert client.get(reverse("authority:approvals")).status_code == 403
    assert client.get(reverse("audit:log")).status_code == 403


@pytest.mark.django_db
def test_case_page_shows_headroom_and_other_peoples_cases_are_404(client, alice, case_owned_by_alice):
    GrantFactory(subject_user=alice)
    outsider = UserFactory(username="zed", roles=[Role.AGENT])
    client.force_login(alice)
    page = client.get(reverse("cases:detail", args=[case_owned_by_alice.pk]))
    assert page.status_code == 200 and "My authority on this case" in page.text
    client.force_login(outsider)
    assert client.get(reverse("cases:detail", args=[case_owned_by_alice.pk])).status_code == 404


@pytest.mark.django_db
def test_decide_over_limit_then_request_then_approve_then_execute(client, alice, maria, case_owned_by_alice):
    # given alice may refund 500 per case, maria 5,000
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    case = case_owned_by_alice
    client.force_login(alice)
    decide = reverse("cases:decide", args=[case.pk])
    # when she refunds 1,200
    over = client.post(decide, {"kind": "refund", "amount": "1200", "currency": "EUR", "rationale": "churn risk"})
    # then she reads why and is offered to ask maria, and nothing was decided
    assert over.status_code == 200
    assert "Request approval from maria" in over.text and "500.00 EUR left on case" in over.text
    assert Decision.objects.count() == 0
    client.post(reverse("cases:request", args=[case.pk]),
                {"kind": "refund", "amount": "1200", "currency": "EUR", "justification": "Key account"})
    request = AuthorityRequest.objects.get()
    client.force_login(maria)
    inbox = client.get(reverse("authority:approvals"))
    assert "Key account" in inbox.text
    client.post(reverse("authority:approve", args=[request.pk]), {"note": "fine"})
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    client.force_login(alice)
    done = client.post(decide, {"kind": "refund", "amount": "1200", "currency": "EUR", "rationale": "churn risk"})
    assert done.status_code == 302
    assert Decision.objects.get().request == request


@pytest.mark.django_db
def test_bad_amount_is_a_clear_message_not_a_500(client, alice, case_owned_by_alice):
    GrantFactory(subject_user=alice)
    client.force_login(alice)
    before = AuditEvent.objects.count()
    for amount in ("-5", "NaN", "1e400", "12.345", "abc", "Infinity"):
        response = client.post(reverse("cases:decide", args=[case_owned_by_alice.pk]),
                               {"kind": "refund", "amount": amount, "currency": "EUR", "rationale": "x"})
        assert response.status_code == 200, amount
        assert "Refused:" in response.text
        check = client.get(reverse("cases:check", args=[case_owned_by_alice.pk]),
                           {"kind": "refund", "amount": amount, "currency": "EUR"})
        assert check.status_code == 400 and check.json()["error"]["message"]
    assert Decision.objects.count() == 0 and AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_auditor_reads_the_log(client, audrey, alice, case_owned_by_alice):
    GrantFactory(subject_user=alice)
    client.force_login(alice)
    client.post(reverse("cases:decide", args=[case_owned_by_alice.pk]),
                {"kind": "refund", "amount": "100", "currency": "EUR", "rationale": "late delivery"})
    client.force_login(audrey)
    log = client.get(reverse("audit:log"), {"action": "decision.executed"})
    assert log.status_code == 200 and "decision.executed" in log.text and "1 event" in log.text


@pytest.mark.django_db
def test_the_decision_forms_check_answers_as_the_apis_and_hides_a_case_out_of_sight(client, alice, carol, billing,
                                                                                   case_owned_by_alice):
    # given alice may refund up to 500 a case, and carol's case of another team
    GrantFactory(subject_user=alice)
    hidden = CaseFactory(owner=carol, team=billing)
    client.force_login(alice)
    question = {"kind": "refund", "amount": "120.00", "currency": "EUR"}
    # when she checks an amount on her case, one beyond her limit, and an amount on carol's case
    within = client.get(reverse("cases:check", args=[case_owned_by_alice.pk]), question)
    beyond = client.get(reverse("cases:check", args=[case_owned_by_alice.pk]), {**question, "amount": "900.00"})
    elsewhere = client.get(reverse("cases:check", args=[hidden.pk]), question)
    # then the verdicts are the API's, and carol's case is not found, whether or not it exists
    api = APIClient()
    api.force_authenticate(alice)
    api_verdict = api.post("/api/v1/authority-check/", {"case": case_owned_by_alice.pk, **question},
                           format="json").json()
    assert within.status_code == 200 and within.json()["verdict"]["allowed"] is True
    web_headroom, api_headroom = within.json()["verdict"]["per_case_headroom"], api_verdict["per_case_headroom"]
    assert Decimal(web_headroom) == Decimal(api_headroom) == Decimal("500")
    assert beyond.status_code == 200 and beyond.json()["verdict"]["allowed"] is False
    assert elsewhere.status_code == 404
