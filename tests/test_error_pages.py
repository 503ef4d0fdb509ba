"""403, 404 and 500 are the product's own pages: a clear sentence, the reason, and the ways back.

This module is also the test-only URLconf of the 500 test: the product's URLs, its error
handlers, and a view that raises.
"""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import get_resolver, path, reverse

from edges import urls as product_urls
from tests.factories import UserFactory


def explode(request):
    raise RuntimeError("a bug in a view")


def fine(request):
    return HttpResponse("fine")


urlpatterns = [*product_urls.urlpatterns, path("test-only/boom/", explode), path("test-only/fine/", fine)]
handler403 = getattr(product_urls, "handler403", "django.views.defaults.permission_denied")
handler404 = getattr(product_urls, "handler404", "django.views.defaults.page_not_found")
handler500 = getattr(product_urls, "handler500", "django.views.defaults.server_error")

MATERIAL = ("Material", "mdc-", "lockscreen", "material-icons")


def assert_product_page(response, status: int):
    assert response.status_code == status
    html = response.content.decode()
    assert 'class="brand"' in html and "H2H" in html  # the product's own shell (templates/base.html)
    assert 'href="/"' in html and f'href="{reverse("cases:list")}"' in html  # home and the cases
    for text in MATERIAL:
        assert text not in html, text
    return html


@pytest.mark.django_db
def test_a_403_is_the_products_page_with_the_reason_and_the_ways_back(client, alice, settings):
    # given alice, an agent, came from her case list
    settings.DEBUG = False
    client.force_login(alice)
    # when she opens the manager console's authority matrix
    response = client.get("/authority/matrix/", HTTP_REFERER="http://testserver/cases/")
    # then she reads why, on the product's page, with a way back to where she was
    html = assert_product_page(response, 403)
    assert "You may not open this page" in html
    assert "The manager console is for managers." in html
    assert 'href="http://testserver/cases/"' in html


@pytest.mark.django_db
def test_a_403_offers_no_way_back_to_another_site(client, alice, settings):
    settings.DEBUG = False
    client.force_login(alice)
    response = client.get("/authority/matrix/", HTTP_REFERER="https://evil.example/phish")
    assert "evil.example" not in assert_product_page(response, 403)


@pytest.mark.django_db
def test_a_404_is_the_products_page(client, alice, settings):
    settings.DEBUG = False
    client.force_login(alice)
    html = assert_product_page(client.get("/no-such-page/"), 404)
    assert "This page does not exist" in html and "/no-such-page/" in html


@pytest.mark.django_db
def test_a_404_raised_by_a_view_gives_its_reason(client, alice, settings):
    settings.DEBUG = False
    client.force_login(alice)
    html = assert_product_page(client.get(reverse("cases:detail", args=[999999])), 404)
    assert "No such case" in html


@pytest.mark.django_db
@pytest.mark.urls("tests.test_error_pages")
def test_a_500_is_the_products_page_with_a_link_home(settings):
    # given a view with a bug, and the production setting
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    # when someone opens it
    response = client.get("/test-only/boom/")
    # then they get the product's page that says what happened, and the way home
    html = assert_product_page(response, 500)
    assert "Something went wrong on our side" in html


@pytest.mark.django_db
@pytest.mark.urls("tests.test_error_pages")
def test_the_500_page_needs_neither_the_database_nor_the_request_context(settings, django_assert_num_queries):
    # given the database may be what failed
    settings.DEBUG = False
    handler = get_resolver().resolve_error_handler(500)
    request = RequestFactory().get("/cases/")
    request.user = UserFactory(username="someone")  # were its context used, its roles would be queried
    # when the 500 page is rendered, then it makes no query, and it is the product's page
    with django_assert_num_queries(0):
        response = handler(request)
    html = response.content.decode()
    assert response.status_code == 500 and "Something went wrong on our side" in html and 'href="/"' in html
    assert "someone" not in html and not any(text in html for text in MATERIAL)


@pytest.mark.django_db
def test_api_errors_keep_their_json_shape(client, alice, settings):
    settings.DEBUG = False
    client.force_login(alice)
    missing = client.get("/api/v1/no-such-thing/")
    assert missing.status_code == 404 and set(missing.json()) == {"code", "message", "details"}
    denied = client.get("/api/v1/audit-events/")
    assert denied.status_code == 403 and set(denied.json()) == {"code", "message", "details"}


@pytest.mark.django_db
def test_api_paths_get_json_from_the_error_handlers_too(settings):
    # given a refusal or a crash outside DRF's own handling, under /api/
    settings.DEBUG = False
    resolver = get_resolver()
    request = RequestFactory().get("/api/v1/cases/")
    # then the product's handlers still answer in the API's shape
    denied = resolver.resolve_error_handler(403)(request, PermissionDenied("Not for you."))
    crashed = resolver.resolve_error_handler(500)(request)
    assert denied.status_code == 403 and denied["Content-Type"] == "application/json"
    assert b'"message": "Not for you."' in denied.content and b'"code": "permission_denied"' in denied.content
    assert crashed.status_code == 500 and crashed["Content-Type"] == "application/json"
