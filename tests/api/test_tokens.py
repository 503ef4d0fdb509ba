"""API tokens: kept only as a digest, expiring, revocable by their owner, ended by a password change."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from h2h_core.access import roles_of
from h2h_core.api_tokens import api_token_authenticate, api_token_issue, api_tokens_purge
from h2h_core.audit.verify import verify_chain
from h2h_core.models import ApiToken, AuditEvent, Role
from h2h_core.people import user_set_password
from tests.factories import UserFactory, role
from tests.jobs import run_jobs

from .helpers import assert_error_shape

pytestmark = pytest.mark.django_db

User = get_user_model()
TOKEN = "/api/v1/auth/token/"
TOKENS = "/api/v1/auth/tokens/"
ME = "/api/v1/me/"


def ask_for_token(client, username="alice", password="h2h-demo"):
    return client.post(TOKEN, {"username": username, "password": password}, content_type="application/json")


def with_key(key):
    return {"HTTP_AUTHORIZATION": f"Token {key}"}


def me_status(client, key) -> int:
    return client.get(ME, **with_key(key)).status_code


def token_rows() -> list[tuple]:
    return list(ApiToken.objects.order_by("pk").values_list("pk", "user_id", "digest"))


def revocations() -> int:
    return AuditEvent.objects.filter(action="api_token.revoked").count()


# --- kept only as a digest ---------------------------------------------------------------------


def test_the_key_is_shown_once_and_stored_only_as_its_digest_and_prefix(alice, client):
    # when alice asks for a token
    body = ask_for_token(client).json()
    key = body["token"]
    # then the database keeps the SHA-256 of the key and its first characters, never the key
    row = ApiToken.objects.values().get()
    assert row["digest"] == hashlib.sha256(key.encode()).hexdigest()
    assert row["prefix"] == key[:6] == body["prefix"] and body["id"] == row["id"]
    assert not any(key in str(value) for value in row.values())
    # and the key opens the API
    assert me_status(client, key) == 200


def test_a_key_never_starts_with_a_dash_so_it_can_follow_token_on_a_command_line(alice, monkeypatch):
    # given a random source whose first draw starts with a dash, as 1 key in 64 would
    draws = iter(["-" + "a" * 42, "b" * 43])
    monkeypatch.setattr("h2h_core.api_tokens.secrets.token_urlsafe", lambda nbytes: next(draws))
    # when a token is issued
    issued = api_token_issue(actor=alice, user=alice)
    # then its key is the next draw, and that is the key stored
    assert issued.key == "b" * 43
    assert ApiToken.objects.get().digest == hashlib.sha256(issued.key.encode()).hexdigest()


@pytest.mark.parametrize("roles", [(Role.AGENT, Role.MANAGER), ()])
def test_the_token_brings_its_users_roles_in_the_same_statement(roles, django_assert_num_queries):
    # given a user with these roles and a token of hers
    user = UserFactory(username="rhea")
    user.groups.set([role(name) for name in roles])
    issued = api_token_issue(actor=user, user=user)
    # when the key authenticates and her roles are asked for
    with django_assert_num_queries(1):
        token = api_token_authenticate(key=issued.key)
        found = roles_of(token.user)
    # then one statement answered both, with her roles exactly
    assert token.pk == issued.token.pk and token.user.pk == user.pk
    assert found == frozenset(roles)


def test_a_key_that_differs_from_an_issued_one_is_refused(alice, client):
    key = ask_for_token(client).json()["token"]
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert_error_shape(client.get(ME, **with_key(forged)), 401, "authentication_failed")


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token " + "x" * 5000, "Token ключ"])
def test_a_malformed_token_header_is_a_401_not_an_error(client, header):
    response = client.get(ME, HTTP_AUTHORIZATION=header)
    assert_error_shape(response, 401)


# --- expiry ------------------------------------------------------------------------------------


def test_a_token_expires_after_the_configured_days(alice, client, settings):
    # given tokens last 2 days
    settings.H2H_API_TOKEN_DAYS = 2
    before = timezone.now()
    key = ask_for_token(client).json()["token"]
    token = ApiToken.objects.get()
    assert before + timedelta(days=2) <= token.expires_at <= timezone.now() + timedelta(days=2)
    # when the expiry passes
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # then the token gets a 401 that says it expired and what to do
    body = assert_error_shape(client.get(ME, **with_key(key)), 401, "token_expired")
    assert "expired" in body["message"] and "ask for a new one" in body["message"]


def test_the_purge_job_deletes_expired_tokens_only_and_records_it(alice, maria):
    # given an expired token of alice's and a live one of maria's
    expired = api_token_issue(actor=alice, user=alice).token
    live = api_token_issue(actor=maria, user=maria).token
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    # when the purge job runs (twice: a second run finds nothing)
    api_tokens_purge.enqueue()
    api_tokens_purge.enqueue()
    assert run_jobs() == 2
    # then only the expired token is gone, and the purge is on the record once
    assert list(ApiToken.objects.values_list("pk", flat=True)) == [live.pk]
    assert AuditEvent.objects.get(action="api_token.expired_purged").after == {"count": 1}
    assert verify_chain().ok


# --- revocation by the owner -------------------------------------------------------------------


def test_delete_auth_token_revokes_the_token_of_the_request_only(alice, client):
    # given alice holds two tokens
    first, second = ask_for_token(client).json()["token"], ask_for_token(client).json()["token"]
    # when she revokes the first with a request made with it
    response = client.delete(TOKEN, **with_key(first))
    # then that one is revoked, the other still works, and the revocation is on the record
    assert response.status_code == 204
    assert_error_shape(client.get(ME, **with_key(first)), 401, "authentication_failed")
    assert me_status(client, second) == 200
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert event.actor_username == "alice" and event.before["key_prefix"] == first[:6]
    assert first not in str(event.before) and verify_chain().ok


def test_delete_auth_token_from_a_browser_session_revokes_nothing(alice, client):
    # given alice holds a token and is logged in through the browser
    key = ask_for_token(client).json()["token"]
    client.force_login(alice)
    before = token_rows()
    # when the session (no token) asks to revoke "the token of this request"
    response = client.delete(TOKEN)
    # then it is refused with what to do instead, and nothing changed
    body = assert_error_shape(response, 400, "not_token_authenticated")
    assert "/api/v1/auth/tokens/" in body["message"]
    assert token_rows() == before and revocations() == 0 and me_status(client, key) == 200


def test_the_owner_lists_her_tokens_without_any_secret(alice, maria, client, django_assert_max_num_queries):
    # given alice holds three tokens, one expired, and maria holds one
    keys = [ask_for_token(client).json()["token"] for _ in range(3)]
    ask_for_token(client, "maria")
    oldest = ApiToken.objects.filter(user=alice).order_by("pk").first()
    ApiToken.objects.filter(pk=oldest.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # when she lists her tokens with the newest
    with django_assert_max_num_queries(4):
        response = client.get(TOKENS, **with_key(keys[-1]))
    # then she sees her three, newest first, which one this request used, and which expired; no key, no digest
    assert response.status_code == 200
    rows = response.json()["results"]
    assert response.json()["count"] == 3
    assert [row["prefix"] for row in rows] == [key[:6] for key in reversed(keys)]
    assert [row["current"] for row in rows] == [True, False, False]
    assert [row["state"] for row in rows] == ["active", "active", "token_expired"]
    assert set(rows[0]) == {"id", "prefix", "created_at", "expires_at", "state", "current"}
    text = response.content.decode()
    for token in ApiToken.objects.all():
        assert token.digest not in text and token.password_fingerprint not in text
    assert not any(key in text for key in keys)


def test_the_owner_revokes_another_of_her_tokens_by_id(alice, client):
    kept, other = ask_for_token(client).json(), ask_for_token(client).json()
    response = client.delete(f"{TOKENS}{other['id']}/", **with_key(kept["token"]))
    assert response.status_code == 204
    assert me_status(client, other["token"]) == 401 and me_status(client, kept["token"]) == 200
    assert AuditEvent.objects.get(action="api_token.revoked").before["token_id"] == other["id"]


@pytest.mark.parametrize("which", ["another_users", "unknown", "huge"])
def test_revoking_a_token_that_is_not_yours_is_a_404_and_changes_nothing(alice, maria, client, which):
    # given alice and maria each hold a token
    alices = ask_for_token(client).json()
    marias = ask_for_token(client, "maria").json()
    token_id = {"another_users": marias["id"], "unknown": marias["id"] + 100, "huge": 10**30}[which]
    before = token_rows()
    # when alice tries to revoke a token by an id that is not one of hers
    response = client.delete(f"{TOKENS}{token_id}/", **with_key(alices["token"]))
    # then it is a 404, and every token still works
    assert_error_shape(response, 404, "not_found")
    assert token_rows() == before and revocations() == 0
    assert me_status(client, marias["token"]) == 200 and me_status(client, alices["token"]) == 200


def test_listing_and_revoking_tokens_needs_credentials(alice, client):
    ask_for_token(client)
    before = token_rows()
    assert_error_shape(client.get(TOKENS), 401, "not_authenticated")
    assert_error_shape(client.delete(f"{TOKENS}{before[0][0]}/"), 401, "not_authenticated")
    assert_error_shape(client.delete(TOKEN), 401, "not_authenticated")
    assert token_rows() == before


# --- a password change ends every token -------------------------------------------------------


def test_a_password_change_through_the_service_ends_the_users_tokens(alice, maria, client):
    # given alice and maria hold tokens
    alices, marias = ask_for_token(client).json()["token"], ask_for_token(client, "maria").json()["token"]
    # when alice changes her password
    user_set_password(actor=alice, user=alice, password="A-new-long-passphrase-9")
    # then her token says why it stopped working; maria's is untouched
    body = assert_error_shape(client.get(ME, **with_key(alices)), 401, "token_password_changed")
    assert "password changed" in body["message"]
    assert me_status(client, marias) == 200
    # and a token asked for with the new password works
    fresh = ask_for_token(client, password="A-new-long-passphrase-9").json()["token"]
    assert me_status(client, fresh) == 200


def test_a_password_set_in_the_admin_ends_the_users_tokens(alice, client):
    # given alice holds a token, and an administrator
    key = ask_for_token(client).json()["token"]
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    # when the administrator sets a new password for alice
    response = client.post(reverse("admin:auth_user_password_change", args=[alice.pk]),
                           {"password1": "Correct-horse-42", "password2": "Correct-horse-42",
                            "usable_password": "true"})
    assert response.status_code == 302
    client.logout()
    # then her token no longer opens the API
    assert_error_shape(client.get(ME, **with_key(key)), 401, "token_password_changed")


def test_a_password_disabled_in_the_admin_ends_the_users_tokens(alice, client):
    key = ask_for_token(client).json()["token"]
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    client.post(reverse("admin:auth_user_password_change", args=[alice.pk]),
                {"usable_password": "false", "unset-password": "1"})
    client.logout()
    assert not User.objects.get(pk=alice.pk).has_usable_password()
    assert_error_shape(client.get(ME, **with_key(key)), 401, "token_password_changed")


def test_a_password_changed_outside_the_services_ends_the_users_tokens_too(alice, client):
    # given alice holds a token
    key = ask_for_token(client).json()["token"]
    # when her password is changed the way `manage.py changepassword` or a shell does it
    user = User.objects.get(pk=alice.pk)
    user.set_password("Changed-in-a-shell-5")
    user.save()
    # then the token stops working all the same
    assert_error_shape(client.get(ME, **with_key(key)), 401, "token_password_changed")


def test_a_deactivated_account_s_token_is_refused(alice, client):
    key = ask_for_token(client).json()["token"]
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert_error_shape(client.get(ME, **with_key(key)), 401, "user_inactive")


def test_asking_for_a_token_ignores_a_stale_token_in_the_header(alice, client):
    # given alice's old token stopped working with a password change
    old = ask_for_token(client).json()["token"]
    user_set_password(actor=alice, user=alice, password="A-new-long-passphrase-9")
    # when her client asks for a new token still sending the old one
    response = client.post(TOKEN, {"username": "alice", "password": "A-new-long-passphrase-9"},
                           content_type="application/json", **with_key(old))
    # then the credentials decide, not the stale header
    assert response.status_code == 200 and me_status(client, response.json()["token"]) == 200


def test_a_token_of_an_integration_account_opens_the_api(db, client):
    UserFactory(username="crm", roles=[Role.AGENT])
    key = ask_for_token(client, "crm").json()["token"]
    assert client.get(ME, **with_key(key)).json()["username"] == "crm"
