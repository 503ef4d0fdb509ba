"""The tools of an AI agent, under /api/v1/ai/: take a case, check an action, decide, hand off, and `me`.

Each tool calls one step of workflows.steps.ai, the process layer that decides whether the AI agent
owns a case, executes, records a shadow decision or hands the case to a person. The views validate
input and shape the answer; they decide nothing. The writing tools require an Idempotency-Key, so an
agent that retries after a timeout never acts twice: a replay returns the first answer.
"""

from __future__ import annotations

import functools

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from authority import selectors
from authority.models import Decision, ShadowDecision
from authority.policy.ai_agents import ai_agent_of, ai_may_act
from edges.api.idempotency import HEADER, KEY_PARAMETER, InvalidIdempotencyKey, idempotent
from edges.api.serializers.ai import (
    AiCheckIn,
    AiCheckOut,
    AiMeOut,
    DecideIn,
    HandOffIn,
    OutcomeOut,
    TakeIn,
)
from edges.api.serializers.common import amount_text
from h2h_core.models import Case, HandOff
from workflows.steps import ai as ai_steps

from .base import ApiMixin, body, visible_case

TAGS = ["ai agents"]
#: What a decision's outcome answers with: executed is created (201); shadow and handed_off are accepted (202):
#: the case goes on with a person.
DECIDE_STATUS = {"executed": status.HTTP_201_CREATED, "shadow": status.HTTP_202_ACCEPTED,
                 "handed_off": status.HTTP_202_ACCEPTED}
KEY_REQUIRED = OpenApiParameter(
    name=HEADER, type=str, location=OpenApiParameter.HEADER, required=True, pattern=KEY_PARAMETER.pattern,
    description="Required here: " + KEY_PARAMETER.description,
)


class IsActingAiAgent(BasePermission):
    """Only a registered AI agent that is not suspended uses these tools (authority.policy.ai_agents.ai_may_act)."""

    message = "These tools are for AI agents only."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        permission = ai_may_act(user)
        if not permission:
            self.message = permission.reason or self.message
        return bool(permission)


