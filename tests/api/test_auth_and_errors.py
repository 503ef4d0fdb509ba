"""Getting in (tokens, sessions) and the one error shape, whatever goes wrong."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from h2h_core.models import ApiToken, AuditEvent, Case
from h2h_core.models.tokens import token_digest

from .helpers import assert_error_shape, state

pytestmark = pytest.mark.django_db


def test_a_username_and_password_buy_a_token_that_opens_the_api(alice, client):
    # when alice asks for a token
    response = client.post("/api/v1/auth/token/", {"username": "alice", "password": "h2h-demo"},
                           content_type="application/json")
    # then she gets one, the first issue is audited, and it authenticates her
    assert response.status_code == 200
    token = response.json()["token"]
    assert ApiToken.objects.get(user=alice).digest == token_digest(token) and response.json()["roles"] == ["Agent"]
    assert AuditEvent.objects.filter(action="api_token.created", actor_username="alice").count() == 1
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {token}")
    assert me.status_code == 200 and me.json()["username"] == "alice"


def test_asking_again_issues_another_token_and_both_work(alice, client):
    # given alice already has a token (a key is shown once: it cannot be handed out again)
    first = client.post("/api/v1/auth/token/", {"username": "alice", "password": "h2h-demo"}).json()["token"]
    # when she asks again (as a form post, like curl -d)
    again = client.post("/api/v1/auth/token/", {"username": "alice", "password": "h2h-demo"}).json()["token"]
    # then she has a second token, its issue is recorded too, and both open the API
    assert again != first and AuditEvent.objects.filter(action="api_token.created").count() == 2
    for key in (first, again):
        assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200


def test_a_wrong_password_gets_no_token(alice, client):
    response = client.post("/api/v1/auth/token/", {"username": "alice", "password": "guess"},
                           content_type="application/json")
    assert_error_shape(response, 400, "invalid_credentials")
    assert not ApiToken.objects.exists()


@override_settings(AXES_FAILURE_LIMIT=3)
def test_repeated_wrong_passwords_lock_the_username_out_with_429(alice, client):
    # given three failed attempts from this address
    for _ in range(3):
        client.post("/api/v1/auth/token/", {"username": "alice", "password": "guess"},
                    content_type="application/json")
    # when the right password comes next
    response = client.post("/api/v1/auth/token/", {"username": "alice", "password": "h2h-demo"},
                           content_type="application/json")
    # then the lockout holds, in the error shape, and no token was issued
    body = assert_error_shape(response, 429, "too_many_attempts")
    assert response["Retry-After"] == "900" and body["details"] == {"retry_after_seconds": 900}
    assert not ApiToken.objects.exists()


def test_a_token_request_without_fields_names_them(client):
    body = assert_error_shape(client.post("/api/v1/auth/token/", {}, content_type="application/json"), 400, "invalid")
    assert set(body["details"]) == {"username", "password"}


def test_no_credentials_is_401_with_a_challenge(client):
    response = client.get("/api/v1/cases/")
    assert_error_shape(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_a_bad_token_is_401(client):
    response = client.get("/api/v1/cases/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error_shape(response, 401, "authentication_failed")


def test_a_browser_session_works_for_reads(alice, case_owned_by_alice, client):
    client.force_login(alice)
    response = client.get("/api/v1/cases/")
    assert response.status_code == 200 and response.json()["count"] == 1


def test_a_session_post_without_the_csrf_token_is_refused_and_changes_nothing(alice, case_owned_by_alice):
    # given alice is logged in through the browser, and a page she visits posts for her without the token
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    before = state()
    # when it tries to resolve her case
    response = client.post(f"/api/v1/cases/{case_owned_by_alice.pk}/resolve/", {"summary": "x"}, format="json")
    # then the API refuses and the case is untouched
    assert_error_shape(response, 403, "permission_denied")
    assert "CSRF" in response.json()["message"]
    assert state() == before


def test_an_unknown_address_is_a_json_404(as_alice):
    body = assert_error_shape(as_alice.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert "/api/v1/no-such-thing/" in body["message"]


def test_a_missing_trailing_slash_says_so(as_alice):
    body = assert_error_shape(as_alice.get("/api/v1/cases"), 404, "not_found")
    assert "slash" in body["message"]


def test_an_unknown_id_is_a_404(as_alice):
    assert_error_shape(as_alice.get("/api/v1/cases/999999/"), 404, "not_found")
    assert_error_shape(as_alice.get("/api/v1/cases/99999999999999999999999999/"), 404, "not_found")


def test_a_wrong_method_is_405(as_alice):
    response = as_alice.delete("/api/v1/cases/")
    assert_error_shape(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_a_body_that_is_not_json_is_415_and_changes_nothing(as_alice, case_owned_by_alice):
    before = state()
    response = as_alice.post("/api/v1/cases/", "subject=x", content_type="text/plain")
    assert_error_shape(response, 415, "unsupported_media_type")
    assert state() == before


def test_malformed_json_is_400(as_alice):
    response = as_alice.post("/api/v1/decisions/", "{not json", content_type="application/json")
    assert_error_shape(response, 400, "parse_error")


def test_asking_for_html_is_406(as_alice):
    response = as_alice.get("/api/v1/cases/", HTTP_ACCEPT="text/html")
    assert_error_shape(response, 406, "not_acceptable")


def test_a_bad_filter_is_400_not_an_empty_list(as_alice):
    body = assert_error_shape(as_alice.get("/api/v1/cases/?status=lost&customer=abc"), 400, "invalid")
    assert set(body["details"]) == {"status", "customer"}


def test_a_django_validation_error_from_a_service_becomes_400_with_the_fields(as_alice, case_owned_by_alice):
    # a whitespace-only summary passes the shape check but the service refuses it
    before = state()
    response = as_alice.post(f"/api/v1/cases/{case_owned_by_alice.pk}/resolve/", {"summary": "   "}, format="json")
    body = assert_error_shape(response, 400, "invalid")
    assert "summary" in body["details"]
    assert state() == before and Case.objects.get().status == "owned"


def test_the_schema_and_its_swagger_ui_are_served_without_any_cdn(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "H2H API"
    assert "/api/v1/decisions/" in schema.json()["paths"]
    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")
    assert page.status_code == 200 and script.status_code == 200
    html, js = page.content.decode(), script.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    for text in (html, js):
        assert "cdn" not in text.lower() and "unpkg" not in text and "jsdelivr" not in text
    # the page runs no inline script (the CSP allows scripts from 'self' only)
    assert "<script>" not in html and '"validatorUrl": null' in js


def test_an_address_with_a_newline_in_it_is_still_a_json_404(as_alice):
    assert_error_shape(as_alice.post("/api/v1/grants/%0A/reject/", {}, format="json"), 404, "not_found")


@pytest.mark.parametrize("query", ["page=", "page=0", "page=last", "page_size=", "page_size=0", "page_size=201",
                                   "page_size=x"])
def test_a_bad_page_or_page_size_is_400(as_alice, query):
    body = assert_error_shape(as_alice.get(f"/api/v1/cases/?{query}"), 400, "invalid")
    assert query.split("=")[0] in body["details"]


def test_a_page_past_the_end_is_404(as_alice, case_owned_by_alice):
    assert_error_shape(as_alice.get("/api/v1/cases/?page=2"), 404, "not_found")


def test_the_schema_is_valid_openapi_and_generates_without_warnings(tmp_path):
    # a drf-spectacular warning would also fail `manage.py check --deploy`
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")
