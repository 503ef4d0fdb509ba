"""The auditor's decision page offers the decision's receipt, checkable offline."""

import json

import pytest
from django.urls import reverse

from authority.services import decision_execute
from h2h_core.audit import audit_seal
from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key, public_key_pem
from h2h_core.audit.receipts import receipt_verify
from tests.factories import CaseFactory, GrantFactory, kind

pytestmark = pytest.mark.django_db


@pytest.fixture
def signing_key(tmp_path, settings):
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "audit_signing_key.pem"
    return generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)


@pytest.fixture
def decision(cast):
    alice = cast["alice"]
    GrantFactory(subject_user=alice, kind=kind("refund"))
    case = CaseFactory(owner=alice, team=cast["retention"])
    made = decision_execute(actor=alice, case=case, kind=kind("refund"), amount="25.00", currency="EUR",
                            rationale="Parcel lost")
    audit_seal()
    return made


def test_the_receipt_is_downloaded_from_the_decision_page_once_a_checkpoint_covers_it(client, cast, decision,
                                                                                      signing_key):
    client.force_login(cast["audrey"])
    # given the decision page, which offers the receipt
    page = client.get(reverse("audit:decision", args=[decision.pk])).text
    url = reverse("audit:decision_receipt", args=[decision.pk])
    assert f'href="{url}"' in page
    # when the receipt is asked for before any checkpoint covers it, then the page says to come back
    pending = client.get(url, follow=True)
    assert pending.redirect_chain[-1][0] == reverse("audit:decision", args=[decision.pk])
    assert "No signed checkpoint includes this decision yet" in pending.text
    # when a checkpoint has been signed, then the receipt downloads and verifies with the public key alone
    audit_checkpoint_create()
    response = client.get(url)
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    assert receipt_verify(json.loads(response.content), public_key_pem(signing_key)) == []


def test_agents_cannot_use_the_auditors_receipt_page(client, cast, decision, signing_key):
    audit_checkpoint_create()
    client.force_login(cast["bob"])
    response = client.get(reverse("audit:decision_receipt", args=[decision.pk]))
    assert response.status_code in (302, 403, 404)
    assert response.get("Content-Disposition") is None
