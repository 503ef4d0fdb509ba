"""The REST API for integrators and people: thin edges over the same services as the web pages.

Views check the shape of input (serializers), find the objects the caller may see (querysets from
`permissions`), call one service and render its result. They decide nothing: every rule is the
service's or the policy's, and every refusal comes back in the one error shape (`errors`).
"""

from __future__ import annotations

import dataclasses

from axes.helpers import get_cool_off
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from authority import policy, selectors
from authority.models import AuthorityKind, AuthorityRequest, Decision, Grant, RequestStatus
from authority.services import (
    GrantTerms,
    authority_request_approve,
    authority_request_open,
    authority_request_reject,
    decision_execute,
    grant_change,
    grant_confirm,
    grant_create,
    grant_end,
    grant_reject,
)
from edges.api import permissions
from edges.api import serializers as s
from edges.api.errors import error_body
from edges.api.idempotency import KEY_PARAMETER, idempotent
from edges.api.pagination import AuditCursor, Pages
from edges.api.schema import ApiSchema
from h2h_core.models import AuditEvent, Case, Customer, Team
from h2h_core.models.cases import OPEN_STATUSES
from h2h_core.people import api_token_issue
from workflows import services as flow_steps

User = get_user_model()


class ApiMixin:
    """What every API view shares: JSON only, token or session auth, documented errors."""

    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]
    permission_classes = [IsAuthenticated]
    schema = ApiSchema()


def query(serializer_class, request) -> dict:
    """Validate the query string with `serializer_class`; bad filters are a 400, not an empty list.

    A plain dict, not the QueryDict: DRF reads a blank form value as "absent", so `?status=` would
    quietly list everything; here a blank value is checked like any other and refused.
    """
    serializer = serializer_class(data={key: request.query_params.get(key) for key in request.query_params})
    serializer.is_valid(raise_exception=True)
    return {key: value for key, value in serializer.validated_data.items() if value is not None}


