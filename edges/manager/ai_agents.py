"""The manager console's AI agents: register one, set its routing rules, issue its token, suspend it.

The pages shape input for `h2h_core.ai_agents` and the suspension step, and show what the rules
(`authority.policy.ai_agents`) answer; they decide nothing. A manager sees the AI agents of the
teams they manage (a superuser every team's).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from authority.models import Decision, ShadowDecision
from authority.policy.ai_agents import may_manage_ai_agents
from authority.policy.permissions import cases_visible_to, console_teams, decisions_visible_to
from edges.web.console import manager_console
from edges.web.service_calls import run_service
from h2h_core.ai_agents import (
    CHANGEABLE,
    MAX_STAKES,
    REASON_MAX_LENGTH,
    ai_agent_issue_token,
    ai_agent_register,
    ai_agent_reinstate,
    ai_agent_update,
)
from h2h_core.amounts import AmountFormField
from h2h_core.api_tokens import api_token_state, api_tokens_of
from h2h_core.models import AiAgent, CaseCategory, CustomerTier, HandOff
from h2h_core.organisation import current_organisation
from workflows.steps.ai_agents import (
    ai_agent_flow_hand_off_cases,
    ai_agent_flow_suspend,
    may_hand_off_cases_of,
    open_cases_of,
)

RECENT = 20
LIST_LIMIT = 200
_TOKEN_SESSION_KEY = "h2h_ai_agent_token"
TOKEN_STATES = {"token_expired": "expired", "token_password_changed": "ended by a password change",
                "user_inactive": "account deactivated"}


# --- forms -----------------------------------------------------------------------------------------


class AiAgentSettingsForm(forms.Form):
    """The model an AI agent runs and the routing rules that say which cases it may own."""

    model_name = forms.CharField(max_length=AiAgent._meta.get_field("model_name").max_length, label="Model")
    model_version = forms.CharField(max_length=AiAgent._meta.get_field("model_version").max_length,
                                    label="Model version")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=REASON_MAX_LENGTH,
                                  required=False, help_text="What it does, for the people who read its decisions.")
    route_categories = forms.MultipleChoiceField(
        choices=CaseCategory.choices, required=False, widget=forms.CheckboxSelectMultiple,
        label="Case categories it may own", help_text="None ticked: it owns no case; every case goes to a person.")
    route_tiers = forms.MultipleChoiceField(
        choices=CustomerTier.choices, required=False, widget=forms.CheckboxSelectMultiple,
        label="Customer tiers it may serve", help_text="None ticked: every tier.")
    max_stakes = forms.IntegerField(min_value=0, max_value=MAX_STAKES, initial=40, label="Highest stakes score",
                                    help_text=f"0 to {MAX_STAKES}: a case with higher stakes goes to a person.")
    hand_off_negative_sentiment = forms.BooleanField(
        required=False, initial=True, label="Hand off when the customer's message reads negative")
    min_confidence = AmountFormField(label="Minimum confidence", initial="0.700",
                                     help_text="0 to 1: a decision stated with less confidence goes to a person.")

    def settings(self) -> dict:
        return {field: self.cleaned_data[field] for field in CHANGEABLE}

    @classmethod
    def initial_from(cls, agent: AiAgent) -> dict:
        return {field: getattr(agent, field) for field in CHANGEABLE}


class AiAgentRegisterForm(AiAgentSettingsForm):
    username = forms.CharField(max_length=150, label="User name",
                               help_text="The AI agent's account: it signs in with API tokens only, never a password.")
    team = forms.ModelChoiceField(queryset=None, empty_label=None)

    field_order = ["username", "team"]

    def __init__(self, *args, teams, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=REASON_MAX_LENGTH,
                             help_text="Kept in the audit log.")


def _apply_errors(form: forms.Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def _submit(form: forms.Form, call):
    """Call the service; bad input goes back to the form's fields (None returned), a refusal raises on."""
    try:
        return call()
    except ValidationError as error:
        _apply_errors(form, error)
        return None


# --- reads -----------------------------------------------------------------------------------------


