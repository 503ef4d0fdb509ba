"""Request middleware: make the client IP and request id available to the audit log."""

from django.conf import settings

from . import request_context


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.trust_forwarded_for = getattr(settings, "H2H_TRUST_X_FORWARDED_FOR", False)

    def __call__(self, request):
        meta = request_context.meta_from_request(request, trust_forwarded_for=self.trust_forwarded_for)
        request.request_id = meta.request_id
        token = request_context.activate(meta)
        try:
            response = self.get_response(request)
        finally:
            request_context.reset(token)
        response["X-Request-ID"] = meta.request_id
        return response
