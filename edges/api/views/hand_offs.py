"""Hand-offs from AI agents to people: those on cases the caller may see, and the pickup."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.decorators import action

from edges.api.serializers.hand_offs import HandOffOut, HandOffQuery
from h2h_core.hand_offs import hand_off_pick_up, hand_offs_visible_to
from h2h_core.models import HandOff

from .base import ResourceViewSet

RELATED = ("case", "from_agent", "to_user", "picked_up_by")


@extend_schema_view(
    list=extend_schema(parameters=[HandOffQuery], summary="Hand-offs from AI agents on cases I may see"),
    retrieve=extend_schema(summary="One hand-off, with the AI's summary, attempts and transcript"),
)
class HandOffViewSet(ResourceViewSet):
    """A case an AI agent passed to a person, with what the customer said, what the AI tried and why it stopped."""

    serializer_class = HandOffOut
    query_class = HandOffQuery

    def get_queryset(self):
        return hand_offs_visible_to(self.request.user).select_related(*RELATED).order_by("-created_at", "-id")

    def rendered(self):
        return HandOff.objects.select_related(*RELATED)

    def filter_list(self, queryset, filters):
        if "picked_up" in filters:
            queryset = queryset.filter(picked_up_at__isnull=not filters["picked_up"])
        if "case" in filters:
            queryset = queryset.filter(case_id=filters["case"])
        return queryset

    @extend_schema(request=None, responses={200: HandOffOut},
                   summary="Pick up a hand-off of a case I own (a repeat is a no-op)")
    @action(detail=True, methods=["post"], url_path="pick-up")
    def pick_up(self, request, pk=None):
        return self.render(hand_off_pick_up(actor=request.user, hand_off=self.get_object()))
