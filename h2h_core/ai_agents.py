"""AI agents: register, change, suspend and reinstate the service identities run by software.

An AI agent is an account (role "AI agent", no password: it signs in with API tokens only), a
member of one team, and an `AiAgent` row naming the model and version it runs and the routing rules
that say which cases it may own (`authority.policy.ai_agents.ai_may_own` asks them). Its authority is
ordinary grants.

Managers of the AI agent's team (and superusers) manage it: `may_manage_ai_agents` is the one rule,
asked by these services under the AI agent's row lock and by the console for what to offer. The
system (`actor=None`: the seed, a command) may too, as it may create any account.

Suspension stops an AI agent at once: its account is deactivated in the same transaction, so its API
tokens stop opening the API (`h2h_core.api_tokens.api_token_usable`), and `ai_may_act` refuses it.
Handing its open cases to people is the process step's part (`workflows.steps.ai_agents`).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from . import lock_objects
from .access import ALLOWED, Permission, managed_team_ids
from .amounts import plain_decimal
from .api_tokens import IssuedToken, api_token_new
from .audit import audit_record
from .audit.refusals import audits_refusals
from .errors import DomainError
from .models import AiAgent, ApiToken, CaseCategory, CustomerTier, Role, Team
from .people import team_add_member
from .transactions import service_atomic

User = get_user_model()

MAX_STAKES = 100
CONFIDENCE_PLACES = 3
REASON_MAX_LENGTH = 2000
# What `ai_agent_update` may change; the account, the team and the suspension have their own paths.
CHANGEABLE = ("model_name", "model_version", "description", "route_categories", "route_tiers", "max_stakes",
              "hand_off_negative_sentiment", "min_confidence")


class AiAgentSuspended(DomainError):
    """The AI agent is suspended: it cannot act, and it is not given a new token."""

    code = "ai_agent_suspended"


class AiAgentNotSuspended(DomainError):
    code = "ai_agent_not_suspended"


# --- who may -----------------------------------------------------------------------------------


def may_manage_ai_agents(actor, team: Team) -> Permission:
    """Managers of `team` (and superusers) register, change, suspend and reinstate its AI agents."""
    if actor is None:
        return ALLOWED  # the system: the seed, a command
    if not (getattr(actor, "is_authenticated", False) and getattr(actor, "is_active", False)):
        return Permission.deny("Sign in as a manager to manage AI agents.")
    if actor.is_superuser or team.pk in managed_team_ids(actor):
        return ALLOWED
    return Permission.deny(f"Only managers of {team.name} register, change or suspend its AI agents.")


_NO_AI_AGENT = object()


def ai_agent_of(user) -> AiAgent | None:
    """Return the user's AI agent registration (None for a person), cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False) or getattr(user, "pk", None) is None:
        return None
    cached = getattr(user, "_h2h_ai_agent", _NO_AI_AGENT)
    if cached is _NO_AI_AGENT:
        cached = AiAgent.objects.select_related("team").filter(user_id=user.pk).first()
        user._h2h_ai_agent = cached
    return cached


def ai_may_act(user) -> Permission:
    """An AI agent acts (checks, decides, hands off) only while registered, not suspended and its account active."""
    if not getattr(user, "is_authenticated", False):
        return Permission.deny("Sign in with the AI agent's API token.")
    agent = ai_agent_of(user)
    if agent is None:
        return Permission.deny(f"{user.get_username()} is not a registered AI agent.")
    if agent.is_suspended:
        return Permission.deny(f"AI agent {user.get_username()} is suspended: {agent.suspension_reason}",
                               AiAgentSuspended)
    if not user.is_active:
        return Permission.deny(f"The account of AI agent {user.get_username()} is deactivated.", AiAgentSuspended)
    return ALLOWED


# --- input ---------------------------------------------------------------------------------------


def _text(value, *, field: str, label: str, max_length: int, required: bool, errors: dict) -> str:
    if not isinstance(value, str):
        errors[field] = f"The {label} must be text."
        return ""
    value = value.strip()
    if required and not value:
        errors[field] = f"Give the {label}."
    elif len(value) > max_length:
        errors[field] = f"The {label} is too long: at most {max_length} characters."
    elif "\x00" in value:
        errors[field] = f"The {label} may not contain NUL characters."
    return value


