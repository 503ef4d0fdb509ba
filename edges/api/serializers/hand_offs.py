"""Hand-offs from AI agents to people: what the person reads first, and the pickup."""

from __future__ import annotations

from rest_framework import serializers

from .common import id_field


class TranscriptLineOut(serializers.Serializer):
    # "from" is a Python keyword: declared below under its JSON name.
    text = serializers.CharField()

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.ChoiceField(choices=["customer", "ai"])
        return fields


class AttemptOut(serializers.Serializer):
    kind = serializers.CharField(required=False)
    amount = serializers.CharField(required=False, help_text="Plain decimal text, as the AI agent reported it.")
    currency = serializers.CharField(required=False, allow_blank=True)
    outcome = serializers.CharField(required=False)
    reasons = serializers.ListField(child=serializers.CharField(), required=False)
    rationale = serializers.CharField(required=False)
    confidence = serializers.CharField(required=False)


class HandOffOut(serializers.Serializer):
    id = serializers.IntegerField()
    case = serializers.IntegerField(source="case_id")
    case_reference = serializers.CharField(source="case.reference")
    from_agent = serializers.CharField(source="from_agent.username", help_text="The AI agent that handed it off.")
    to_user = serializers.CharField(source="to_user.username", allow_null=True,
                                    help_text="The person who owns it from here; null: it waits in the team's queue.")
    reason = serializers.CharField()
    reason_label = serializers.CharField(source="get_reason_display")
    reason_text = serializers.CharField()
    summary = serializers.CharField(allow_blank=True)
    transcript = TranscriptLineOut(many=True)
    attempts = AttemptOut(many=True)
    created_at = serializers.DateTimeField()
    picked_up_at = serializers.DateTimeField(allow_null=True)
    picked_up_by = serializers.CharField(source="picked_up_by.username", allow_null=True)


class HandOffQuery(serializers.Serializer):
    picked_up = serializers.BooleanField(required=False, help_text="false: only hand-offs nobody picked up yet.")
    case = id_field(required=False)
