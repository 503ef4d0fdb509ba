"""A deeply nested JSON body is a 400 in the error shape, never a RecursionError's 500, and changes nothing."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.parsers import JSONParser as DRFJSONParser

from edges.api.parsers import MAX_DEPTH, JSONParser
from h2h_core.models import ApiToken, AuditEvent

from .helpers import assert_error_shape, idempotency_records, state

pytestmark = pytest.mark.django_db

DEEP = 3000


def deep_list(depth: int) -> str:
    return "[" * depth + "]" * depth


def deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def decision_with_rationale(case, rationale: str) -> str:
    return f'{{"case": {case.pk}, "kind": "refund", "amount": "1.00", "currency": "EUR", "rationale": {rationale}}}'


def everything() -> tuple:
    return state(), AuditEvent.objects.count(), idempotency_records(), ApiToken.objects.count()


@pytest.mark.parametrize("body", [deep_list(DEEP), deep_object(DEEP)], ids=["array", "object"])
def test_a_deep_body_to_a_write_endpoint_is_a_400_and_changes_nothing(as_alice, case_owned_by_alice,
                                                                     alice_may_refund_500, body):
    # given everything as it is
    before = everything()
    # when a 3,000-deep body is posted, with and without an idempotency key
    plain = as_alice.post("/api/v1/decisions/", body, content_type="application/json")
    keyed = as_alice.post("/api/v1/cases/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="deep")
    # then both are a 400 in the error shape that says why, and nothing changed
    for response in (plain, keyed):
        assert f"more than {MAX_DEPTH} levels" in assert_error_shape(response, 400, "parse_error")["message"]
    assert everything() == before


@pytest.mark.parametrize("body", [deep_list(DEEP), deep_object(DEEP)], ids=["array", "object"])
def test_a_deep_body_to_the_token_endpoint_is_a_400_and_issues_nothing(client, alice, body):
    before = everything()
    response = client.post("/api/v1/auth/token/", body, content_type="application/json")
    assert_error_shape(response, 400, "parse_error")
    assert everything() == before and not ApiToken.objects.exists()


def test_a_body_nested_beyond_the_limit_is_refused_even_where_python_could_parse_it(as_alice, case_owned_by_alice,
                                                                                   alice_may_refund_500):
    # given a body deeper than any API payload, yet shallow enough to parse without a RecursionError
    body = decision_with_rationale(case_owned_by_alice, deep_list(MAX_DEPTH))
    before = everything()
    # when it is posted
    response = as_alice.post("/api/v1/decisions/", body, content_type="application/json")
    # then the parser refuses it before any view or serializer walks it
    assert_error_shape(response, 400, "parse_error")
    assert everything() == before


def test_a_body_at_the_limit_reaches_the_view(as_alice, case_owned_by_alice, alice_may_refund_500):
    # a field holding nested arrays up to the limit is the serializer's to refuse, as any wrong value is
    body = decision_with_rationale(case_owned_by_alice, deep_list(MAX_DEPTH - 1))
    response = as_alice.post("/api/v1/decisions/", body, content_type="application/json")
    assert "rationale" in assert_error_shape(response, 400, "invalid")["details"]


def _api_views(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _api_views(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and prefix.startswith("api/"):
            view = getattr(entry.callback, "cls", None)
            if view is not None:
                yield prefix + str(entry.pattern), view


def test_every_api_view_parses_json_with_the_depth_limited_parser():
    # a view that names DRF's own JSONParser would let a deep body through to a 500 again
    views = list(_api_views(get_resolver().url_patterns))
    assert len(views) > 5
    unguarded = [route for route, view in views
                 if any(issubclass(parser, DRFJSONParser) and not issubclass(parser, JSONParser)
                        for parser in view.parser_classes)]
    assert unguarded == []


@pytest.mark.parametrize("path", ["/login/", "/cases/new/", "/cases/{case}/decide/", "/admin/login/"])
def test_the_web_pages_do_not_fail_on_a_deep_json_body(client, alice, case_owned_by_alice, alice_may_refund_500,
                                                       path):
    # the pages read forms, never JSON: a deep JSON body is just a form without fields
    client.force_login(alice)
    before = everything()
    response = client.post(path.format(case=case_owned_by_alice.pk), deep_list(DEEP),
                           content_type="application/json")
    assert response.status_code < 500
    assert everything() == before
