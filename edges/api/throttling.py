"""Request rates: per user, per client address when anonymous, and stricter for asking for a token.

DRF's throttles, with two changes: the rates are read from `H2H_API_THROTTLE_RATES` at each
request (DRF binds its rates when the class is defined), and the client is identified by
`h2h_core.request_context.client_ip`, the address the audit log records and axes locks out. DRF's
own guess reads the whole X-Forwarded-For header, which the client writes, so a client could
count itself under a new name with every request. A refused request is a 429 in the API's error
shape with Retry-After (`edges.api.errors`).
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from h2h_core.request_context import client_ip


class _Rates:
    def get_rate(self):
        rate = settings.H2H_API_THROTTLE_RATES.get(self.scope, "off")
        return None if rate == "off" else rate

    def get_ident(self, request):
        return client_ip(request) or "unknown"


class UserThrottle(_Rates, UserRateThrottle):
    """Requests of one authenticated user (H2H_API_THROTTLE_USER), on every API view."""


class AnonThrottle(_Rates, AnonRateThrottle):
    """Anonymous requests from one client address (H2H_API_THROTTLE_ANON)."""


class TokenRequestThrottle(_Rates, SimpleRateThrottle):
    """Asking for a token (a password guess) from one client address (H2H_API_THROTTLE_TOKEN), on top of axes'
    lockout of a username after wrong passwords."""

    scope = "token"

    def allow_request(self, request, view):
        if request.method != "POST":
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
