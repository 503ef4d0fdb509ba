"""Tokens and who am I."""

from __future__ import annotations

from rest_framework import serializers

from .common import text_field, username_field


class TokenIn(serializers.Serializer):
    username = username_field()
    password = text_field(max_length=256, trim_whitespace=False, style={"input_type": "password"})


class TokenOut(serializers.Serializer):
    token = serializers.CharField(help_text="The token, shown this once: only its digest is kept.")
    id = serializers.IntegerField(help_text="Names the token in `GET /api/v1/auth/tokens/`.")
    prefix = serializers.CharField(help_text="The first characters of the token: how lists and the audit log name it.")
    expires_at = serializers.DateTimeField()
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())


class TokenListedOut(serializers.Serializer):
    """One of the caller's tokens, without its secret."""

    id = serializers.IntegerField()
    prefix = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    state = serializers.ChoiceField(
        choices=["active", "token_expired", "token_password_changed", "user_inactive"],
        help_text="`active`, or why the token no longer opens the API.")
    current = serializers.BooleanField(help_text="Whether this request was authenticated with this token.")


class MeOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    managed_team_ids = serializers.ListField(child=serializers.IntegerField())
