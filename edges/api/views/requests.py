"""One-hop authority requests: open, approve and reject them through the request's flow."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.decorators import action

from authority import policy, selectors
from authority.models import AuthorityRequest, RequestStatus
from edges.api.idempotency import KEY_PARAMETER, idempotent
from edges.api.serializers.requests import NoteIn, RejectIn, RequestIn, RequestOut, RequestQuery
from workflows import services as flow_steps

from .base import ResourceViewSet, body, visible_case

RELATED = ("case", "requester", "kind", "decided_by", "one_off_grant")


@extend_schema_view(
    list=extend_schema(parameters=[RequestQuery],
                       summary="Authority requests on cases I may see, mine, and those waiting for me"),
    retrieve=extend_schema(summary="One authority request"),
)
class AuthorityRequestViewSet(ResourceViewSet):
    """One-hop requests for a one-off grant: the requester's, those on cases the caller sees, those awaiting them."""

    serializer_class = RequestOut
    query_class = RequestQuery

    def get_queryset(self):
        return policy.requests_visible_to(self.request.user).select_related(*RELATED).order_by(
            "-created_at", "-id")

    def rendered(self):
        return AuthorityRequest.objects.select_related(*RELATED)

    def filter_list(self, queryset, filters):
        if "status" in filters:
            queryset = queryset.filter(status=filters["status"])
        if "case" in filters:
            queryset = queryset.filter(case_id=filters["case"])
        if filters.get("mine"):
            queryset = queryset.filter(requester=self.request.user)
        if filters.get("awaiting_me"):
            queryset = queryset.filter(pk__in=selectors.requests_for_approver(self.request.user).values("pk"),
                                       status=RequestStatus.OPEN)
        return queryset

    @extend_schema(request=RequestIn, responses={201: RequestOut}, parameters=[KEY_PARAMETER],
                   summary="Ask for a one-off grant over my headroom: one hop to the approver pool")
    @idempotent
    def create(self, request, idempotency_key=None):
        data = body(RequestIn, request)
        case = visible_case(request.user, data["case"])
        opened = flow_steps.authority_request_flow_open(
            actor=request.user, case=case, kind=data["kind"], amount=data["amount"],
            currency=data["currency"] or None, justification=data["justification"], idempotency_key=idempotency_key)
        return self.created(opened)

    @extend_schema(request=NoteIn, responses={200: RequestOut},
                   summary="Approve: the requester gets a one-off grant on that case and amount")
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        authority_request = self.get_object()
        data = body(NoteIn, request)
        return self.render(flow_steps.authority_request_flow_approve(actor=request.user, request=authority_request,
                                                                     note=data["note"]))

    @extend_schema(request=RejectIn, responses={200: RequestOut}, summary="Reject, with a reason for the agent")
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        authority_request = self.get_object()
        data = body(RejectIn, request)
        return self.render(flow_steps.authority_request_flow_reject(actor=request.user, request=authority_request,
                                                                    note=data["note"]))
