"""Request middleware: the request context of the audit log, and a guard against NUL characters."""

from django.http import HttpResponseBadRequest, JsonResponse

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