def _choices(values, *, field: str, allowed: Iterable[str], what: str, errors: dict) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        errors[field] = f"Give the {what} as a list."
        return []
    values = [str(value) for value in values]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        errors[field] = f"Unknown {what}: {', '.join(unknown)}."
    return sorted(set(values), key=list(allowed).index) if not unknown else []


def _max_stakes(value, errors: dict) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        errors["max_stakes"] = f"The highest stakes score is a whole number from 0 to {MAX_STAKES}."
        return 0
    if not 0 <= value <= MAX_STAKES:
        errors["max_stakes"] = f"The highest stakes score is a whole number from 0 to {MAX_STAKES}, not {value}."
    return value


def _min_confidence(value, errors: dict) -> Decimal:
    try:
        confidence = plain_decimal(value, label="minimum confidence")
    except ValidationError as error:
        errors["min_confidence"] = " ".join(error.messages)
        return Decimal(0)
    if not Decimal(0) <= confidence <= Decimal(1):
        errors["min_confidence"] = "The minimum confidence is a number from 0 to 1, such as 0.7."
    elif confidence != confidence.quantize(Decimal("0.001")):
        errors["min_confidence"] = f"Give the minimum confidence with at most {CONFIDENCE_PLACES} decimal places."
    return confidence.quantize(Decimal("0.001")) if not errors.get("min_confidence") else confidence


def _boolean(value, *, field: str, errors: dict) -> bool:
    if not isinstance(value, bool):
        errors[field] = "Say yes or no (true or false)."
    return bool(value)


VALIDATORS = {
    "model_name": lambda v, e: _text(v, field="model_name", label="model name",
                                     max_length=AiAgent._meta.get_field("model_name").max_length, required=True,
                                     errors=e),
    "model_version": lambda v, e: _text(v, field="model_version", label="model version",
                                        max_length=AiAgent._meta.get_field("model_version").max_length,
                                        required=True, errors=e),
    "description": lambda v, e: _text(v, field="description", label="description", max_length=REASON_MAX_LENGTH,
                                      required=False, errors=e),
    "route_categories": lambda v, e: _choices(v, field="route_categories", allowed=CaseCategory.values,
                                              what="case categories", errors=e),
    "route_tiers": lambda v, e: _choices(v, field="route_tiers", allowed=CustomerTier.values,
                                         what="customer tiers", errors=e),
    "max_stakes": _max_stakes,
    "hand_off_negative_sentiment": lambda v, e: _boolean(v, field="hand_off_negative_sentiment", errors=e),
    "min_confidence": _min_confidence,
}


def ai_agent_settings_validate(**values) -> dict:
    """Return the AI agent's settings normalised (text stripped, choices in order, confidence to 3 places).

    Raise ValidationError naming every bad field: an unknown category or tier, stakes outside 0 to
    100, a confidence outside 0 to 1, an empty model name or version.
    """
    unknown = sorted(set(values) - set(CHANGEABLE))
    if unknown:
        raise TypeError(f"Not a setting of an AI agent: {', '.join(unknown)}")
    errors: dict[str, str] = {}
    cleaned = {field: VALIDATORS[field](value, errors) for field, value in values.items()}
    if errors:
        raise ValidationError(errors)
    return cleaned


def _reason(reason, *, what: str) -> str:
    errors: dict[str, str] = {}
    text = _text(reason, field="reason", label=f"reason for the {what}", max_length=REASON_MAX_LENGTH,
                 required=True, errors=errors)
    if errors:
        raise ValidationError(errors)
    return text


def ai_agent_snapshot(agent: AiAgent) -> dict:
    """The AI agent's registration as the audit log keeps it."""
    return {
        "user_id": agent.user_id,
        "team_id": agent.team_id,
        **{field: getattr(agent, field) for field in CHANGEABLE},
        "suspended": agent.is_suspended,
    }


