"""Receipts anyone can check offline: a decision's inclusion in a signed Merkle tree, and consistency
between two signed trees (docs/audit.md, "Receipts and Merkle proofs"; examples/verify_receipt.py)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from authority import policy
from edges.api import permissions
from h2h_core.audit.jobs import decision_receipt_or_signing
from h2h_core.audit.tree import checkpoint_consistency
from h2h_core.models import AuditCheckpoint

from .base import ApiMixin

PENDING_RETRY_SECONDS = 30

_Pending = inline_serializer("ReceiptPending", {"status": serializers.CharField(), "detail": serializers.CharField()})
_Document = inline_serializer("ProofDocument", {"format": serializers.CharField()})


class DecisionReceipt(ApiMixin, APIView):
    @extend_schema(
        operation_id="decision_receipt", tags=["audit"],
        responses={200: OpenApiResponse(_Document, description=(
                       "The receipt (h2h-receipt/v1): the decision's audit event, its inclusion proof and the signed "
                       "checkpoint. Check it with examples/verify_receipt.py and the public key only.")),
                   202: OpenApiResponse(_Pending, description=(
                       "No signed tree includes the decision yet: a signing was asked for; retry after Retry-After.")),
                   404: OpenApiResponse(description="No such decision, or you may not see it.")},
    )
    def get(self, request, pk: int):
        """The receipt of a decision you may see: proof, checkable offline, that the audit log holds it unaltered."""
        decision = policy.decisions_visible_to(request.user).filter(pk=pk).first()
        if decision is None:
            raise NotFound("No such decision, or you may not see it.")
        receipt = decision_receipt_or_signing(decision_id=decision.pk)
        if receipt is None:
            return Response(
                {"status": "pending", "detail": "No signed checkpoint includes this decision yet; one was asked for."},
                status=status.HTTP_202_ACCEPTED, headers={"Retry-After": str(PENDING_RETRY_SECONDS)},
            )
        response = Response(receipt)
        response["Content-Disposition"] = f'attachment; filename="decision-{decision.pk}-receipt.json"'
        return response


def _checkpoint(name: str, value) -> AuditCheckpoint:
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise ValidationError({name: "Give a checkpoint id (a whole number)."}) from None
    checkpoint = AuditCheckpoint.objects.filter(pk=pk).first()
    if checkpoint is None:
        raise ValidationError({name: f"No checkpoint {pk}."})
    if not checkpoint.root_hash:
        raise ValidationError({name: f"Checkpoint {pk} was signed before Merkle trees (v1): it has no root to prove."})
    return checkpoint


class CheckpointConsistency(ApiMixin, APIView):
    permission_classes = [IsAuthenticated, permissions.IsAuditor]

    @extend_schema(
        operation_id="audit_checkpoint_consistency", tags=["audit"],
        parameters=[OpenApiParameter("old", int, required=True, description="The earlier checkpoint's id."),
                    OpenApiParameter("new", int, required=True, description="The later checkpoint's id.")],
        responses={200: OpenApiResponse(_Document, description=(
            "The consistency proof (h2h-consistency/v1): the later signed tree extends the earlier one."))},
    )
    def get(self, request):
        """Proof that one signed tree extends another, nothing rewritten between them (auditors)."""
        old = _checkpoint("old", request.query_params.get("old"))
        new = _checkpoint("new", request.query_params.get("new"))
        return Response(checkpoint_consistency(old=old, new=new))
