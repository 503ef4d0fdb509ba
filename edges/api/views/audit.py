"""The audit log (auditors only): the events, and the verification of their chain (run by a worker)."""

from __future__ import annotations

from django.db.models import F, QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from authority import reports
from edges.api import permissions
from edges.api.idempotency import KEY_PARAMETER, idempotent
from edges.api.pagination import AuditCursor
from edges.api.serializers.audit import (
    AuditEventOut,
    AuditQuery,
    VerificationOut,
    VerificationRequestedOut,
    VerificationRequestIn,
    VerificationsOut,
)
from h2h_core.access import may_use_auditor_console
from h2h_core.audit.verification import chain_verification_request
from h2h_core.models import AuditEvent, ChainVerification

from .base import ApiMixin, ResourceViewSet, body


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
        # The chain only: an event appears once sealed (within the seal lag, docs/audit.md), so every
        # entry has its seq and hash and the cursor, a sequence number, stays stable.
        return reports.events_matching(audit_filters(filters), among=queryset.filter(seq__isnull=False))


def _verifications(user) -> QuerySet[ChainVerification]:
    """Every run for auditors (and superusers), none for anyone else: the auditor console's rule."""
    verifications = ChainVerification.objects.select_related("requested_by")
    return verifications if may_use_auditor_console(user) else verifications.none()


def _detail_path(verification: ChainVerification) -> str:
    return reverse("api:audit-verification-detail", kwargs={"pk": verification.pk})


@extend_schema(tags=["audit"])
class AuditVerify(ApiMixin, APIView):
    """The audit chain's verification, run by a worker: the stored results, and asking for a run."""

    permission_classes = [IsAuthenticated, permissions.IsAuditor]

    @extend_schema(operation_id="audit_verify", responses={200: VerificationsOut})
    def get(self, request):
        """The last finished verification and the one queued or running (null when there is none); computes nothing."""
        verifications = _verifications(request.user)
        latest = (verifications.exclude(status__in=ChainVerification.ACTIVE)
                  .order_by(F("finished_at").desc(nulls_last=True), "-pk").first())
        active = verifications.filter(status__in=ChainVerification.ACTIVE).first()
        return Response(VerificationsOut({"latest": latest, "active": active}).data)

    @extend_schema(
        operation_id="audit_verify_request",
        request=VerificationRequestIn,
        responses={202: OpenApiResponse(VerificationRequestedOut, description=(
                       "Queued: a worker runs it; read its result at `Location` (or GET this endpoint).")),
                   200: OpenApiResponse(VerificationRequestedOut, description=(
                       "One was already queued or running (`already_active`: true): that one, and no second."))},
        parameters=[KEY_PARAMETER],
    )
    @idempotent
    def post(self, request, idempotency_key=None):
        """Ask for a verification of the chain (incremental unless `full`); at most one is queued or running."""
        # The key only replays a retried answer: the service needs none, since a second request while a
        # run is queued or running gets that run anyway.
        data = body(VerificationRequestIn, request)
        verification, created = chain_verification_request(actor=request.user, full=data["full"])
        verification.already_active = not created
        out = VerificationRequestedOut(verification).data
        if not created:
            return Response(out, status=status.HTTP_200_OK)
        return Response(out, status=status.HTTP_202_ACCEPTED, headers={"Location": _detail_path(verification)})


class AuditVerificationDetail(ApiMixin, APIView):
    @extend_schema(operation_id="audit_verification_retrieve", responses={200: VerificationOut}, tags=["audit"])
    def get(self, request, pk: int):
        """One verification run (auditors; anyone else gets 404)."""
        verification = _verifications(request.user).filter(pk=pk).first()
        if verification is None:
            raise NotFound("No such verification, or you may not see it.")
        return Response(VerificationOut(verification).data)
