"""`Authorization: Token <key>`: the API's token authentication, over `h2h_core.api_tokens`.

The header format is DRF's, so existing clients keep working; what stands behind it is the
project's hashed, expiring, revocable token. A token that no longer works is a 401 whose message
and code say why (expired, password changed, account deactivated, unknown).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from h2h_core.api_tokens import ApiTokenRejected, api_token_authenticate


class ApiTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        # The header as text, not DRF's bytes: its encode step fails (a 500) on characters outside Latin-1.
        words = str(request.META.get("HTTP_AUTHORIZATION", "")).split()
        if not words or words[0].lower() != self.keyword.lower():
            return None
        if len(words) != 2:
            raise exceptions.AuthenticationFailed("Send the token as `Authorization: Token <token>`, one word.")
        key = words[1]
        if not key.isascii():
            raise exceptions.AuthenticationFailed("Invalid token.")
        try:
            token = api_token_authenticate(key=key)
        except ApiTokenRejected as rejected:
            raise exceptions.AuthenticationFailed(rejected.message, code=rejected.code) from None
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes the token (drf-spectacular finds it by `target_class`)."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix=self.target.keyword)
