"""Approving or rejecting a request mails the requester (issue 14's last part): queued in the deciding
transaction, sent by a job, naming the case, kind, amount and the approver's note, linking to the case."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from h2h_core.models import OutboundMail
from tests.factories import CaseFactory, GrantFactory, ai_agent, kind
from tests.jobs import run_jobs
from workflows import services

from .conftest import open_case

pytestmark = pytest.mark.django_db


@pytest.fixture
def grants(alice, maria):
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))


@pytest.fixture
def request_waiting(alice, maria, customer, grants):
    """alice (500 per case) asked maria's team pool for 1,200.00 EUR through the workflow."""
    case = services.case_flow_claim(actor=alice, case=open_case(alice, customer))
    return services.authority_request_flow_open(actor=alice, case=case, kind=kind("refund"), amount="1200",
                                                currency="EUR", justification="Key account, churn risk")


def test_an_approval_mails_the_requester_what_was_approved_and_the_link(maria, request_waiting, mailoutbox,
                                                                         settings):
    settings.H2H_PUBLIC_URL = "https://h2h.example"
    case = request_waiting.case
    # when maria approves with a note
    services.authority_request_flow_approve(actor=maria, request=request_waiting, note="Key account, go ahead")
    # then a mail to alice waits in the queue with the decision, and its job sends it
    queued = OutboundMail.objects.get()
    assert queued.purpose == "request_approved" and queued.case_id == case.pk
    assert mailoutbox == []
    run_jobs()
    [mail] = mailoutbox
    assert mail.to == ["alice@example.test"]
    assert mail.subject == f"{case.reference}: your refund request for 1,200.00 EUR was approved"
    assert f"maria approved your request: refund of 1,200.00 EUR on {case.reference} ({case.subject})" in mail.body
    assert "maria's note: Key account, go ahead" in mail.body
    assert "covers exactly this amount on this case while you own it" in mail.body
    assert f"https://h2h.example/cases/{case.pk}/" in mail.body


def test_a_rejection_mails_the_requester_the_reason(maria, request_waiting, mailoutbox):
    case = request_waiting.case
    services.authority_request_flow_reject(actor=maria, request=request_waiting, note="Customer already refunded")
    run_jobs()
    [mail] = mailoutbox
    assert mail.to == ["alice@example.test"]
    assert mail.subject == f"{case.reference}: your refund request for 1,200.00 EUR was rejected"
    assert "maria rejected your request: refund of 1,200.00 EUR" in mail.body
    assert "maria's note: Customer already refunded" in mail.body
    assert f"/cases/{case.pk}/" in mail.body


def test_a_requester_without_an_email_address_gets_no_mail(alice, maria, request_waiting, mailoutbox):
    alice.email = ""
    alice.save(update_fields=["email"])
    services.authority_request_flow_approve(actor=maria, request=request_waiting, note="")
    run_jobs()
    assert not OutboundMail.objects.exists() and mailoutbox == []


def test_an_ai_agent_requester_gets_no_mail(maria, retention, grants, mailoutbox):
    # given an AI agent (its account has an address) asked for more than its authority on its case
    bot = ai_agent(retention, "ai-bot").user
    assert bot.email
    GrantFactory(subject_user=bot, per_case_limit=Decimal("50"))
    case = CaseFactory(owner=bot, team=retention)
    request = services.authority_request_flow_open(actor=bot, case=case, kind=kind("refund"), amount="120",
                                                   currency="EUR", justification="Customer asked twice")
    # when maria approves it
    services.authority_request_flow_approve(actor=maria, request=request, note="")
    run_jobs()
    # then nobody is mailed: an AI agent reads the API
    assert not OutboundMail.objects.exists() and mailoutbox == []


def test_a_refused_rejection_queues_no_mail(maria, request_waiting, mailoutbox):
    # when maria rejects without a reason
    with pytest.raises(ValidationError):
        services.authority_request_flow_reject(actor=maria, request=request_waiting, note=" ")
    # then no mail was queued
    run_jobs()
    assert not OutboundMail.objects.exists() and mailoutbox == []
