"""Tokens and who am I."""

from __future__ import annotations

from axes.helpers import get_cool_off
from django.contrib.auth import authenticate
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from authority import policy
from edges.api.errors import error_body
from edges.api.pagination import Pages
from edges.api.parsers import JSONParser
from edges.api.serializers.auth import MeOut, TokenIn, TokenListedOut, TokenOut
from edges.api.serializers.common import MAX_ID
from edges.api.throttling import AnonThrottle, TokenRequestThrottle, UserThrottle
from h2h_core.api_tokens import api_token_issue, api_token_revoke, api_token_state, api_tokens_of
from h2h_core.models import ApiToken

from .base import ApiMixin, body

REVOKED = OpenApiResponse(description="Revoked: requests with it fail from now on.")


def _token_of(request) -> ApiToken | None:
    return request.auth if isinstance(request.auth, ApiToken) else None


class TokenView(ApiMixin, APIView):
    """Exchange a username and password for a new API token (send it as `Authorization: Token <token>`); revoke
    the token a request is made with."""

    parser_classes = [JSONParser, FormParser, MultiPartParser]
    throttle_classes = [UserThrottle, AnonThrottle, TokenRequestThrottle]
    extra_error_responses = {"429": "Too many requests for a token from your address, or too many failed "
                                    "attempts: this username is locked out from your address."}

    def get_authenticators(self):
        # Asking for a token takes a username and password only: an old token or a session must not stand in its way.
        if getattr(self.request, "method", None) == "POST":
            return []
        return super().get_authenticators()

    def get_permissions(self):
        if self.request.method == "POST":
            return [AllowAny()]
        return super().get_permissions()

    @extend_schema(operation_id="auth_token_create", request=TokenIn, responses={200: TokenOut}, auth=[],
                   tags=["auth"])
    def post(self, request):
        """A new token for these credentials, valid for H2H_API_TOKEN_DAYS (30 by default); shown this once."""
        data = body(TokenIn, request)
        user = authenticate(request=request, username=data["username"], password=data["password"])
        if user is None:
            if getattr(request, "axes_locked_out", False):
                cool_off = get_cool_off(request)
                seconds = int(cool_off.total_seconds()) if cool_off else None
                return Response(
                    error_body("too_many_attempts", "Too many failed logins for this username: try again later.",
                               {"retry_after_seconds": seconds} if seconds else {}),
                    status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(seconds)} if seconds else {})
            return Response(error_body("invalid_credentials", "Unable to log in with this username and password."),
                            status=status.HTTP_400_BAD_REQUEST)
        issued = api_token_issue(actor=user, user=user)
        return Response(TokenOut({"token": issued.key, "id": issued.token.pk, "prefix": issued.token.prefix,
                                  "expires_at": issued.token.expires_at, "username": user.get_username(),
                                  "roles": sorted(policy.roles_of(user))}).data)

    @extend_schema(operation_id="auth_token_revoke", request=None, responses={204: REVOKED}, tags=["auth"])
    def delete(self, request):
        """Revoke the token this request is made with (sign out an integration)."""
        token = _token_of(request)
        if token is None:
            return Response(error_body("not_token_authenticated",
                                       "This request was not made with an API token; revoke one of your tokens "
                                       "by its id: DELETE /api/v1/auth/tokens/{id}/."),
                            status=status.HTTP_400_BAD_REQUEST)
        api_token_revoke(actor=request.user, user=request.user, token_id=token.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(operation_id="auth_tokens_list", summary="My API tokens, newest first (no secrets)",
                       tags=["auth"]),
    destroy=extend_schema(operation_id="auth_tokens_revoke", summary="Revoke one of my API tokens",
                          responses={204: REVOKED}, tags=["auth"]),
)
class TokenViewSet(ApiMixin, mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's own API tokens: list them, revoke one."""

    serializer_class = TokenListedOut
    pagination_class = Pages
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular building the schema
            return ApiToken.objects.none()
        return api_tokens_of(self.request.user)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        now, current = timezone.now(), _token_of(request)
        rows = []
        for token in page:
            token.user = request.user  # the owner, already loaded: no query per token
            rows.append({"id": token.pk, "prefix": token.prefix, "created_at": token.created_at,
                         "expires_at": token.expires_at, "state": api_token_state(token, at=now),
                         "current": current is not None and current.pk == token.pk})
        return self.get_paginated_response(TokenListedOut(rows, many=True).data)

    def destroy(self, request, *args, **kwargs):
        token_id = int(kwargs[self.lookup_field])
        if token_id > MAX_ID or not api_token_revoke(actor=request.user, user=request.user, token_id=token_id):
            raise NotFound("You have no API token with this id.")
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(ApiMixin, APIView):
    @extend_schema(operation_id="me_retrieve", responses={200: MeOut}, tags=["auth"])
    def get(self, request):
        """Who am I: my roles and the teams I manage."""
        user = request.user
        return Response({"id": user.pk, "username": user.get_username(), "roles": sorted(policy.roles_of(user)),
                         "managed_team_ids": policy.managed_team_ids(user)})
