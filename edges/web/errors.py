"""The product's own error pages: 400, 403, 404 and 500, with the reason and the ways back.

Installed as handler400/403/404/500 in the root URLconf, so neither Django's bare pages nor the
templates other apps ship under the same names (viewflow's Material "403.html") are shown. Paths
under /api/ keep the API's JSON error shape ({"code", "message", "details"}).

The 500 page is rendered without the request's context (no context processors, no session, no
database): the error may be the database itself. If even that fails, a fixed HTML page is sent.
"""

from __future__ import annotations

import logging

from django.core.exceptions import DisallowedHost
from django.http import HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.urls import NoReverseMatch, Resolver404, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import requires_csrf_token

logger = logging.getLogger("h2h.errors")

API_PREFIX = "/api/"
FALLBACK_500 = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Server error · H2H</title></head>'
    "<body><main><h1>Something went wrong on our side</h1>"
    "<p>The error has been logged. Try again in a moment.</p>"
    '<p><a href="/">Back to the home page</a></p></main></body></html>'
)


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def _api_error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message, "details": {}}, status=status)


def _url(name: str) -> str:
    try:
        return reverse(name)
    except NoReverseMatch:
        return "/"


def _back_url(request) -> str:
    """Return the page the visitor came from, if it is one of ours and not this one."""
    referer = request.META.get("HTTP_REFERER", "")
    try:
        host = request.get_host()
    except DisallowedHost:
        return ""
    if not referer or not url_has_allowed_host_and_scheme(referer, allowed_hosts={host},
                                                           require_https=request.is_secure()):
        return ""
    return "" if referer == request.build_absolute_uri() else referer


def _reason(exception) -> str:
    """Return the message a view gave its refusal (PermissionDenied("…"), Http404("…")), if any."""
    if exception is None or isinstance(exception, Resolver404):
        return ""  # the resolver's message lists URL patterns: nothing for people
    args = getattr(exception, "args", ())
    return args[0] if args and isinstance(args[0], str) else ""


def _context(request, **extra) -> dict:
    return {"back_url": _back_url(request), "home_url": _url("home"), "cases_url": _url("cases:list"), **extra}


@requires_csrf_token
def bad_request(request, exception=None):
    if _is_api(request):
        return _api_error("bad_request", "The request cannot be processed.", 400)
    # No reason shown: a SuspiciousOperation's message is for the log, not for the visitor.
    return render(request, "400.html", _context(request), status=400)


@requires_csrf_token
def permission_denied(request, exception=None):
    reason = _reason(exception)
    if _is_api(request):
        return _api_error("permission_denied", reason or "You do not have permission to perform this action.", 403)
    return render(request, "403.html", _context(request, reason=reason, path=request.path), status=403)


@requires_csrf_token
def page_not_found(request, exception=None):
    reason = _reason(exception)
    if _is_api(request):
        return _api_error("not_found", reason or f"There is no API resource at {request.path}.", 404)
    return render(request, "404.html", _context(request, reason=reason, path=request.path), status=404)


@requires_csrf_token
def server_error(request):
    if _is_api(request):
        return _api_error("server_error", "Something went wrong on our side; it has been logged. Try again later.",
                          500)
    try:
        # A plain dict, not a RequestContext: no context processor (no session, no database) runs.
        html = loader.get_template("500.html").render(_context(request))
    except Exception:  # the page of last resort must not fail in turn
        logger.exception("The 500 page could not be rendered; sending the fixed one")
        return HttpResponseServerError(FALLBACK_500)
    return HttpResponse(html, status=500)
