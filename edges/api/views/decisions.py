"""Authority kinds, the dry-run check, and decisions (executed within the caller's authority)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from authority import policy, reports
from authority.models import AuthorityKind, Decision
from authority.services import decision_execute, decision_reverse
from edges.api.idempotency import KEY_PARAMETER, idempotent
from edges.api.serializers.bound import represented
from edges.api.serializers.common import ErrorSerializer
from edges.api.serializers.decisions import DecisionIn, DecisionOut, DecisionQuery, ReverseIn
from edges.api.serializers.verdicts import CheckIn, KindOut, VerdictOut, verdict_data

from .base import NOT_VISIBLE, VISIBLE_CASE_RELATED, ApiMixin, ResourceViewSet, body, username_or_me, visible_case

RELATED = ("case", "agent", "kind", "reversed_by")


class KindList(ApiMixin, APIView):
    @extend_schema(operation_id="authority_kinds_list", responses={200: KindOut(many=True)},
                   tags=["authority"])
    def get(self, request):
        """What can be decided, and in which unit."""
        return Response(KindOut(AuthorityKind.objects.order_by("code"), many=True).data)


class AuthorityCheck(ApiMixin, APIView):
    @extend_schema(operation_id="authority_check", request=CheckIn, responses={200: VerdictOut},
                   tags=["authority"])
    def post(self, request):
        """Dry run: may I decide this kind and amount on this case now, and what is left? Changes nothing."""
        data = body(CheckIn, request)
        verdict = policy.evaluate_visible(agent=request.user, case_id=data["case"], kind=data["kind"],
                                          amount=data["amount"], currency=data["currency"] or None,
                                          related=VISIBLE_CASE_RELATED)
        if verdict is None:
            raise NotFound(NOT_VISIBLE)
        return Response(verdict_data(verdict))


def decision_filters(request, filters: dict) -> reports.DecisionFilters:
    """The API's decision filters in the terms of the auditor's decision log (one reader for both)."""
    return reports.DecisionFilters(
        case=filters.get("case"), kind=filters.get("kind", ""),
        agent=username_or_me(request, filters.get("agent", "")),
        after=filters.get("executed_after"), before=filters.get("executed_before"),
    )


@extend_schema_view(
    list=extend_schema(parameters=[DecisionQuery], summary="Decisions on cases I may see"),
    retrieve=extend_schema(summary="One decision, with the verdict and grant version that allowed it"),
)
class DecisionViewSet(ResourceViewSet):
    """Decisions on the cases the caller may see; each names the verdict and the grant version that allowed it."""

    serializer_class = DecisionOut
    query_class = DecisionQuery

    def get_queryset(self):
        return policy.decisions_visible_to(self.request.user).select_related(*RELATED).order_by(
            "-executed_at", "-id")

    def rendered(self):
        return Decision.objects.select_related(*RELATED)

    def filter_list(self, queryset, filters):
        return reports.decisions_matching(decision_filters(self.request, filters), among=queryset)

    @extend_schema(
        request=DecisionIn,
        responses={201: DecisionOut,
                   403: OpenApiResponse(ErrorSerializer, description=(
                       "Refused: `code` is authority_denied (details: reasons, per-case and period headroom, "
                       "approvers, the whole verdict) or not_case_owner."))},
        parameters=[KEY_PARAMETER],
        summary="Execute a decision on a case I own, within my authority",
    )
    @idempotent
    def create(self, request, idempotency_key=None):
        data = body(DecisionIn, request)
        case = visible_case(request.user, data["case"])
        decision = decision_execute(actor=request.user, case=case, kind=data["kind"], amount=data["amount"],
                                    currency=data["currency"] or None, rationale=data["rationale"],
                                    idempotency_key=idempotency_key)
        # Answered from the row the service wrote (or found, for a replay of the key), with the case, kind and
        # agent it was written with: no read back. A new decision is not reversed, and a replayed one read
        # from the database says whether it was.
        decision.case, decision.agent = case, request.user
        if decision.kind_id == data["kind"].pk:
            decision.kind = data["kind"]
        response = Response(represented(DecisionOut, decision), status=201)
        response["Location"] = f"{request.path}{decision.pk}/"
        return response

    @extend_schema(
        request=ReverseIn,
        responses={200: DecisionOut,
                   403: OpenApiResponse(ErrorSerializer, description=(
                       "Refused (`not_allowed`): only a manager of the case's team, not the decider, reverses.")),
                   409: OpenApiResponse(ErrorSerializer, description="Already reversed (`already_decided`).")},
        summary="Reverse a decision (managers of the case's team): the usage it consumed stays consumed",
    )
    @action(detail=True, methods=["post"])
    def reverse(self, request, pk=None):
        decision = self.get_object()
        data = body(ReverseIn, request)
        return self.render(decision_reverse(actor=request.user, decision=decision, reason=data["reason"]))
