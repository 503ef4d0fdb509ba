"""Cases: open (intake), list and read, claim, hand over, resolve: each a step of the case's flow."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated

from edges.api import permissions
from edges.api.idempotency import KEY_PARAMETER, idempotent
from edges.api.serializers.cases import CaseIn, CaseOut, CaseQuery, HandoverIn, ResolveIn
from h2h_core.models import Case, Customer
from h2h_core.models.cases import OPEN_STATUSES
from workflows import case_search
from workflows import services as flow_steps

from .base import ResourceViewSet, body, user_named, username_or_me

RELATED = ("customer", "team", "owner")


@extend_schema_view(
    list=extend_schema(parameters=[CaseQuery], summary="Cases I may see, filtered"),
    retrieve=extend_schema(summary="One case"),
)
class CaseViewSet(ResourceViewSet):
    """Cases: agents see their teams' and their own, managers their teams', auditors all."""

    serializer_class = CaseOut
    query_class = CaseQuery

    def get_queryset(self):
        return permissions.cases_visible_to(self.request.user).select_related(*RELATED)

    def rendered(self):
        return Case.objects.select_related(*RELATED)

    def filter_list(self, queryset, filters):
        if "status" in filters:
            queryset = queryset.filter(status=filters["status"])
        if "open" in filters:
            opened = {"status__in": OPEN_STATUSES}
            queryset = queryset.filter(**opened) if filters["open"] else queryset.exclude(**opened)
        if "category" in filters:
            queryset = queryset.filter(category=filters["category"])
        if "owner" in filters:
            queryset = queryset.filter(owner__username=username_or_me(self.request, filters["owner"]))
        if "team" in filters:
            queryset = queryset.filter(team__slug=filters["team"])
        if "customer" in filters:
            queryset = queryset.filter(customer_id=filters["customer"])
        if "min_stakes" in filters:
            queryset = queryset.filter(stakes_score__gte=filters["min_stakes"])
        searched = {name: filters[name] for name in ("q", "sla", "waiting", "sort") if name in filters}
        if searched:
            queryset = case_search.cases_filtered(queryset, user=self.request.user, now=timezone.now(),
                                                  query=case_search.CaseQuery(**searched))
        return queryset

    def get_permissions(self):
        if self.action == "create":
            return [IsAuthenticated(), permissions.MayOpenCases()]
        return super().get_permissions()

    @extend_schema(request=CaseIn, responses={201: CaseOut}, parameters=[KEY_PARAMETER],
                   summary="Open a case (intake): it is scored and routed to its team's queue")
    @idempotent
    def create(self, request, idempotency_key=None):
        data = body(CaseIn, request)
        customer = Customer.objects.filter(pk=data["customer"]).first()
        if customer is None:
            raise ValidationError({"customer": [f"No customer has the id {data['customer']}."]})
        case = flow_steps.case_flow_open(actor=request.user, customer=customer, subject=data["subject"],
                                        description=data["description"], category=data["category"],
                                        amount_at_stake=data["amount_at_stake"], currency=data["currency"],
                                        idempotency_key=idempotency_key)
        return self.created(case)

    @extend_schema(request=None, responses={200: CaseOut}, summary="Claim a case from my team's queue")
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        return self.render(flow_steps.case_flow_claim(actor=request.user, case=self.get_object()))

    @extend_schema(request=HandoverIn, responses={200: CaseOut},
                   summary="Hand the case over to another agent of its team, with a context note")
    @action(detail=True, methods=["post"])
    def handover(self, request, pk=None):
        case = self.get_object()
        data = body(HandoverIn, request)
        to_user = user_named(data["to_user"], field="to_user")
        return self.render(flow_steps.case_flow_handover(actor=request.user, case=case, to_user=to_user,
                                                         note=data["note"]))

    @extend_schema(request=ResolveIn, responses={200: CaseOut}, summary="Resolve a case I own")
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        case = self.get_object()
        data = body(ResolveIn, request)
        return self.render(flow_steps.case_flow_resolve(actor=request.user, case=case, summary=data["summary"]))
