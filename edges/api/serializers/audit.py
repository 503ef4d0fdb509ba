"""The audit log and the report of its verification."""

from __future__ import annotations

from rest_framework import serializers

from h2h_core.models.audit import Outcome

from .common import text_field, username_field


class AuditEventOut(serializers.Serializer):
    seq = serializers.IntegerField()
    occurred_at = serializers.DateTimeField()
    actor_id = serializers.IntegerField(allow_null=True)
    actor_username = serializers.CharField(allow_blank=True)
    actor_roles = serializers.ListField(child=serializers.CharField())
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField(allow_blank=True)
    outcome = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    ip = serializers.CharField(allow_null=True)
    request_id = serializers.CharField(allow_blank=True)
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class AuditQuery(serializers.Serializer):
    action = text_field(max_length=64, required=False)
    actor = username_field(required=False, help_text="The actor's username.")
    object_type = text_field(max_length=64, required=False)
    object_id = text_field(max_length=64, required=False)
    outcome = serializers.ChoiceField(choices=Outcome.choices, required=False)
    occurred_after = serializers.DateTimeField(required=False)
    occurred_before = serializers.DateTimeField(required=False)


class CheckpointOut(serializers.Serializer):
    seq = serializers.IntegerField()
    hash = serializers.CharField()
    signed_at = serializers.DateTimeField()
    key_fingerprint = serializers.CharField()
    signature_valid = serializers.BooleanField()
    matches_chain = serializers.BooleanField()
    current_key = serializers.BooleanField(allow_null=True)
    message = serializers.CharField()


class ChainReportOut(serializers.Serializer):
    ok = serializers.BooleanField()
    summary = serializers.CharField()
    count = serializers.IntegerField(help_text="Entries verified intact.")
    total = serializers.IntegerField(help_text="Entries in the log.")
    first_bad_seq = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    last_seq = serializers.IntegerField()
    last_hash = serializers.CharField()
    last_time = serializers.DateTimeField(allow_null=True)
    checkpoints = CheckpointOut(many=True)
    warnings = serializers.ListField(child=serializers.CharField())
    verified_at = serializers.DateTimeField()
