"""A service that lost a race for a lock is answered 409 with Retry-After, never a 500."""

from unittest import mock

import psycopg.errors
import pytest
from django.db import OperationalError

from authority.models import AuthorityRequest, IdempotencyRecord

from .helpers import assert_error_shape

pytestmark = pytest.mark.django_db

REQUESTS = "/api/v1/authority-requests/"


def driver_error(error_class, text: str) -> OperationalError:
    """Return the error Django raises when the driver raised `error_class`: its own, caused by the driver's."""
    try:
        try:
            raise error_class(text)
        except psycopg.Error as raised:
            raise OperationalError(*raised.args) from raised
    except OperationalError as wrapped:
        return wrapped


def ask(on_case):
    return {"case": on_case.pk, "kind": "refund", "amount": "1200.00", "currency": "EUR",
            "justification": "Charged three times"}


@pytest.mark.parametrize("error", [
    pytest.param(lambda: driver_error(psycopg.errors.DeadlockDetected, "deadlock detected"), id="deadlock-40P01"),
    pytest.param(lambda: driver_error(psycopg.errors.SerializationFailure, "could not serialize access"),
                 id="serialization-40001"),
    pytest.param(lambda: driver_error(psycopg.errors.LockNotAvailable, "could not obtain lock"),
                 id="lock-not-available-55P03"),
    pytest.param(lambda: OperationalError("database is locked"), id="sqlite-busy"),
])
def test_a_request_that_loses_a_lock_race_is_a_409_with_retry_after(as_alice, case_owned_by_alice, error):
    # given the request service loses a race for a lock (the database rolled it back)
    with mock.patch("workflows.steps.requests.authority_request_open", side_effect=error()):
        # when alice opens a request
        response = as_alice.post(REQUESTS, ask(case_owned_by_alice), format="json")
    # then the API says "try again" in its error shape, with Retry-After, and nothing was created
    body = assert_error_shape(response, 409, "contention")
    assert response["Retry-After"] == "1"
    assert body["details"] == {"retry_after_seconds": 1}
    assert "nothing was saved" in body["message"]
    assert AuthorityRequest.objects.count() == 0


def test_other_database_errors_stay_a_500(as_alice, case_owned_by_alice):
    # given the service fails with a database error that is not contention
    failure = driver_error(psycopg.errors.DiskFull, "could not extend file")
    with mock.patch("workflows.steps.requests.authority_request_open", side_effect=failure):
        response = as_alice.post(REQUESTS, ask(case_owned_by_alice), format="json")
    # then it is still reported as our failure, not as something to retry
    assert_error_shape(response, 500, "server_error")
    assert "Retry-After" not in response


def test_a_contended_request_releases_its_idempotency_key_so_the_retry_runs(as_alice, case_owned_by_alice,
                                                                            alice_may_refund_500,
                                                                            maria_may_refund_5000):
    # given the first attempt with a key loses a lock race
    deadlock = driver_error(psycopg.errors.DeadlockDetected, "deadlock detected")
    with mock.patch("workflows.steps.requests.authority_request_open", side_effect=deadlock):
        first = as_alice.post(REQUESTS, ask(case_owned_by_alice), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 409
    assert IdempotencyRecord.objects.count() == 0
    # when she retries after Retry-After with the same key
    retry = as_alice.post(REQUESTS, ask(case_owned_by_alice), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    # then the retry runs (it is not a replay of the 409) and opens the request once
    assert retry.status_code == 201, retry.json()
    assert "Idempotent-Replayed" not in retry
    assert AuthorityRequest.objects.count() == 1