def _agent_of(kwargs: dict):
    return kwargs.get("ai_agent")


def _team_of(kwargs: dict):
    return kwargs.get("team")


def _locked(agent: AiAgent) -> AiAgent:
    return lock_objects.ai_agent_qs_select_for_update().select_related("team").get(pk=agent.pk)


def _refresh(agent: AiAgent, current: AiAgent) -> AiAgent:
    """Copy the stored state onto the caller's object, so it does not show a state that no longer is."""
    for field in (*CHANGEABLE, "suspended_at", "suspended_by_id", "suspension_reason"):
        setattr(agent, field, getattr(current, field))
    return agent


# --- services --------------------------------------------------------------------------------


@audits_refusals("ai_agent.register", object_type="team", object_from=_team_of)
def ai_agent_register(
    *,
    actor,
    username: str,
    team: Team,
    model_name: str,
    model_version: str,
    description: str = "",
    route_categories: Iterable[str] = (),
    route_tiers: Iterable[str] = (),
    max_stakes: int = 40,
    hand_off_negative_sentiment: bool = True,
    min_confidence: Decimal | str = Decimal("0.700"),
) -> AiAgent:
    """Register an AI agent in `team`: its account (role AI agent, no password) and its routing rules.

    Deny by default: with no route category it owns no case. It has no authority until a grant gives
    it some, and no API token until one is issued (`ai_agent_issue_token`).
    """
    may_manage_ai_agents(actor, team).require()
    settings = ai_agent_settings_validate(
        model_name=model_name, model_version=model_version, description=description,
        route_categories=route_categories, route_tiers=route_tiers, max_stakes=max_stakes,
        hand_off_negative_sentiment=hand_off_negative_sentiment, min_confidence=min_confidence)
    user = User(username=username.strip() if isinstance(username, str) else username, is_active=True)
    user.set_unusable_password()
    user.full_clean(exclude=["password", "last_login"])  # a taken or malformed user name, said plainly
    with service_atomic():
        user.save()
        user.groups.set([Group.objects.get_or_create(name=Role.AI_AGENT)[0]])
        audit_record(actor=actor, action="user.created", object_type="user", object_id=user.pk,
                     after={"username": user.username, "is_active": True, "is_staff": False, "is_superuser": False,
                            "roles": [Role.AI_AGENT], "password": "unusable", "profile": []})
        team_add_member(actor=actor, team=team, user=user)
        agent = AiAgent.objects.create(user=user, team=team, registered_by=actor, registered_at=timezone.now(),
                                       **settings)
        audit_record(actor=actor, action="ai_agent.registered", object_type="ai_agent", object_id=agent.pk,
                     after=ai_agent_snapshot(agent))
    return agent


@audits_refusals("ai_agent.update", object_type="ai_agent", object_from=_agent_of)
def ai_agent_update(*, actor, ai_agent: AiAgent, **changes) -> AiAgent:
    """Change the AI agent's model, version, description or routing rules; return it as stored.

    Only what differs is written; the audit event keeps each changed field before and after. Nothing
    differs: nothing is written.
    """
    wanted = ai_agent_settings_validate(**changes)
    with service_atomic():
        current = _locked(ai_agent)
        may_manage_ai_agents(actor, current.team).require()
        changed = [field for field, value in wanted.items() if value != getattr(current, field)]
        if not changed:
            return _refresh(ai_agent, current)
        before = {field: getattr(current, field) for field in changed}
        for field in changed:
            setattr(current, field, wanted[field])
        current.save(update_fields=changed)
        audit_record(actor=actor, action="ai_agent.updated", object_type="ai_agent", object_id=current.pk,
                     before=before, after={field: getattr(current, field) for field in changed})
    return _refresh(ai_agent, current)


