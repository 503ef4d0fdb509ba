"""Request middleware: the request context of the audit log, a guard against NUL characters, and the
browser-only wrappers that token API requests pass by."""

from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.module_loading import import_string

from h2h_core import request_context


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request_context.meta_from_request(request)
        request.request_id = meta.request_id
        token = request_context.activate(meta)
        try:
            response = self.get_response(request)
        finally:
            request_context.reset(token)
        response["X-Request-ID"] = meta.request_id
        return response


class RejectNulCharactersMiddleware:
    """Answer 400 to a query string or form body carrying NUL characters.

    No text column can store them (PostgreSQL raises an error on them), no person types them, and
    refusing them at the door keeps that error from ever becoming a 500 in a view that looks a
    value up. JSON bodies are checked by the API's serializers.
    """

    FORM = "application/x-www-form-urlencoded"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "").lower()
        carries_nul = "%00" in query or "\x00" in query
        if not carries_nul and request.method == "POST" and request.content_type == self.FORM:
            body = request.body.lower()
            carries_nul = b"%00" in body or b"\x00" in body
        if carries_nul:
            message = "The request contains a NUL character, which no field accepts."
            if request.path.startswith("/api/"):
                return JsonResponse({"code": "invalid", "message": message, "details": {}}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


# --- Middleware browsers need and token API requests do not ----------------------------------------


def is_token_api_request(request) -> bool:
    """An API request that names its token (`Authorization: Token …`): the token alone says who it is.

    DRF tries the token first and never falls back to the session when a token is sent (a bad one
    is a 401), and API views are exempt from Django's CSRF check (DRF checks CSRF only for the
    session), so sessions, the session user, messages and form tokens have nothing to do for it.
    The answer is kept on the request.
    """
    known = getattr(request, "_h2h_token_api", None)
    if known is None:
        words = str(request.META.get("HTTP_AUTHORIZATION", "")).split(None, 1)
        known = request.path.startswith("/api/") and bool(words) and words[0].lower() == "token"
        request._h2h_token_api = known
    return known


def browser_only(path: str, *, instead=None) -> type:
    """Return a subclass of the middleware at `path` that passes token API requests by.

    It keeps the middleware's place in MIDDLEWARE and its hooks (process_view, …), and is still one
    for Django's checks; for a token API request it calls `instead(request)`, if given, and goes on.
    """
    wrapped = import_string(path)

    def __call__(self, request):
        if is_token_api_request(request):
            if instead is not None:
                instead(request)
            return self.get_response(request)
        return wrapped.__call__(self, request)

    methods = {"__call__": __call__, "__module__": __name__, "__doc__": f"{wrapped.__name__}, for browsers only."}
    for hook in ("process_view", "process_exception", "process_template_response"):
        if hasattr(wrapped, hook):
            methods[hook] = _skipping(getattr(wrapped, hook))
    return type(f"Browser{wrapped.__name__}", (wrapped,), methods)


def _skipping(hook):
    def call(self, request, *args):
        if is_token_api_request(request):
            return None
        return hook(self, request, *args)

    return call


def _anonymous(request) -> None:
    # Until DRF authenticates the token and sets the user on this request too.
    request.user = AnonymousUser()


BrowserSessionMiddleware = browser_only("django.contrib.sessions.middleware.SessionMiddleware")
BrowserAuthenticationMiddleware = browser_only("django.contrib.auth.middleware.AuthenticationMiddleware",
                                               instead=_anonymous)
BrowserMessageMiddleware = browser_only("django.contrib.messages.middleware.MessageMiddleware")
BrowserExecuteOnceMiddleware = browser_only("edges.web.once.ExecuteOnceMiddleware")
