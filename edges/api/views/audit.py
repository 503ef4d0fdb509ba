"""The audit log (auditors only): the events, and the verification of their chain."""

from __future__ import annotations

import dataclasses

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from authority import reports
from edges.api import permissions
from edges.api.pagination import AuditCursor
from edges.api.serializers.audit import AuditEventOut, AuditQuery, ChainReportOut
from h2h_core.models import AuditEvent

from .base import ApiMixin, ResourceViewSet


def audit_filters(filters: dict) -> reports.AuditFilters:
    """The API's audit filters in the terms of the auditor console's audit log (one reader for both)."""
    return reports.AuditFilters(
        action=filters.get("action", ""), actor=filters.get("actor", ""), object_type=filters.get("object_type", ""),
        object_id=filters.get("object_id", ""), outcome=filters.get("outcome", ""),
        after=filters.get("occurred_after"), before=filters.get("occurred_before"),
    )


@extend_schema_view(
    list=extend_schema(parameters=[AuditQuery], summary="Audit events, newest first (auditors)"),
    retrieve=extend_schema(summary="One audit event by its sequence number (auditors)"),
)
class AuditEventViewSet(ResourceViewSet):
    """The append-only, hash-chained record of every change, for auditors: filtered like the auditor console's."""

    serializer_class = AuditEventOut
    query_class = AuditQuery
    pagination_class = AuditCursor
    permission_classes = [IsAuthenticated, permissions.IsAuditor]
    lookup_field = "seq"
    queryset = AuditEvent.objects.all()

    def filter_list(self, queryset, filters):
        return reports.events_matching(audit_filters(filters), among=queryset)


class AuditVerify(ApiMixin, APIView):
    permission_classes = [IsAuthenticated, permissions.IsAuditor]

    @extend_schema(operation_id="audit_verify", responses={200: ChainReportOut}, tags=["audit"])
    def get(self, request):
        """Recompute the whole hash chain now and check the signed checkpoints: intact, or the first bad entry."""
        from h2h_core.audit.verify import verify_chain

        report = verify_chain()
        data = dataclasses.asdict(report)
        data["summary"] = report.summary()
        data["verified_at"] = timezone.now()
        return Response(ChainReportOut(data).data)
