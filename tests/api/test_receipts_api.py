"""Receipts and consistency proofs through the API: checkable offline with the public key alone."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django_tasks_db.models import DBTaskResult

from authority.models import AuthorityKind
from authority.services import decision_execute
from h2h_core.audit import audit_seal
from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key, public_key_pem
from h2h_core.audit.receipts import consistency_verify, receipt_verify
from h2h_core.models import AuditCheckpoint

from .helpers import assert_error_shape, grant_refund

pytestmark = pytest.mark.django_db

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "verify_receipt.py"


@pytest.fixture
def signing_key(tmp_path, settings):
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "audit_signing_key.pem"
    return generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)


def refund(case, amount="120.00"):
    return {"case": case.pk, "kind": "refund", "amount": amount, "currency": "EUR", "rationale": "Double charge"}


def decide(client, case, amount="120.00") -> int:
    response = client.post("/api/v1/decisions/", refund(case, amount), format="json")
    assert response.status_code == 201, response.json()
    audit_seal()
    return response.json()["id"]


def test_a_decision_receipt_verifies_offline_with_the_script(as_alice, case_owned_by_alice, alice_may_refund_500,
                                                             signing_key, tmp_path):
    # given a decision, and a checkpoint signed after it
    decision_id = decide(as_alice, case_owned_by_alice)
    audit_checkpoint_create()
    # when alice downloads its receipt
    response = as_alice.get(f"/api/v1/decisions/{decision_id}/receipt/")
    # then it is the decision's event with its proof, and it verifies with the public key alone
    assert response.status_code == 200, response.content
    assert "attachment" in response["Content-Disposition"]
    receipt = response.json()
    assert receipt["format"] == "h2h-receipt/v1"
    assert receipt["event"]["action"] == "decision.executed" and receipt["event"]["object_id"] == str(decision_id)
    pem = public_key_pem(signing_key)
    assert receipt_verify(receipt, pem) == []
    receipt_file, key_file = tmp_path / "receipt.json", tmp_path / "key.pem"
    receipt_file.write_text(json.dumps(receipt))
    key_file.write_text(pem)
    run = subprocess.run([sys.executable, str(SCRIPT), str(receipt_file), str(key_file)], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_before_a_signed_tree_includes_it_the_receipt_is_pending_and_a_signing_is_asked_for(
        as_alice, case_owned_by_alice, alice_may_refund_500, signing_key, django_capture_on_commit_callbacks):
    # given a decision no checkpoint covers yet
    decision_id = decide(as_alice, case_owned_by_alice)
    jobs = DBTaskResult.objects.count()
    # when its receipt is asked for
    with django_capture_on_commit_callbacks(execute=True):
        response = as_alice.get(f"/api/v1/decisions/{decision_id}/receipt/")
    # then the answer says to come back, and a checkpoint signing was queued
    assert response.status_code == 202
    assert response["Retry-After"] == "30"
    assert response.json()["status"] == "pending"
    assert DBTaskResult.objects.count() == jobs + 1


def test_a_decision_the_caller_may_not_see_has_no_receipt(as_alice, billing_case, signing_key):
    # given a decision on a Billing case, which alice (Retention) may not see, covered by a checkpoint
    carol = billing_case.owner
    grant_refund(carol)
    decision = decision_execute(actor=carol, case=billing_case, kind=AuthorityKind.objects.get(code="refund"),
                                amount="30.00", currency="EUR", rationale="Late delivery")
    audit_seal()
    audit_checkpoint_create()
    # when alice asks for its receipt, then it is a 404 in the API's error shape, as for no decision at all
    assert_error_shape(as_alice.get(f"/api/v1/decisions/{decision.pk}/receipt/"), 404)
    assert_error_shape(as_alice.get("/api/v1/decisions/999999/receipt/"), 404)


def test_auditors_get_consistency_proofs_between_signed_trees(as_audrey, as_alice, case_owned_by_alice,
                                                              alice_may_refund_500, signing_key):
    # given two checkpoints with a decision between them
    decide(as_alice, case_owned_by_alice, "10.00")
    old = audit_checkpoint_create()
    decide(as_alice, case_owned_by_alice, "20.00")
    new = audit_checkpoint_create()
    # when an auditor asks for the proof that the later tree extends the earlier
    response = as_audrey.get(f"/api/v1/audit-checkpoints/consistency/?old={old.pk}&new={new.pk}")
    # then it verifies with the public key alone
    assert response.status_code == 200, response.content
    assert consistency_verify(response.json(), public_key_pem(signing_key)) == []
    # and an agent may not ask, and nonsense ids are a clear 400
    assert as_alice.get(f"/api/v1/audit-checkpoints/consistency/?old={old.pk}&new={new.pk}").status_code == 403
    assert_error_shape(as_audrey.get("/api/v1/audit-checkpoints/consistency/?old=x&new=1"), 400)
    assert_error_shape(as_audrey.get(f"/api/v1/audit-checkpoints/consistency/?old=999999&new={new.pk}"), 400)
    assert AuditCheckpoint.objects.count() == 2