def body(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def visible_case(user, pk: int) -> Case:
    """Return the case if the caller may see it; otherwise 404, whether or not it exists."""
    case = permissions.cases_visible_to(user).select_related("customer", "team", "owner").filter(pk=pk).first()
    if case is None:
        raise NotFound("No such case, or you may not see it.")
    return case


def user_named(username: str, *, field: str):
    if username == "me":
        raise ValidationError({field: ["Give a username here, not `me`."]})
    user = User.objects.filter(username=username).first()
    if user is None:
        raise ValidationError({field: [f"No user is called {username!r}."]})
    return user


def created(data, location: str) -> Response:
    return Response(data, status=status.HTTP_201_CREATED, headers={"Location": location})


# --- auth -------------------------------------------------------------------------------------


class TokenView(ApiMixin, APIView):
    """Exchange a username and password for an API token (send it as `Authorization: Token <token>`)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    extra_error_responses = {"429": "Too many failed attempts: this username is locked out from your address."}

    @extend_schema(operation_id="auth_token_create", request=s.TokenIn, responses={200: s.TokenOut}, auth=[],
                   tags=["auth"])
    def post(self, request):
        data = body(s.TokenIn, request)
        user = authenticate(request=request, username=data["username"], password=data["password"])
        if user is None:
            if getattr(request, "axes_locked_out", False):
                cool_off = get_cool_off(request)
                seconds = int(cool_off.total_seconds()) if cool_off else None
                return Response(
                    error_body("too_many_attempts", "Too many failed logins for this username: try again later.",
                               {"retry_after_seconds": seconds} if seconds else {}),
                    status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(seconds)} if seconds else {})
            return Response(error_body("invalid_credentials", "Unable to log in with this username and password."),
                            status=status.HTTP_400_BAD_REQUEST)
        token = api_token_issue(actor=user, user=user)  # created (and audited) on first use
        return Response({"token": token.key, "username": user.get_username(),
                         "roles": sorted(policy.roles_of(user))})


class MeView(ApiMixin, APIView):
    @extend_schema(operation_id="me_retrieve", responses={200: s.MeOut}, tags=["auth"])
    def get(self, request):
        """Who am I: my roles and the teams I manage."""
        user = request.user
        return Response({"id": user.pk, "username": user.get_username(), "roles": sorted(policy.roles_of(user)),
                         "managed_team_ids": policy.managed_team_ids(user)})


# --- authority kinds and the dry-run check ----------------------------------------------------


class KindList(ApiMixin, APIView):
    @extend_schema(operation_id="authority_kinds_list", responses={200: s.KindOut(many=True)},
                   tags=["authority"])
    def get(self, request):
        """What can be decided, and in which unit."""
        return Response(s.KindOut(AuthorityKind.objects.order_by("code"), many=True).data)


class AuthorityCheck(ApiMixin, APIView):
    @extend_schema(operation_id="authority_check", request=s.CheckIn, responses={200: s.VerdictOut},
                   tags=["authority"])
    def post(self, request):
        """Dry run: may I decide this kind and amount on this case now, and what is left? Changes nothing."""
        data = body(s.CheckIn, request)
        case = visible_case(request.user, data["case"])
        verdict = policy.evaluate(agent=request.user, kind=data["kind"], amount=data["amount"],
                                  currency=data["currency"] or None, case=case)
        return Response(verdict.as_dict())


# --- cases ------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[s.CaseQuery], summary="Cases I may see, filtered"),
    retrieve=extend_schema(summary="One case"),
)
class CaseViewSet(ApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Cases: agents see their teams' and their own, managers their teams', auditors all."""

    serializer_class = s.CaseOut
    pagination_class = Pages
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return permissions.cases_visible_to(self.request.user).select_related("customer", "team", "owner")

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        filters = query(s.CaseQuery, self.request)
        if "status" in filters:
            queryset = queryset.filter(status=filters["status"])
        if "open" in filters:
            opened = {"status__in": OPEN_STATUSES}
            queryset = queryset.filter(**opened) if filters["open"] else queryset.exclude(**opened)
        if "category" in filters:
            queryset = queryset.filter(category=filters["category"])
        if "owner" in filters:
            owner = filters["owner"]
            queryset = queryset.filter(owner=self.request.user) if owner == "me" else queryset.filter(
                owner__username=owner)
        if "team" in filters:
            queryset = queryset.filter(team__slug=filters["team"])
        if "customer" in filters:
            queryset = queryset.filter(customer_id=filters["customer"])
        if "min_stakes" in filters:
            queryset = queryset.filter(stakes_score__gte=filters["min_stakes"])
        return queryset

    def get_permissions(self):
        if self.action == "create":
            return [IsAuthenticated(), permissions.MayOpenCases()]
        return super().get_permissions()

    def _render(self, case: Case, *, code: int = status.HTTP_200_OK) -> Response:
        fresh = Case.objects.select_related("customer", "team", "owner").get(pk=case.pk)
        return Response(s.CaseOut(fresh).data, status=code)

    @extend_schema(request=s.CaseIn, responses={201: s.CaseOut}, parameters=[KEY_PARAMETER],
                   summary="Open a case (intake): it is scored and routed to its team's queue")
    @idempotent
    def create(self, request, idempotency_key=None):
        data = body(s.CaseIn, request)
        customer = Customer.objects.filter(pk=data["customer"]).first()
        if customer is None:
            raise ValidationError({"customer": [f"No customer has the id {data['customer']}."]})
        case = flow_steps.case_flow_open(actor=request.user, customer=customer, subject=data["subject"],
                                        description=data["description"], category=data["category"],
                                        amount_at_stake=data["amount_at_stake"], currency=data["currency"])
        response = self._render(case, code=status.HTTP_201_CREATED)
        response["Location"] = f"{request.path}{case.pk}/"
        return response

    @extend_schema(request=None, responses={200: s.CaseOut}, summary="Claim a case from my team's queue")
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        case = flow_steps.case_flow_claim(actor=request.user, case=self.get_object())
        return self._render(case)

    @extend_schema(request=s.HandoverIn, responses={200: s.CaseOut},
                   summary="Hand the case over to another agent of its team, with a context note")
    @action(detail=True, methods=["post"])
    def handover(self, request, pk=None):
        case = self.get_object()
        data = body(s.HandoverIn, request)
        to_user = user_named(data["to_user"], field="to_user")
        case = flow_steps.case_flow_handover(actor=request.user, case=case, to_user=to_user, note=data["note"])
        return self._render(case)

    @extend_schema(request=s.ResolveIn, responses={200: s.CaseOut}, summary="Resolve a case I own")
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        case = self.get_object()
        data = body(s.ResolveIn, request)
        case = flow_steps.case_flow_resolve(actor=request.user, case=case, summary=data["summary"])
        return self._render(case)


# --- decisions --------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[s.DecisionQuery], summary="Decisions on cases I may see"),
    retrieve=extend_schema(summary="One decision, with the verdict and grant version that allowed it"),
)
class DecisionViewSet(ApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.DecisionOut
    pagination_class = Pages
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return policy.decisions_visible_to(self.request.user).select_related("case", "agent", "kind").order_by(
            "-executed_at", "-id")

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        filters = query(s.DecisionQuery, self.request)
        if "case" in filters:
            queryset = queryset.filter(case_id=filters["case"])
        if "kind" in filters:
            queryset = queryset.filter(kind__code=filters["kind"])
        if "agent" in filters:
            agent = filters["agent"]
            queryset = queryset.filter(agent=self.request.user) if agent == "me" else queryset.filter(
                agent__username=agent)
        if "executed_after" in filters:
            queryset = queryset.filter(executed_at__gte=filters["executed_after"])
        if "executed_before" in filters:
            queryset = queryset.filter(executed_at__lt=filters["executed_before"])
        return queryset

    @extend_schema(
        request=s.DecisionIn,
        responses={201: s.DecisionOut,
                   403: OpenApiResponse(s.ErrorSerializer, description=(
                       "Refused: `code` is authority_denied (details: reasons, per-case and period headroom, "
                       "approvers, the whole verdict) or not_case_owner."))},
        parameters=[KEY_PARAMETER],
        summary="Execute a decision on a case I own, within my authority",
    )
    @idempotent
    def create(self, request, idempotency_key=None):
        data = body(s.DecisionIn, request)
        case = visible_case(request.user, data["case"])
        decision = decision_execute(actor=request.user, case=case, kind=data["kind"], amount=data["amount"],
                                    currency=data["currency"] or None, rationale=data["rationale"],
                                    idempotency_key=idempotency_key)
        decision = Decision.objects.select_related("case", "agent", "kind").get(pk=decision.pk)
        return created(s.DecisionOut(decision).data, f"{request.path}{decision.pk}/")


# --- authority requests -----------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[s.RequestQuery],
                       summary="Authority requests on cases I may see, mine, and those waiting for me"),
    retrieve=extend_schema(summary="One authority request"),
)
class AuthorityRequestViewSet(ApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                              viewsets.GenericViewSet):
    serializer_class = s.RequestOut
    pagination_class = Pages
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return permissions.requests_visible_to(self.request.user).select_related(
            "case", "requester", "kind", "decided_by").order_by("-created_at", "-id")

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        filters = query(s.RequestQuery, self.request)
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

    def _render(self, request_obj: AuthorityRequest, *, code: int = status.HTTP_200_OK) -> Response:
        fresh = AuthorityRequest.objects.select_related("case", "requester", "kind", "decided_by").get(
            pk=request_obj.pk)
        return Response(s.RequestOut(fresh).data, status=code)

    @extend_schema(request=s.RequestIn, responses={201: s.RequestOut}, parameters=[KEY_PARAMETER],
                   summary="Ask for a one-off grant over my headroom: one hop to the approver pool")
    @idempotent
    def create(self, request, idempotency_key=None):
        data = body(s.RequestIn, request)
        case = visible_case(request.user, data["case"])
        opened = authority_request_open(actor=request.user, case=case, kind=data["kind"], amount=data["amount"],
                                        currency=data["currency"] or None, justification=data["justification"],
                                        idempotency_key=idempotency_key)
        response = self._render(opened, code=status.HTTP_201_CREATED)
        response["Location"] = f"{request.path}{opened.pk}/"
        return response

    @extend_schema(request=s.NoteIn, responses={200: s.RequestOut},
                   summary="Approve: the requester gets a one-off grant on that case and amount")
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        authority_request = self.get_object()
        data = body(s.NoteIn, request)
        return self._render(authority_request_approve(actor=request.user, request=authority_request,
                                                      note=data["note"]))

    @extend_schema(request=s.RejectIn, responses={200: s.RequestOut}, summary="Reject, with a reason for the agent")
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        authority_request = self.get_object()
        data = body(s.RejectIn, request)
        return self._render(authority_request_reject(actor=request.user, request=authority_request,
                                                     note=data["note"]))