@audits_refusals("ai_agent.suspend", object_type="ai_agent", object_from=_agent_of)
def ai_agent_suspend(*, actor, ai_agent: AiAgent, reason: str) -> AiAgent:
    """Suspend the AI agent now: it cannot act, its account is deactivated and its API tokens are revoked
    (a reinstated AI agent gets a new token from its manager, never the old ones back)."""
    reason = _reason(reason, what="suspension")
    with service_atomic():
        current = _locked(ai_agent)
        may_manage_ai_agents(actor, current.team).require()
        if current.is_suspended:
            raise AiAgentSuspended(f"{ai_agent.user.get_username()} is already suspended: {current.suspension_reason}")
        account = lock_objects.user_qs_select_for_update().get(pk=current.user_id)
        current.suspended_at, current.suspended_by, current.suspension_reason = timezone.now(), actor, reason
        current.save(update_fields=["suspended_at", "suspended_by", "suspension_reason"])
        was_active = account.is_active
        if was_active:
            account.is_active = False
            account.save(update_fields=["is_active"])
        tokens = [(token.pk, token.prefix) for token in
                  lock_objects.api_token_qs_select_for_update().filter(user_id=current.user_id).only("pk", "prefix")]
        ApiToken.objects.filter(pk__in=[pk for pk, _ in tokens]).delete()
        for pk, prefix in tokens:
            audit_record(actor=actor, action="api_token.revoked", object_type="user", object_id=current.user_id,
                         before={"key_prefix": prefix, "token_id": pk}, reason="AI agent suspended")
        audit_record(actor=actor, action="ai_agent.suspended", object_type="ai_agent", object_id=current.pk,
                     before={"suspended": False, "account_active": was_active},
                     after={"suspended": True, "account_active": False, "user_id": current.user_id},
                     reason=reason)
    ai_agent.user.is_active = False
    return _refresh(ai_agent, current)


@audits_refusals("ai_agent.reinstate", object_type="ai_agent", object_from=_agent_of)
def ai_agent_reinstate(*, actor, ai_agent: AiAgent, reason: str) -> AiAgent:
    """Lift the AI agent's suspension and reactivate its account; the cases handed off stay with their people."""
    reason = _reason(reason, what="reinstatement")
    with service_atomic():
        current = _locked(ai_agent)
        may_manage_ai_agents(actor, current.team).require()
        if not current.is_suspended:
            raise AiAgentNotSuspended(f"{ai_agent.user.get_username()} is not suspended.")
        account = lock_objects.user_qs_select_for_update().get(pk=current.user_id)
        before = {"suspended": True, "suspended_at": current.suspended_at, "suspended_by_id": current.suspended_by_id,
                  "suspension_reason": current.suspension_reason, "account_active": account.is_active}
        current.suspended_at, current.suspended_by, current.suspension_reason = None, None, ""
        current.save(update_fields=["suspended_at", "suspended_by", "suspension_reason"])
        if not account.is_active:
            account.is_active = True
            account.save(update_fields=["is_active"])
        audit_record(actor=actor, action="ai_agent.reinstated", object_type="ai_agent", object_id=current.pk,
                     before=before, after={"suspended": False, "account_active": True, "user_id": current.user_id},
                     reason=reason)
    ai_agent.user.is_active = True
    return _refresh(ai_agent, current)


@sensitive_variables("issued")
@audits_refusals("ai_agent.issue_token", object_type="ai_agent", object_from=_agent_of)
def ai_agent_issue_token(*, actor, ai_agent: AiAgent) -> IssuedToken:
    """Issue an API token for the AI agent; return it with its key, which is shown this once and never stored.

    A person issues their own tokens (`api_token_issue`); an AI agent's come from a manager of its
    team. A suspended AI agent gets none.
    """
    with service_atomic():
        current = _locked(ai_agent)
        may_manage_ai_agents(actor, current.team).require()
        if current.is_suspended:
            raise AiAgentSuspended(f"{ai_agent.user.get_username()} is suspended: reinstate it before issuing a token.")
        issued = api_token_new(user=current.user)
        issued.token.save(force_insert=True)
        audit_record(actor=actor, action="api_token.created", object_type="user", object_id=current.user_id,
                     after={"key_prefix": issued.token.prefix, "token_id": issued.token.pk,
                            "expires_at": issued.token.expires_at.isoformat(), "ai_agent_id": current.pk})
    return issued
