"""Verifying the audit chain through the API: asked for in one request, run by a worker, read back from the runs.

No request recomputes the chain: GET answers from the stored runs, POST queues one (at most one is
queued or running), and a worker runs it (`run_jobs`).
"""

from unittest import mock

import pytest
from django.db import transaction

from h2h_core.audit import audit_record, audit_seal
from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key
from h2h_core.models import AuditEvent, ChainVerification
from tests.jobs import queued, run_jobs

from .helpers import assert_error_shape, audit_actions, idempotency_records

pytestmark = pytest.mark.django_db

VERIFY = "/api/v1/audit-verify/"
Status = ChainVerification.Status


def record(count):
    for number in range(count):
        with transaction.atomic():
            audit_record(actor=None, action="case.note_added", object_type="case", object_id=number + 1)
    audit_seal()  # when the sealer has run (PostgreSQL; SQLite links at once)


def verification_rows() -> list[tuple]:
    return list(ChainVerification.objects.order_by("pk").values_list("pk", "status", "mode"))


def test_with_no_runs_yet_both_the_latest_and_the_active_run_are_null(as_audrey):
    # given a chain that was never verified
    record(2)
    # when audrey asks for the verification's state
    response = as_audrey.get(VERIFY)
    # then there is neither a finished nor an active run
    assert response.status_code == 200
    assert response.json() == {"latest": None, "active": None}


def test_a_request_queues_one_run_that_a_worker_runs_and_the_get_then_shows_passed(as_audrey):
    # given three events
    record(3)
    # when audrey asks for a verification
    response = as_audrey.post(VERIFY, {}, format="json")
    # then it is accepted, queued with its job, and its detail is where Location says
    assert response.status_code == 202, response.json()
    queued_run = response.json()
    assert queued_run["status"] == "queued" and queued_run["mode"] == "incremental"
    assert queued_run["already_active"] is False and queued_run["requested_by"] == "audrey"
    assert [(pk, status) for pk, status, _mode in verification_rows()] == [(queued_run["id"], Status.QUEUED)]
    assert queued("chain_verification_run").count() == 1
    assert response["Location"] == f"/api/v1/audit-verifications/{queued_run['id']}/"
    assert as_audrey.get(response["Location"]).json()["status"] == "queued"
    assert as_audrey.get(VERIFY).json() == {"latest": None, "active": as_audrey.get(response["Location"]).json()}
    # and when a worker runs it
    assert run_jobs() == 1
    # then GET shows it passed, with what it checked, and nothing is active
    state = as_audrey.get(VERIFY).json()
    assert state["active"] is None
    latest = state["latest"]
    assert (latest["id"], latest["status"], latest["first_bad_seq"]) == (queued_run["id"], "passed", None)
    # entries 1-3 and the request's own audit event (4) were verified
    assert (latest["from_seq"], latest["to_seq"], latest["events_checked"]) == (1, 4, 4)
    assert latest["summary"].startswith("Audit chain intact")
    assert latest["finished_at"] is not None and latest["requested_at"] is not None
    assert latest["checkpoint_results"] == []


def test_a_run_shows_each_signed_checkpoint_it_checked(as_audrey, settings, tmp_path):
    # given three events sealed by a signed checkpoint (its signing is entry 4)
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "audit_signing_key.pem"
    settings.H2H_AUDIT_PUBLIC_KEY = ""
    generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)
    record(3)
    checkpoint = audit_checkpoint_create()
    # when a full run is requested and a worker runs it
    as_audrey.post(VERIFY, {"full": True}, format="json")
    run_jobs()
    # then the run lists the checkpoint, proven
    latest = as_audrey.get(VERIFY).json()["latest"]
    assert latest["status"] == "passed"
    [result] = latest["checkpoint_results"]
    assert (result["id"], result["seq"], result["hash"]) == (checkpoint.pk, 3, checkpoint.hash)
    assert (result["event_seq"], result["ok"], result["signature_valid"], result["matches_chain"]) == (4, True, True,
                                                                                                     True)
    assert result["signed_at"].endswith("Z")


def test_a_full_run_is_asked_for_with_full_true(as_audrey):
    response = as_audrey.post(VERIFY, {"full": True}, format="json")
    assert response.status_code == 202
    assert response.json()["mode"] == "full"
    assert verification_rows() == [(response.json()["id"], Status.QUEUED, "full")]


def test_a_request_while_one_is_queued_gets_that_one_and_queues_no_second(as_audrey):
    # given a run that is queued
    first = as_audrey.post(VERIFY, {"full": True}, format="json").json()
    requested_events = audit_actions().count("audit.verification_requested")
    # when audrey asks again
    response = as_audrey.post(VERIFY, {}, format="json")
    # then she gets the queued one, said to be already active, and no second row, job or request event
    assert response.status_code == 200
    again = response.json()
    assert (again["id"], again["mode"], again["already_active"]) == (first["id"], "full", True)
    assert "Location" not in response
    assert verification_rows() == [(first["id"], Status.QUEUED, "full")]
    assert queued("chain_verification_run").count() == 1
    assert audit_actions().count("audit.verification_requested") == requested_events