# --- grants -----------------------------------------------------------------------------------


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


GRANT_RELATED = ("kind", "subject_user", "subject_team", "subject_role", "granted_by", "confirmed_by")


@extend_schema_view(
    list=extend_schema(parameters=[s.GrantQuery],
                       summary="Grant versions I may see; with `at`, those in force at that instant"),
    retrieve=extend_schema(summary="One grant version"),
)
class GrantViewSet(ApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Grants are versioned, never edited: a change writes a new version (maker-checker above a threshold)."""

    serializer_class = s.GrantOut
    pagination_class = Pages
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return permissions.grants_visible_to(self.request.user).with_state().select_related(*GRANT_RELATED).order_by(
            "kind__code", "lineage", "version", "id")

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        filters = query(s.GrantQuery, self.request)
        if "at" in filters:
            queryset = queryset.filter(selectors.in_force_at(policy.validate_instant(filters["at"])))
        if "kind" in filters:
            queryset = queryset.filter(kind__code=filters["kind"])
        if "status" in filters:
            queryset = queryset.filter(status=filters["status"])
        if "subject_user" in filters:
            queryset = queryset.filter(subject_user__username=filters["subject_user"])
        if "subject_team" in filters:
            queryset = queryset.filter(subject_team__slug=filters["subject_team"])
        if "subject_role" in filters:
            queryset = queryset.filter(subject_role__name=filters["subject_role"])
        if "lineage" in filters:
            queryset = queryset.filter(lineage=filters["lineage"])
        return queryset

    def _render(self, grant: Grant, *, code: int = status.HTTP_200_OK) -> Response:
        fresh = Grant.objects.with_state().select_related(*GRANT_RELATED).get(pk=grant.pk)
        return Response(s.GrantOut(fresh).data, status=code)

    @extend_schema(request=s.GrantIn, responses={201: s.GrantOut}, parameters=[KEY_PARAMETER],
                   summary="Give a person, team or role authority; above the kind's threshold it waits for a "
                           "second manager (status pending)")
    @idempotent
    def create(self, request, idempotency_key=None):
        data = body(s.GrantIn, request)
        subject = {
            "user": user_named(data["subject_user"], field="subject_user") if data.get("subject_user") else None,
            "team": self._team(data["subject_team"]) if data.get("subject_team") else None,
            "role": self._role(data["subject_role"]) if data.get("subject_role") else None,
        }
        grant = grant_create(actor=request.user, kind=data["kind"], terms=terms_of(data), reason=data["reason"],
                             **subject)
        response = self._render(grant, code=status.HTTP_201_CREATED)
        response["Location"] = f"{request.path}{grant.pk}/"
        return response

    @staticmethod
    def _team(slug: str) -> Team:
        team = Team.objects.filter(slug=slug).first()
        if team is None:
            raise ValidationError({"subject_team": [f"No team has the slug {slug!r}."]})
        return team

    @staticmethod
    def _role(name: str) -> Group:
        role = Group.objects.filter(name=name).first()
        if role is None:
            raise ValidationError({"subject_role": [f"No role is called {name!r}."]})
        return role

    @extend_schema(request=s.GrantTermsIn, responses={201: s.GrantOut}, parameters=[KEY_PARAMETER],
                   summary="Change a grant: writes a new version (pending above the threshold)")
    @action(detail=True, methods=["post"])
    @idempotent
    def change(self, request, pk=None, idempotency_key=None):
        grant = self.get_object()
        data = body(s.GrantTermsIn, request)
        new = grant_change(actor=request.user, grant=grant, terms=terms_of(data), reason=data["reason"])
        return self._render(new, code=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.GrantOut},
                   summary="Confirm a pending grant as the second manager (maker-checker)")
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        return self._render(grant_confirm(actor=request.user, grant=self.get_object()))

    @extend_schema(request=s.ReasonIn, responses={200: s.GrantOut},
                   summary="Reject a pending grant; the previous version stays in force")
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        grant = self.get_object()
        data = body(s.ReasonIn, request)
        return self._render(grant_reject(actor=request.user, grant=grant, reason=data["reason"]))

    @extend_schema(request=s.ReasonIn, responses={200: s.GrantOut}, summary="End a grant now")
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        grant = self.get_object()
        data = body(s.ReasonIn, request)
        return self._render(grant_end(actor=request.user, grant=grant, reason=data["reason"]))


# --- the audit log ----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(parameters=[s.AuditQuery], summary="Audit events, newest first (auditors)"),
    retrieve=extend_schema(summary="One audit event by its sequence number (auditors)"),
)
class AuditEventViewSet(ApiMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.AuditEventOut
    pagination_class = AuditCursor
    permission_classes = [IsAuthenticated, permissions.IsAuditor]
    lookup_field = "seq"
    lookup_value_regex = "[0-9]+"
    queryset = AuditEvent.objects.all()

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        filters = query(s.AuditQuery, self.request)
        for param, lookup in (("action", "action"), ("actor", "actor_username"), ("object_type", "object_type"),
                              ("object_id", "object_id"), ("outcome", "outcome"),
                              ("occurred_after", "occurred_at__gte"), ("occurred_before", "occurred_at__lt")):
            if param in filters:
                queryset = queryset.filter(**{lookup: filters[param]})
        return queryset


class AuditVerify(ApiMixin, APIView):
    permission_classes = [IsAuthenticated, permissions.IsAuditor]

    @extend_schema(operation_id="audit_verify", responses={200: s.ChainReportOut}, tags=["audit"])
    def get(self, request):
        """Recompute the whole hash chain now and check the signed checkpoints: intact, or the first bad entry."""
        from h2h_core.audit.verify import verify_chain

        report = verify_chain()
        data = dataclasses.asdict(report)
        data["summary"] = report.summary()
        data["verified_at"] = timezone.now()
        return Response(s.ChainReportOut(data).data)
