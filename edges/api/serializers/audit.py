"""The audit log and the runs that verify its chain."""

from __future__ import annotations

from rest_framework import serializers

from h2h_core.models import ChainVerification
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


class CheckpointResultOut(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="The checkpoint row (null: its row is gone).")
    seq = serializers.IntegerField(help_text="The entry it signed.")
    hash = serializers.CharField()
    signed_at = serializers.DateTimeField(allow_null=True)
    key_fingerprint = serializers.CharField(allow_blank=True)
    event_seq = serializers.IntegerField(allow_null=True, help_text="The chain's entry recording its signing.")
    signature_valid = serializers.BooleanField()
    matches_chain = serializers.BooleanField()
    current_key = serializers.BooleanField(allow_null=True, help_text="null: no public key configured to compare.")
    recorded = serializers.BooleanField(help_text="The chain's record of its signing exists and agrees with it.")
    stored = serializers.BooleanField(help_text="false: the chain recorded a checkpoint whose row is gone.")
    ok = serializers.BooleanField()
    message = serializers.CharField(allow_blank=True)


class VerificationOut(serializers.Serializer):
    """One run of the chain check, as a worker recorded it (h2h_core.models.ChainVerification)."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ChainVerification.Status.choices)
    mode = serializers.ChoiceField(choices=ChainVerification.Mode.choices)
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True, default=None,
                                         help_text="The auditor who asked; null: the schedule.")
    requested_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    anchor_checkpoint_id = serializers.IntegerField(
        allow_null=True, help_text="The checkpoint an incremental run started from (entries before it were not read).")
    from_seq = serializers.IntegerField(allow_null=True)
    to_seq = serializers.IntegerField(allow_null=True)
    events_checked = serializers.IntegerField()
    first_bad_seq = serializers.IntegerField(allow_null=True, help_text="Where the chain breaks; null: intact.")
    summary = serializers.CharField(allow_blank=True)
    checkpoint_results = CheckpointResultOut(many=True)
    warnings = serializers.ListField(child=serializers.CharField())


class VerificationsOut(serializers.Serializer):
    latest = VerificationOut(allow_null=True, help_text="The last finished run (passed, failed or error); "
                                                        "null: none yet.")
    active = VerificationOut(allow_null=True, help_text="The run queued or running now; null: none.")


class VerificationRequestIn(serializers.Serializer):
    full = serializers.BooleanField(required=False, default=False,
                                    help_text="true: verify from the first entry; false: incremental, from the "
                                              "newest checkpoint the last passed run proved.")


class VerificationRequestedOut(VerificationOut):
    already_active = serializers.BooleanField(
        help_text="true: a run was already queued or running; it is this one, and no second one was queued.")
