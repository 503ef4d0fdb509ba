"""One-hop authority requests: asking over one's headroom, approving and rejecting."""

from __future__ import annotations

from rest_framework import serializers

from authority.models import RequestStatus

from .common import PlainAmountField, id_field, kind_field, text_field
from .verdicts import OnCaseOut, VerdictOut, optional_currency_field


class RequestIn(serializers.Serializer):
    case = id_field(help_text="The case's id; you must own it.")
    kind = kind_field()
    amount = PlainAmountField()
    currency = optional_currency_field()
    justification = text_field(help_text="Why the customer needs this; the approver reads it.")


class RequestOut(OnCaseOut):
    requester = serializers.CharField(source="requester.username")
    justification = serializers.CharField()
    status = serializers.CharField(help_text="open, approved, rejected, expired, withdrawn, or voided: approved, "
                                             "then the case changed (handed over, reopened); see void_reason.")
    pool = serializers.ListField(child=serializers.IntegerField(), help_text="User ids who may decide it.")
    pool_is_fallback = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_note = serializers.CharField(allow_blank=True)
    one_off_grant = serializers.IntegerField(source="one_off_grant_id", allow_null=True)
    void_reason = serializers.SerializerMethodField(help_text="Why an approval became void; empty otherwise.")
    verdict = VerdictOut(help_text="The requester's verdict when asking: how far over the limit.")

    def get_void_reason(self, request) -> str:
        if request.status != RequestStatus.VOIDED or request.one_off_grant is None:
            return ""
        return request.one_off_grant.void_reason


class RequestQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=RequestStatus.choices, required=False)
    case = id_field(required=False)
    awaiting_me = serializers.BooleanField(required=False,
                                           help_text="true: only open requests I may approve.")
    mine = serializers.BooleanField(required=False,
                                    help_text="true: only requests I opened.")


class NoteIn(serializers.Serializer):
    note = text_field(required=False, allow_blank=True, default="")


class RejectIn(serializers.Serializer):
    note = text_field(help_text="The reason the agent will read.")
