"""Abuse and structuring findings for auditors (the auditor console's /audit/findings/, as JSON)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from authority.reports.abuse import DETECTORS, abuse_findings
from edges.api import permissions

from .base import ApiMixin, query

DAY_CHOICES = (7, 30, 90, 365)


class FindingsQuery(serializers.Serializer):
    days = serializers.ChoiceField(choices=DAY_CHOICES, required=False, help_text="The last N days (default 30).")
    detector = serializers.ChoiceField(choices=list(DETECTORS), required=False, help_text="One detector (default all).")


class FindingOut(serializers.Serializer):
    key = serializers.CharField(help_text="Written into a review flag made from the finding.")
    severity = serializers.CharField()
    explanation = serializers.CharField()
    decision_ids = serializers.ListField(child=serializers.IntegerField())
    request_ids = serializers.ListField(child=serializers.IntegerField())
    cases = serializers.ListField(child=serializers.CharField(), help_text="Case references.")
    customer_id = serializers.IntegerField(allow_null=True)
    customer_name = serializers.CharField(allow_blank=True)
    people = serializers.ListField(child=serializers.CharField())
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    flag_decision_id = serializers.IntegerField(allow_null=True)


class DetectorOut(serializers.Serializer):
    detector = serializers.CharField()
    title = serializers.CharField()
    total = serializers.IntegerField()
    more = serializers.IntegerField(help_text="Findings not listed (only the worst are).")
    findings = FindingOut(many=True)


class FindingsOut(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    results = DetectorOut(many=True)


def _finding(f) -> dict:
    return {"key": f.key, "severity": f.severity, "explanation": f.explanation, "decision_ids": list(f.decision_ids),
            "request_ids": list(f.request_ids), "cases": [ref for _, ref in f.cases], "customer_id": f.customer_id,
            "customer_name": f.customer_name, "people": list(f.people), "window_start": f.window_start,
            "window_end": f.window_end, "flag_decision_id": f.flag_decision_id}


@extend_schema(tags=["audit"])
class FindingsView(ApiMixin, APIView):
    """Refunds split under a limit, one customer and several agents, approver shopping, decisions before a grant
    ended: the worst findings of each detector over the last N days (auditors)."""

    permission_classes = [IsAuthenticated, permissions.IsAuditor]

    @extend_schema(operation_id="findings_list", parameters=[FindingsQuery], responses={200: FindingsOut})
    def get(self, request):
        filters = query(FindingsQuery, request)
        until = timezone.now()
        detector = filters.get("detector")
        found = abuse_findings(since=until - timedelta(days=int(filters.get("days", 30))), until=until,
                               detectors=[detector] if detector else None)
        return Response(FindingsOut({"since": found.since, "until": found.until, "results": [
            {"detector": r.detector, "title": r.title, "total": r.total, "more": r.more,
             "findings": [_finding(f) for f in r.findings]} for r in found.results]}).data)