def test_a_run_over_a_tampered_chain_is_shown_failed_with_the_first_bad_entry(as_audrey, bypass_audit_triggers):
    # given three events, the second rewritten behind the chain's back
    record(3)
    with bypass_audit_triggers():
        AuditEvent.objects.filter(seq=2).update(reason="rewritten behind the chain's back")
    # when audrey asks for a verification and a worker runs it
    assert as_audrey.post(VERIFY, {}, format="json").status_code == 202
    run_jobs()
    # then the latest run failed at entry 2
    latest = as_audrey.get(VERIFY).json()["latest"]
    assert (latest["status"], latest["first_bad_seq"]) == ("failed", 2)
    assert "BROKEN at entry 2" in latest["summary"]


def test_get_answers_from_the_stored_runs_without_recomputing_the_chain(as_audrey):
    # given a finished run
    record(2)
    as_audrey.post(VERIFY, {}, format="json")
    run_jobs()
    # when the chain check could not even start, audrey still reads the stored result at once
    with mock.patch("h2h_core.audit.verify.verify_chain", side_effect=AssertionError("recomputed")), \
            mock.patch("h2h_core.audit.verification.verify_chain", side_effect=AssertionError("recomputed")):
        response = as_audrey.get(VERIFY)
    assert response.status_code == 200
    assert response.json()["latest"]["status"] == "passed"


def test_a_run_that_could_not_complete_is_the_latest_with_status_error(as_audrey):
    # given a queued run whose check raises in the worker
    as_audrey.post(VERIFY, {}, format="json")
    with mock.patch("h2h_core.audit.verification.verify_chain", side_effect=RuntimeError("database gone")):
        run_jobs()
    # then GET shows it as an error, with the reason
    latest = as_audrey.get(VERIFY).json()["latest"]
    assert latest["status"] == "error" and "database gone" in latest["summary"]


def test_a_superuser_may_ask_for_a_verification(admin_user):
    from .helpers import client_for

    response = client_for(admin_user).post(VERIFY, {}, format="json")
    assert response.status_code == 202
    assert response.json()["requested_by"] == admin_user.username


@pytest.mark.parametrize("persona", ["as_alice", "as_maria"])
def test_others_asking_for_a_verification_are_refused_and_nothing_is_queued(request, persona):
    # given an agent or a manager
    client = request.getfixturevalue(persona)
    events_before = audit_actions()
    # when they ask for a verification
    response = client.post(VERIFY, {"full": True}, format="json", HTTP_IDEMPOTENCY_KEY="verify-1")
    # then they are refused, and no run, job, audit event or idempotency record was made
    assert_error_shape(response, 403, "permission_denied")
    assert verification_rows() == []
    assert not queued().exists()
    assert audit_actions() == events_before
    assert idempotency_records() == []
    # and they may not read the state either
    assert_error_shape(client.get(VERIFY), 403, "permission_denied")


def test_a_run_is_read_by_auditors_and_is_404_for_everyone_else(as_audrey, as_alice, as_maria):
    # given a queued run
    location = as_audrey.post(VERIFY, {}, format="json")["Location"]
    # then audrey reads it; an agent and a manager get 404, as if it did not exist
    assert as_audrey.get(location).json()["status"] == "queued"
    for client in (as_alice, as_maria):
        assert_error_shape(client.get(location), 404, "not_found")
    # and a run that does not exist is 404 for auditors too
    assert_error_shape(as_audrey.get("/api/v1/audit-verifications/999999/"), 404, "not_found")
    assert_error_shape(as_audrey.get("/api/v1/audit-verifications/99999999999999999999999999/"), 404, "not_found")


@pytest.mark.parametrize("payload", [{"full": "perhaps"}, {"full": None}, ["full"], "full"])
def test_a_malformed_request_is_400_and_queues_nothing(as_audrey, payload):
    response = as_audrey.post(VERIFY, payload, format="json")
    assert_error_shape(response, 400)
    assert verification_rows() == []
    assert not queued().exists()


def test_a_request_without_a_body_is_an_incremental_run(as_audrey):
    response = as_audrey.post(VERIFY)
    assert response.status_code == 202, response.content
    assert response.json()["mode"] == "incremental"


def test_a_retried_request_with_the_same_idempotency_key_replays_the_first_answer(as_audrey):
    # given a request that queued a run
    first = as_audrey.post(VERIFY, {"full": True}, format="json", HTTP_IDEMPOTENCY_KEY="verify-7")
    assert first.status_code == 202
    # when it is retried with the same key
    again = as_audrey.post(VERIFY, {"full": True}, format="json", HTTP_IDEMPOTENCY_KEY="verify-7")
    # then the first answer is replayed, and still only one run exists
    assert again.status_code == 202 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(verification_rows()) == 1
    # and the same key for another payload is refused
    assert_error_shape(as_audrey.post(VERIFY, {"full": False}, format="json", HTTP_IDEMPOTENCY_KEY="verify-7"),
                       422)


def test_reading_the_state_costs_a_fixed_number_of_queries(as_audrey, django_assert_max_num_queries):
    # given a finished run and a queued one
    as_audrey.post(VERIFY, {}, format="json")
    run_jobs()
    as_audrey.post(VERIFY, {}, format="json")
    # then reading both is a handful of queries (auth and the two runs with their requesters)
    with django_assert_max_num_queries(5):
        state = as_audrey.get(VERIFY).json()
    assert state["latest"]["status"] == "passed" and state["active"]["status"] == "queued"
