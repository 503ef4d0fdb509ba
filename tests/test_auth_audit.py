"""Signing in and out is on the audit record: logins, failures, lockouts, logouts and API tokens."""

import logging

import pytest
from django.db import DatabaseError, OperationalError
from django.test import override_settings
from django.urls import reverse

from h2h_core.audit import record as audit_record_module
from h2h_core.audit.verify import verify_chain
from h2h_core.models import ApiToken, AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "h2h-demo"  # the factories' password
WRONG = "not-her-password-123"


def log_in(client, username, password, request_id="req-1"):
    return client.post(reverse("login"), {"username": username, "password": password}, HTTP_X_REQUEST_ID=request_id)


def no_secret_anywhere(*secrets):
    for row in AuditEvent.objects.values_list("before", "after", "reason", "actor_username"):
        for secret in secrets:
            assert secret not in str(row)


def test_a_login_is_recorded_with_the_ip_and_request_id(client, alice):
    # when alice logs in on the login page
    response = log_in(client, "alice", PASSWORD, request_id="req-login-1")
    # then she is in, and the login is on the record: who, from where, which request
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="auth.logged_in")
    assert (event.actor_username, event.object_id, event.outcome) == ("alice", str(alice.pk), "success")
    assert (event.ip, event.request_id) == ("127.0.0.1", "req-login-1")
    assert verify_chain().ok


def test_a_failed_login_is_recorded_with_the_username_tried_and_never_the_password(client, alice):
    # when someone tries alice's account with a wrong password
    response = log_in(client, "alice", WRONG, request_id="req-fail-1")
    # then the page says so (no error), and the attempt is on the record, without the password
    assert response.status_code == 200 and "didn't match" in response.text
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.outcome == "denied" and event.after["username"] == "alice"
    assert (event.ip, event.request_id, event.actor_id) == ("127.0.0.1", "req-fail-1", None)
    no_secret_anywhere(WRONG)


def test_a_failed_login_for_an_unknown_username_is_recorded_too(client):
    log_in(client, "nobody-here", WRONG)
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.after["username"] == "nobody-here" and event.object_id == ""


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_lockout_is_recorded(client, alice):
    # given two failed attempts
    for _ in range(2):
        log_in(client, "alice", WRONG)
    assert not AuditEvent.objects.filter(action="auth.locked_out").exists()
    # when the third one fails
    log_in(client, "alice", WRONG, request_id="req-lock-1")
    # then the lockout is on the record, and so are all three failures
    lockout = AuditEvent.objects.get(action="auth.locked_out")
    assert lockout.outcome == "denied" and lockout.after["username"] == "alice"
    assert lockout.request_id == "req-lock-1" and lockout.ip == "127.0.0.1"
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 3
    no_secret_anywhere(WRONG)
    assert verify_chain().ok


@override_settings(AXES_FAILURE_LIMIT=3)
def test_failures_and_a_lockout_at_the_api_token_endpoint_are_recorded(client, alice):
    for _ in range(3):
        client.post("/api/v1/auth/token/", {"username": "alice", "password": WRONG}, content_type="application/json")
    assert AuditEvent.objects.filter(action="auth.login_failed").count() == 3
    assert AuditEvent.objects.filter(action="auth.locked_out", after__username="alice").exists()
    assert not ApiToken.objects.exists()


def test_a_logout_is_recorded(client, alice):
    log_in(client, "alice", PASSWORD)
    client.post(reverse("logout"), HTTP_X_REQUEST_ID="req-out-1")
    event = AuditEvent.objects.get(action="auth.logged_out")
    assert (event.actor_username, event.request_id) == ("alice", "req-out-1")


def test_an_issued_api_token_is_recorded_by_its_prefix_only(client, alice):
    # when alice exchanges her password for an API token
    response = client.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD},
                           content_type="application/json", HTTP_X_REQUEST_ID="req-token-1")
    # then the issue is on the record, naming the token by the start of its key only
    key = response.json()["token"]
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.actor_username == "alice" and event.after["key_prefix"] == key[:6]
    assert set(event.after) == {"key_prefix", "token_id", "expires_at"}
    assert event.request_id == "req-token-1"
    no_secret_anywhere(key, PASSWORD)
    assert verify_chain().ok


def test_a_revoked_api_token_is_recorded_and_stops_working(client, alice):
    # given alice holds a token, and an administrator
    key = client.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD},
                      content_type="application/json").json()["token"]
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    # when the administrator revokes it
    client.post(reverse("admin:auth_user_changelist"), {"action": "revoke_api_tokens", "_selected_action": [alice.pk]})
    # then it no longer opens the API, and the revocation is on the record
    client.logout()
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 401
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert event.actor_username == "root" and event.before["key_prefix"] == key[:6]
    no_secret_anywhere(key)
    assert verify_chain().ok


def test_a_failed_login_whose_audit_write_fails_still_fails_plainly_and_is_logged(client, alice, monkeypatch, caplog):
    # given the audit write fails (the database refuses)
    def broken(*args, **kwargs):
        raise DatabaseError("the database refuses")

    monkeypatch.setattr(audit_record_module._APPEND, "insert", broken)
    # when a login fails
    with caplog.at_level(logging.ERROR, logger="h2h.auth"):
        response = log_in(client, "alice", WRONG, request_id="req-broken-1")
    # then the person sees the usual "didn't match" page, still out, and the lost event is logged
    assert response.status_code == 200 and "didn't match" in response.text
    assert "_auth_user_id" not in client.session
    assert any("req-broken-1" in record.getMessage() for record in caplog.records)


def test_a_login_whose_audit_write_fails_does_not_happen(client, alice, monkeypatch):
    # given the audit write fails
    def broken(*args, **kwargs):
        raise DatabaseError("the database refuses")

    monkeypatch.setattr(audit_record_module._APPEND, "insert", broken)
    client.raise_request_exception = False
    # when alice logs in with the right password
    response = log_in(client, "alice", PASSWORD)
    # then it is an error, not a silent success: no session was kept
    assert response.status_code == 500
    assert client.get(reverse("cases:list")).status_code == 302  # sent to the login page


def test_a_login_whose_audit_write_loses_a_lock_race_does_not_happen_either(client, alice, monkeypatch):
    # given the audit write loses a race for the database lock (answered as "try again", not a 500)
    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(audit_record_module._APPEND, "insert", locked)
    # when alice logs in with the right password
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD},
                           HTTP_REFERER="http://testserver/login/")
    # then she is asked to try again, and is not logged in
    assert response.status_code in (302, 409) and response.get("Location", "") != reverse("home")
    monkeypatch.undo()
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("cases:list")).status_code == 302