def key_required(handler):
    """Refuse a write without an Idempotency-Key: an AI agent retries, and a retry must never act twice."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        if request.headers.get(HEADER) is None:
            raise InvalidIdempotencyKey(
                f"Send an {HEADER} header (e.g. a UUID, new for each action, the same on a retry).",
                **{HEADER: ["This header is required on the AI agent's tools."]},
            )
        return handler(view, request, *args, **kwargs)

    return wrapper


def outcome_body(outcome) -> dict:
    """Return the one answer shape of the writing tools, read afresh: the case as it stands now."""
    case = Case.objects.select_related("owner").get(pk=outcome.case.pk)
    decision = outcome.decision and Decision.objects.select_related("kind").get(pk=outcome.decision.pk)
    shadow = outcome.shadow_decision and ShadowDecision.objects.select_related("kind").get(
        pk=outcome.shadow_decision.pk)
    hand_off = outcome.hand_off and HandOff.objects.select_related("to_user").get(pk=outcome.hand_off.pk)
    return OutcomeOut({
        "outcome": outcome.outcome, "case": case, "decision": decision, "shadow_decision": shadow,
        "hand_off": hand_off, "reasons": list(outcome.reasons),
    }).data


class AiToolView(ApiMixin, APIView):
    permission_classes = [IsAuthenticated, IsActingAiAgent]
    extra_error_responses = {"403": "Not a registered AI agent, or a suspended one; or a domain rule refused it."}


def written(code: int, description: str) -> dict:
    return {code: OpenApiResponse(OutcomeOut, description=description)}


class Take(AiToolView):
    @extend_schema(operation_id="ai_take", request=TakeIn, parameters=[KEY_REQUIRED], tags=TAGS,
                   responses=written(200, "owned: the AI agent owns the case now; handed_off: outside its "
                                          "routing rules, so a person owns it (or it waits in the team queue)."))
    @key_required
    @idempotent
    def post(self, request, idempotency_key=None):
        """Take a queued case of my team: I own it if my routing rules allow, else it goes to a person."""
        data = body(TakeIn, request)
        case = visible_case(request.user, data["case"])
        outcome = ai_steps.ai_case_take(actor=request.user, case=case, idempotency_key=idempotency_key,
                                        transcript=data["transcript"], summary=data["summary"])
        return Response(outcome_body(outcome), status=status.HTTP_200_OK)


class Check(AiToolView):
    @extend_schema(operation_id="ai_check", request=AiCheckIn, responses={200: AiCheckOut}, tags=TAGS)
    def post(self, request):
        """Dry run: would deciding this execute, be recorded in shadow, or go to a person? Changes nothing."""
        data = body(AiCheckIn, request)
        case = visible_case(request.user, data["case"])
        check = ai_steps.ai_case_check(actor=request.user, case=case, kind=data["kind"], amount=data["amount"],
                                       currency=data["currency"] or None, confidence=data["confidence"])
        return Response(AiCheckOut({
            "would": check.would, "verdict": check.verdict.as_dict(),
            "shadow_verdict": check.shadow_verdict.as_dict() if check.shadow_verdict else None,
            "reasons": list(check.reasons),
        }).data)


class Decide(AiToolView):
    @extend_schema(
        operation_id="ai_decide", request=DecideIn, parameters=[KEY_REQUIRED], tags=TAGS,
        responses={
            **written(201, "executed: within the AI agent's authority; the decision is carried out."),
            **written(202, "shadow: recorded as what the AI would have done, nothing executed, and a person "
                           "decides; handed_off: over its authority, outside its routing or below its "
                           "confidence, so a person owns the case, with the AI's attempt and context."),
        },
    )
    @key_required
    @idempotent
    def post(self, request, idempotency_key=None):
        """Decide on a case I own: executed within my authority; otherwise a person owns the case."""
        data = body(DecideIn, request)
        case = visible_case(request.user, data["case"])
        outcome = ai_steps.ai_case_decide(
            actor=request.user, case=case, kind=data["kind"], amount=data["amount"],
            currency=data["currency"] or None, rationale=data["rationale"], confidence=data["confidence"],
            idempotency_key=idempotency_key, transcript=data["transcript"], summary=data["summary"])
        return Response(outcome_body(outcome), status=DECIDE_STATUS.get(outcome.outcome, status.HTTP_200_OK))


class HandOffTool(AiToolView):
    @extend_schema(operation_id="ai_hand_off", request=HandOffIn, parameters=[KEY_REQUIRED], tags=TAGS,
                   responses=written(200, "handed_off: a person owns the case now (or it waits in the team "
                                          "queue), with the summary and the transcript."))
    @key_required
    @idempotent
    def post(self, request, idempotency_key=None):
        """Hand a case I own to a person, with what the customer said and what I tried."""
        data = body(HandOffIn, request)
        case = visible_case(request.user, data["case"])
        outcome = ai_steps.ai_case_hand_off(actor=request.user, case=case, reason_text=data["reason"],
                                            summary=data["summary"], transcript=data["transcript"],
                                            idempotency_key=idempotency_key)
        return Response(outcome_body(outcome), status=status.HTTP_200_OK)


def authority_rows(rows: list[dict]) -> list[dict]:
    """Shape authority_summary's rows (kind, deciding grant, suspensions, usage) as the tool's caps."""
    shaped = []
    for row in rows:
        kind, grant = row["kind"], row["deciding"]
        currency = grant.currency if grant else ""
        shaped.append({
            "kind": kind.code, "unit": kind.unit, "allowed": grant is not None and not row["suspensions"],
            "suspended": bool(row["suspensions"]), "grant": grant.pk if grant else None, "currency": currency,
            "per_case_limit": amount_text(grant.per_case_limit, currency) if grant else None,
            "period": grant.period if grant else None,
            "period_limit": amount_text(grant.period_limit, currency) if grant else None,
            "period_used": amount_text(row["used"], currency),
            "period_left": amount_text(row["left"], currency),
            "period_resets_at": row["resets_at"],
            "scoped": bool(grant and (grant.scope_categories or grant.scope_tiers)),
        })
    return shaped


def shadow_grant_rows(user, at) -> list[dict]:
    grants = (selectors.grants_applicable_to_agent(agent=user, kind_id=None, case_id=None, at=at, shadow=True)
              .filter(shadow=True, case__isnull=True).select_related("kind").order_by("kind__code", "pk"))
    return [{"grant": grant.pk, "kind": grant.kind.code, "currency": grant.currency,
             "per_case_limit": amount_text(grant.per_case_limit, grant.currency),
             "period": grant.period, "period_limit": amount_text(grant.period_limit, grant.currency)}
            for grant in grants]


class Me(AiToolView):
    @extend_schema(operation_id="ai_me", responses={200: AiMeOut}, tags=TAGS)
    def get(self, request):
        """Who I am: model and version, team, routing rules, and my authority per kind (caps, used, left)."""
        user, now = request.user, timezone.now()
        agent = ai_agent_of(user)  # the permission asked for it already: cached, with its team
        return Response(AiMeOut({
            "id": user.pk, "username": user.get_username(), "model_name": agent.model_name,
            "model_version": agent.model_version, "description": agent.description, "team": agent.team,
            "suspended": agent.is_suspended, "routing": agent,
            "authority": authority_rows(selectors.authority_summary(agent=user, at=now)),
            "shadow_grants": shadow_grant_rows(user, now),
        }).data)


__all__ = ["Check", "Decide", "HandOffTool", "IsActingAiAgent", "Me", "Take"]
