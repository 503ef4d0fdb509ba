"""Grants: give, change (a new version), confirm or reject as the second manager, end."""

from __future__ import annotations

from django.contrib.auth.models import Group
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from authority import policy, selectors
from authority.models import Grant, GrantStatus
from authority.reports.replay import grant_change_replay
from authority.services import GrantTerms, grant_change, grant_confirm, grant_create, grant_end, grant_reject
from edges.api import permissions
from edges.api.idempotency import KEY_PARAMETER, idempotent
from edges.api.serializers.grants import GrantIn, GrantOut, GrantQuery, GrantTermsIn, ReasonIn
from edges.api.serializers.replay import ReplayOut, ReplayQuery
from h2h_core.models import Team

from .base import ResourceViewSet, body, query, user_named

RELATED = ("kind", "subject_user", "subject_team", "subject_role", "granted_by", "confirmed_by")
#: Query parameter -> lookup, for the filters that are one exact match.
EXACT_FILTERS = (("kind", "kind__code"), ("status", "status"), ("subject_user", "subject_user__username"),
                 ("subject_team", "subject_team__slug"), ("subject_role", "subject_role__name"),
                 ("lineage", "lineage"))


def terms_of(data: dict) -> GrantTerms:
    return GrantTerms(
        effect=data["effect"],
        per_case_limit=data["per_case_limit"],
        period_limit=data["period_limit"],
        period=data["period"],
        currency=data["currency"],
        scope_categories=tuple(data["scope_categories"]),
        scope_tiers=tuple(data["scope_tiers"]),
        valid_from=data["valid_from"],
        valid_until=data["valid_until"],
    )


def team_named(slug: str) -> Team:
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise ValidationError({"subject_team": [f"No team has the slug {slug!r}."]})
    return team


def role_named(name: str) -> Group:
    role = Group.objects.filter(name=name).first()
    if role is None:
        raise ValidationError({"subject_role": [f"No role is called {name!r}."]})
    return role


@extend_schema_view(
    list=extend_schema(parameters=[GrantQuery],
                       summary="Grant versions I may see; with `at`, those in force at that instant"),
    retrieve=extend_schema(summary="One grant version"),
)
class GrantViewSet(ResourceViewSet):
    """Grants are versioned, never edited: a change writes a new version (maker-checker above a threshold)."""

    serializer_class = GrantOut
    query_class = GrantQuery

    def get_queryset(self):
        return permissions.grants_visible_to(self.request.user).with_state().select_related(*RELATED).order_by(
            "kind__code", "lineage", "version", "id")

    def rendered(self):
        return Grant.objects.with_state().select_related(*RELATED)

    def filter_list(self, queryset, filters):
        if "at" in filters:
            queryset = queryset.filter(selectors.in_force_at(policy.validate_instant(filters["at"])))
        return queryset.filter(**{lookup: filters[param] for param, lookup in EXACT_FILTERS if param in filters})

    @extend_schema(request=GrantIn, responses={201: GrantOut}, parameters=[KEY_PARAMETER],
                   summary="Give a person, team or role authority; above the kind's threshold it waits for a "
                           "second manager (status pending)")
    @idempotent
    def create(self, request, idempotency_key=None):
        data = body(GrantIn, request)
        subject = {
            "user": user_named(data["subject_user"], field="subject_user") if data.get("subject_user") else None,
            "team": team_named(data["subject_team"]) if data.get("subject_team") else None,
            "role": role_named(data["subject_role"]) if data.get("subject_role") else None,
        }
        grant = grant_create(actor=request.user, kind=data["kind"], terms=terms_of(data), reason=data["reason"],
                             idempotency_key=idempotency_key, shadow=bool(data["shadow"]), **subject)
        return self.created(grant)

    @extend_schema(request=GrantTermsIn, responses={201: GrantOut}, parameters=[KEY_PARAMETER],
                   summary="Change a grant: writes a new version (pending above the threshold)")
    @action(detail=True, methods=["post"])
    @idempotent
    def change(self, request, pk=None, idempotency_key=None):
        grant = self.get_object()
        data = body(GrantTermsIn, request)
        new = grant_change(actor=request.user, grant=grant, terms=terms_of(data), reason=data["reason"],
                           idempotency_key=idempotency_key, shadow=data["shadow"])
        return self.render(new, code=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: GrantOut},
                   summary="Confirm a pending grant as the second manager (maker-checker)")
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        return self.render(grant_confirm(actor=request.user, grant=self.get_object()))

    @extend_schema(request=ReasonIn, responses={200: GrantOut},
                   summary="Reject a pending grant; the previous version stays in force")
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        grant = self.get_object()
        data = body(ReasonIn, request)
        return self.render(grant_reject(actor=request.user, grant=grant, reason=data["reason"]))

    @extend_schema(request=None, responses={200: ReplayOut}, parameters=[ReplayQuery],
                   summary="Replay a pending change over recent history: the refusals it would have allowed, the "
                           "requests it would have avoided, the decisions it would have refused")
    @action(detail=True, methods=["get"])
    def replay(self, request, pk=None):
        grant = self.get_object()
        if grant.status != GrantStatus.PENDING:
            raise ValidationError({"grant": ["Only a pending grant change can be replayed."]})
        if grant.granted_by_id != request.user.pk:
            permission = policy.may_check(request.user, grant)
            if not permission:
                raise PermissionDenied(permission.reason)
        days = query(ReplayQuery, request)["days"]
        return Response(ReplayOut(grant_change_replay(pending=grant, days=days)).data)

    @extend_schema(request=ReasonIn, responses={200: GrantOut}, summary="End a grant now")
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        grant = self.get_object()
        data = body(ReasonIn, request)
        return self.render(grant_end(actor=request.user, grant=grant, reason=data["reason"]))
