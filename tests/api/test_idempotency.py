"""Idempotency-Key: a retried POST is answered once and never done twice."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from authority.models import AuthorityRequest, Decision, IdempotencyRecord
from edges.api.idempotency import IN_PROGRESS_TIMEOUT, fingerprint_of
from h2h_core.models import AuditEvent, Case
from tests.factories import successful_audit_events

from .helpers import assert_error_shape, idempotency_records, state

pytestmark = pytest.mark.django_db

DECISIONS = "/api/v1/decisions/"


def refund(on_case, amount="200.00", **overrides):
    return {"case": on_case.pk, "kind": "refund", "amount": amount, "currency": "EUR",
            "rationale": "Double charge in March", **overrides}


def test_a_replay_returns_the_stored_response_and_executes_nothing_more(as_alice, case_owned_by_alice,
                                                                        alice_may_refund_500):
    # given a decision made with a key
    first = as_alice.post(DECISIONS, refund(case_owned_by_alice), format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert first.status_code == 201
    before, events = state(), successful_audit_events()
    # when the client retries it (its connection dropped before the answer)
    again = as_alice.post(DECISIONS, refund(case_owned_by_alice), format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    # then it gets the same status and body, marked as a replay, and nothing happens twice
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert state() == before and successful_audit_events() == events and Decision.objects.count() == 1


def test_the_same_key_with_a_different_payload_is_422_and_changes_nothing(as_alice, case_owned_by_alice,
                                                                         alice_may_refund_500):
    as_alice.post(DECISIONS, refund(case_owned_by_alice), format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    before = state()
    response = as_alice.post(DECISIONS, refund(case_owned_by_alice, "300.00"), format="json",
                             HTTP_IDEMPOTENCY_KEY="refund-1")
    assert_error_shape(response, 422, "idempotency_conflict")
    assert state() == before and Decision.objects.count() == 1


def test_the_same_key_on_another_endpoint_is_422(as_alice, case_owned_by_alice, alice_may_refund_500):
    as_alice.post(DECISIONS, refund(case_owned_by_alice), format="json", HTTP_IDEMPOTENCY_KEY="k")
    response = as_alice.post("/api/v1/authority-requests/", refund(case_owned_by_alice), format="json",
                             HTTP_IDEMPOTENCY_KEY="k")
    assert_error_shape(response, 422, "idempotency_conflict")
    assert not AuthorityRequest.objects.exists()


def test_a_replay_while_the_first_is_still_running_is_409_and_changes_nothing(as_alice, alice, case_owned_by_alice,
                                                                             alice_may_refund_500):
    # given the first request with this key is still being processed (its record is in progress)
    payload = refund(case_owned_by_alice)
    IdempotencyRecord.objects.create(user=alice, key="refund-1", endpoint=f"POST {DECISIONS}",
                                     fingerprint=fingerprint_of(endpoint=f"POST {DECISIONS}", body=payload),
                                     created_at=timezone.now())
    before = state()
    # when the retry arrives
    response = as_alice.post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    # then it is told to come back, and nothing was executed
    assert_error_shape(response, 409, "idempotency_in_progress")
    assert state() == before and not Decision.objects.exists()


def test_a_record_left_in_progress_by_a_dead_process_is_taken_over(as_alice, alice, case_owned_by_alice,
                                                                   alice_may_refund_500):
    # given a record stuck in progress for longer than any request runs
    payload = refund(case_owned_by_alice)
    IdempotencyRecord.objects.create(user=alice, key="refund-1", endpoint=f"POST {DECISIONS}",
                                     fingerprint=fingerprint_of(endpoint=f"POST {DECISIONS}", body=payload),
                                     created_at=timezone.now() - IN_PROGRESS_TIMEOUT - timedelta(seconds=1))
    # when the client retries
    response = as_alice.post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    # then the retry runs it once, and stores the answer
    assert response.status_code == 201 and Decision.objects.count() == 1
    assert idempotency_records() == [("refund-1", "done", 201)]


def test_a_refusal_is_stored_and_replayed_as_it_was(as_alice, case_owned_by_alice, alice_may_refund_500):
    first = as_alice.post(DECISIONS, refund(case_owned_by_alice, "1200.00"), format="json",
                          HTTP_IDEMPOTENCY_KEY="big")
    refusals = AuditEvent.objects.filter(action="decision.refused").count()
    again = as_alice.post(DECISIONS, refund(case_owned_by_alice, "1200.00"), format="json",
                          HTTP_IDEMPOTENCY_KEY="big")
    assert first.status_code == again.status_code == 403 and again.json() == first.json()
    assert AuditEvent.objects.filter(action="decision.refused").count() == refusals == 1


def test_a_request_rejected_as_malformed_releases_its_key(as_alice, case_owned_by_alice, alice_may_refund_500):
    # given a first try with a malformed amount
    bad = as_alice.post(DECISIONS, refund(case_owned_by_alice, "abc"), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert_error_shape(bad, 400, "invalid")
    assert idempotency_records() == []
    # when the client fixes it and retries with the same key
    good = as_alice.post(DECISIONS, refund(case_owned_by_alice), format="json", HTTP_IDEMPOTENCY_KEY="k")
    # then it runs
    assert good.status_code == 201


@pytest.mark.parametrize("key", ["", "   ", "x" * 101])
def test_an_unusable_key_is_400_and_changes_nothing(as_alice, case_owned_by_alice, alice_may_refund_500, key):
    before = state()
    response = as_alice.post(DECISIONS, refund(case_owned_by_alice), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert "Idempotency-Key" in assert_error_shape(response, 400, "invalid")["details"]
    assert state() == before and idempotency_records() == []


def test_keys_belong_to_their_user(as_alice, as_bob, bob, case_owned_by_alice, alice_may_refund_500, retention):
    # given alice used a key
    as_alice.post(DECISIONS, refund(case_owned_by_alice), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    # when bob uses the same key on his own case
    from tests.factories import CaseFactory

    from .helpers import grant_refund

    grant_refund(bob)
    bobs_case = CaseFactory(team=retention, owner=bob)
    response = as_bob.post(DECISIONS, refund(bobs_case), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    # then his request is his own, not a replay of alice's
    assert response.status_code == 201 and response.json()["agent"] == "bob"


def test_opening_an_authority_request_is_idempotent(as_alice, case_owned_by_alice, alice_may_refund_500,
                                                    maria_may_refund_5000):
    payload = {"case": case_owned_by_alice.pk, "kind": "refund", "amount": "1200.00", "currency": "EUR",
               "justification": "Long-standing customer, triple charge"}
    first = as_alice.post("/api/v1/authority-requests/", payload, format="json", HTTP_IDEMPOTENCY_KEY="req-1")
    again = as_alice.post("/api/v1/authority-requests/", payload, format="json", HTTP_IDEMPOTENCY_KEY="req-1")
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert AuthorityRequest.objects.count() == 1


def test_opening_a_case_is_idempotent(as_alice, retention):
    from tests.factories import CustomerFactory

    payload = {"customer": CustomerFactory().pk, "subject": "Renewal failed", "category": "renewal",
               "amount_at_stake": "100.00", "currency": "EUR"}
    first = as_alice.post("/api/v1/cases/", payload, format="json", HTTP_IDEMPOTENCY_KEY="crm-4711")
    again = as_alice.post("/api/v1/cases/", payload, format="json", HTTP_IDEMPOTENCY_KEY="crm-4711")
    assert first.status_code == again.status_code == 201 and Case.objects.count() == 1


def test_an_unexpected_error_is_a_500_in_the_error_shape_and_releases_the_key(as_alice, case_owned_by_alice,
                                                                              alice_may_refund_500, monkeypatch):
    # given the service fails in a way nobody planned for
    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("edges.api.views.decisions.decision_execute", broken)
    # when a decision is posted with a key
    response = as_alice.post(DECISIONS, refund(case_owned_by_alice), format="json", HTTP_IDEMPOTENCY_KEY="k")
    # then the answer is a 500 in the one error shape, without the internals, and the key is free again
    body = assert_error_shape(response, 500, "server_error")
    assert "disk" not in body["message"]
    assert idempotency_records() == [] and not Decision.objects.exists()


# --- two retries at the same instant (PostgreSQL) ----------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent transactions")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_retries_at_the_same_instant_execute_once(alice, retention, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from tests.factories import CaseFactory

    from .helpers import client_for, grant_refund

    # given alice's case and authority, and eight copies of one request with one key
    grant_refund(alice)
    case = CaseFactory(owner=alice, team=retention)
    payload = refund(case)
    barrier = threading.Barrier(8)
    answers, errors = [], []

    def retry():
        try:
            client = client_for(alice)
            barrier.wait(timeout=30)
            response = client.post(DECISIONS, payload, format="json", HTTP_IDEMPOTENCY_KEY="same")
            answers.append((response.status_code, response.json()))
        except BaseException as error:  # reported to the main thread
            errors.append(error)
        finally:
            connection.close()

    # when they all arrive at once
    threads = [threading.Thread(target=retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    # then one decision exists; every answer is that decision or "still in progress"
    (decision,) = Decision.objects.all()
    assert {status for status, _ in answers} <= {201, 409} and len(answers) == 8
    assert all(body["id"] == decision.pk for status, body in answers if status == 201)
    assert all(body["code"] == "idempotency_in_progress" for status, body in answers if status == 409)
    assert idempotency_records() == [("same", "done", 201)]
