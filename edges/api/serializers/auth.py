"""Tokens and who am I."""

from __future__ import annotations

from rest_framework import serializers

from .common import text_field, username_field


class TokenIn(serializers.Serializer):
    username = username_field()
    password = text_field(max_length=256, trim_whitespace=False, style={"input_type": "password"})


class TokenOut(serializers.Serializer):
    token = serializers.CharField()
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())


class MeOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    managed_team_ids = serializers.ListField(child=serializers.IntegerField())
