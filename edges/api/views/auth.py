"""Tokens and who am I."""

from __future__ import annotations

from axes.helpers import get_cool_off
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from authority import policy
from edges.api.errors import error_body
from edges.api.serializers.auth import MeOut, TokenIn, TokenOut
from h2h_core.people import api_token_issue

from .base import ApiMixin, body


class TokenView(ApiMixin, APIView):
    """Exchange a username and password for an API token (send it as `Authorization: Token <token>`)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    extra_error_responses = {"429": "Too many failed attempts: this username is locked out from your address."}

    @extend_schema(operation_id="auth_token_create", request=TokenIn, responses={200: TokenOut}, auth=[],
                   tags=["auth"])
    def post(self, request):
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
        token = api_token_issue(actor=user, user=user)  # created (and audited) on first use
        return Response({"token": token.key, "username": user.get_username(),
                         "roles": sorted(policy.roles_of(user))})


class MeView(ApiMixin, APIView):
    @extend_schema(operation_id="me_retrieve", responses={200: MeOut}, tags=["auth"])
    def get(self, request):
        """Who am I: my roles and the teams I manage."""
        user = request.user
        return Response({"id": user.pk, "username": user.get_username(), "roles": sorted(policy.roles_of(user)),
                         "managed_team_ids": policy.managed_team_ids(user)})