def _count_of(model, field: str):
    rows = (model.objects.filter(**{field: OuterRef("user_id")}).order_by().values(field)
            .annotate(n=Count("pk")).values("n")[:1])
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def ai_agents_in_console(user):
    """The AI agents of the teams this manager's console shows, with their counts, in one query."""
    return (AiAgent.objects.filter(team__in=console_teams(user))
            .select_related("user", "team")
            .annotate(decisions=_count_of(Decision, "agent_id"), hand_offs=_count_of(HandOff, "from_agent_id"),
                      shadow_decisions=_count_of(ShadowDecision, "agent_id"))
            .order_by("user__username"))


def _console_ai_agent(request, pk: int) -> AiAgent:
    """The AI agent if it belongs to a team of this console; 404 otherwise, to reveal nothing."""
    agent = (AiAgent.objects.filter(team__in=console_teams(request.user), pk=pk)
             .select_related("user", "team", "registered_by", "suspended_by").first())
    if agent is None:
        raise Http404("No such AI agent")
    return agent


def _detail(request, agent: AiAgent, *, settings_form=None, suspend_form=None, reinstate_form=None):
    visible = cases_visible_to(request.user).values("pk")
    issued = request.session.get(_TOKEN_SESSION_KEY)
    new_key = None
    if issued and issued.get("ai_agent") == agent.pk:
        new_key = request.session.pop(_TOKEN_SESSION_KEY)["key"]
    now = timezone.now()
    response = render(request, "manager/ai_agents/detail.html", {
        "agent": agent,
        "may_manage": may_manage_ai_agents(request.user, agent.team),
        "settings_form": settings_form or AiAgentSettingsForm(initial=AiAgentSettingsForm.initial_from(agent)),
        "suspend_form": suspend_form or ReasonForm(prefix="suspend"),
        "reinstate_form": reinstate_form or ReasonForm(prefix="reinstate"),
        "decisions": decisions_visible_to(request.user).filter(agent_id=agent.user_id)
                     .select_related("case", "kind").order_by("-executed_at", "-id")[:RECENT],
        "shadow_decisions": ShadowDecision.objects.filter(agent_id=agent.user_id, case__in=visible)
                            .select_related("case", "kind").order_by("-created_at", "-id")[:RECENT],
        "hand_offs": HandOff.objects.filter(from_agent_id=agent.user_id, case__in=visible)
                     .select_related("case", "to_user", "picked_up_by").order_by("-created_at", "-id")[:RECENT],
        "open_cases": list(open_cases_of(agent).filter(pk__in=visible)[:RECENT]),
        "may_hand_off_cases": may_hand_off_cases_of(request.user, agent),
        "tokens": [(token, api_token_state(token, at=now)) for token in api_tokens_of(agent.user)[:RECENT]],
        "new_key": new_key,
        "categories": dict(CaseCategory.choices),
        "tiers": dict(CustomerTier.choices),
        "token_states": TOKEN_STATES,
        "tz": current_organisation().tz,
        "recent": RECENT,
    })
    if new_key:
        response["Cache-Control"] = "no-store"  # the key is shown this once: no copy in any cache
    return response


# --- pages ---------------------------------------------------------------------------------------


@manager_console
def ai_agents(request):
    """The AI agents of my teams: model, status, routing, and what they did."""
    rows = list(ai_agents_in_console(request.user)[:LIST_LIMIT])
    return render(request, "manager/ai_agents/list.html", {
        "rows": rows, "limit": LIST_LIMIT,
        "categories": dict(CaseCategory.choices), "tiers": dict(CustomerTier.choices),
        "may_register": console_teams(request.user).exists(),
    })


@manager_console
def ai_agent_new(request):
    """Register an AI agent in one of my teams: its account, its model and its routing rules."""
    teams = console_teams(request.user)
    form = AiAgentRegisterForm(request.POST or None, teams=teams)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        ok, agent = run_service(request, lambda: _submit(form, lambda: ai_agent_register(
            actor=request.user, username=data["username"], team=data["team"], **form.settings())))
        if ok and agent is not None:
            messages.success(request, f"Registered AI agent {agent.user.username} in {agent.team.name}. It has no "
                                      "authority until a grant gives it some, and no API token until you issue one.")
            return redirect("authority:ai_agent", agent.pk)
    return render(request, "manager/ai_agents/new.html", {"form": form})


