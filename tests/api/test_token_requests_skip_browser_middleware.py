"""Token API requests pass the browser's middleware by (sessions, CSRF, the session user, messages, form
tokens); browsers keep all of it, and every request keeps the security headers, the request id and the
NUL guard (edges.web.middleware.browser_only)."""

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext

from authority.models import Decision
from edges.web.middleware import BrowserMessageMiddleware, BrowserSessionMiddleware, is_token_api_request
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db


def refund(case):
    return {"case": case.pk, "kind": "refund", "amount": "20.00", "currency": "EUR", "rationale": "Late delivery"}


def seen_by_view(request) -> HttpResponse:
    request.seen = {"session": hasattr(request, "session"), "messages": hasattr(request, "_messages")}
    return HttpResponse("ok")


@pytest.mark.parametrize(("path", "authorization", "token_api"), [
    ("/api/v1/decisions/", "Token abc", True),
    ("/api/v1/decisions/", "token abc", True),
    ("/api/v1/decisions/", "", False),
    ("/api/v1/decisions/", "Basic abc", False),
    ("/cases/", "Token abc", False),
])
def test_only_an_api_request_naming_a_token_passes_the_browser_middleware_by(path, authorization, token_api):
    # given a request, and the session and message middleware in front of a view
    request = RequestFactory().post(path, HTTP_AUTHORIZATION=authorization) if authorization else \
        RequestFactory().post(path)
    chain = BrowserSessionMiddleware(BrowserMessageMiddleware(seen_by_view))
    # when it passes them
    chain(request)
    # then a token API request got neither a session nor messages; any other got both
    assert is_token_api_request(request) is token_api
    assert request.seen == {"session": not token_api, "messages": not token_api}


def test_a_token_request_touches_no_session_and_sets_no_cookie(as_alice, alice, case_owned_by_alice):
    # given alice may refund, and her client also carries a browser session's cookie
    GrantFactory(subject_user=alice)
    as_alice.force_login(alice)
    sessions = Session.objects.count()
    # when she decides through the API with her token
    with CaptureQueriesContext(connection) as captured:
        response = as_alice.post("/api/v1/decisions/", refund(case_owned_by_alice), format="json")
    # then the decision is made, the session table was never read or written, and no cookie is set
    assert response.status_code == 201, response.json()
    assert not any("django_session" in query["sql"] for query in captured.captured_queries)
    assert Session.objects.count() == sessions
    assert "Set-Cookie" not in str(response.cookies) and not response.cookies
    # and the security headers, the request id and the content security policy are still there
    assert response["X-Content-Type-Options"] == "nosniff" and response["X-Frame-Options"] == "DENY"
    assert len(response["X-Request-ID"]) == 32
    assert "Content-Security-Policy" in response


def test_a_token_request_with_a_nul_character_in_its_query_is_still_refused(as_alice, case_owned_by_alice):
    response = as_alice.post("/api/v1/authority-check/?x=%00", refund(case_owned_by_alice), format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_a_browser_api_request_without_its_csrf_token_is_still_refused(alice, case_owned_by_alice):
    # given alice is signed in with a browser session (no token), and may refund
    GrantFactory(subject_user=alice)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    # when a page posts a decision without the CSRF token
    response = browser.post("/api/v1/decisions/", refund(case_owned_by_alice), content_type="application/json")
    # then it is refused and nothing is decided
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]
    assert Decision.objects.count() == 0


def test_a_browser_form_without_its_csrf_token_is_still_refused(alice):
    # given a browser that sends no CSRF token
    browser = Client(enforce_csrf_checks=True)
    # when it posts the login form
    response = browser.post("/login/", {"username": "alice", "password": "whatever"})
    # then Django's CSRF check refuses it
    assert response.status_code == 403


def test_a_browser_api_request_still_has_its_session_user(alice, case_owned_by_alice):
    # given alice is signed in with a browser session
    browser = Client()
    browser.force_login(alice)
    # when a page asks the API for a case, then the session user is who asks
    response = browser.get(f"/api/v1/cases/{case_owned_by_alice.pk}/")
    assert response.status_code == 200, response.content