@manager_console
def ai_agent_detail(request, pk: int):
    """One AI agent: its routing rules (a POST saves them), suspension, token, recent work."""
    agent = _console_ai_agent(request, pk)
    if request.method != "POST":
        return _detail(request, agent)
    form = AiAgentSettingsForm(request.POST)
    if form.is_valid():
        before = AiAgentSettingsForm.initial_from(agent)
        ok, changed = run_service(request, lambda: _submit(form, lambda: ai_agent_update(
            actor=request.user, ai_agent=agent, **form.settings())))
        if ok and changed is not None:
            what = [form.fields[field].label for field in CHANGEABLE if getattr(changed, field) != before[field]]
            messages.success(request, f"Saved: {', '.join(what).lower()} of {agent.user.username}." if what
                             else "Nothing changed.")
            return redirect("authority:ai_agent", agent.pk)
    return _detail(request, agent, settings_form=form)


@manager_console
@require_POST
def ai_agent_suspend_view(request, pk: int):
    """Suspend at once: its token stops working, and its open cases go to people."""
    agent = _console_ai_agent(request, pk)
    form = ReasonForm(request.POST, prefix="suspend")
    if not form.is_valid():
        return _detail(request, agent, suspend_form=form)
    ok, result = run_service(request, lambda: _submit(form, lambda: ai_agent_flow_suspend(
        actor=request.user, ai_agent=agent, reason=form.cleaned_data["reason"])))
    if not ok or result is None:
        return _detail(request, agent, suspend_form=form)
    _report_hand_offs(request, result, first=f"Suspended {agent.user.username}: its API tokens no longer work.")
    return redirect("authority:ai_agent", agent.pk)


@manager_console
@require_POST
def ai_agent_hand_off_cases_view(request, pk: int):
    """Hand the open cases a suspended AI agent still owns to people."""
    agent = _console_ai_agent(request, pk)
    ok, result = run_service(request, lambda: ai_agent_flow_hand_off_cases(actor=request.user, ai_agent=agent))
    if ok:
        _report_hand_offs(request, result, first="")
    return redirect("authority:ai_agent", agent.pk)


def _report_hand_offs(request, result, *, first: str) -> None:
    handed = [f"{h.case.reference} to {h.to_user.username if h.to_user_id else 'the team queue'}"
              for h in result.hand_offs]
    text = " ".join(part for part in (
        first,
        f"Handed to people: {', '.join(handed)}." if handed else "It owned no open case." if not result.left else "",
    ) if part)
    if text:
        messages.success(request, text)
    for case, why in result.left:
        messages.error(request, f"{case.reference} is still with {result.ai_agent.user.username}: {why}")


@manager_console
@require_POST
def ai_agent_reinstate_view(request, pk: int):
    agent = _console_ai_agent(request, pk)
    form = ReasonForm(request.POST, prefix="reinstate")
    if not form.is_valid():
        return _detail(request, agent, reinstate_form=form)
    ok, result = run_service(request, lambda: _submit(form, lambda: ai_agent_reinstate(
        actor=request.user, ai_agent=agent, reason=form.cleaned_data["reason"])))
    if not ok or result is None:
        return _detail(request, agent, reinstate_form=form)
    messages.success(request, f"Reinstated {agent.user.username}: its account and unexpired tokens work again. "
                              "The cases it handed off stay with their people.")
    return redirect("authority:ai_agent", agent.pk)


@manager_console
@require_POST
def ai_agent_token_view(request, pk: int):
    """Issue an API token; the detail page shows its key once (kept in the session until then)."""
    agent = _console_ai_agent(request, pk)
    ok, issued = run_service(request, lambda: ai_agent_issue_token(actor=request.user, ai_agent=agent))
    if ok:
        request.session[_TOKEN_SESSION_KEY] = {"ai_agent": agent.pk, "key": issued.key}
    return redirect("authority:ai_agent", agent.pk)
