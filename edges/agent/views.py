"""The agent's workspace: my cases, the team queue, the case page with authority next to the button.

Views validate input and call the workflow services; they decide nothing.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from authority import policy, selectors
from authority.catalog import kind_for_code
from authority.errors import AuthorityDenied
from authority.policy.verdict import Verdict
from authority.quantities import format_quantity
from authority.services import decision_execute
from edges.agent.assist import assist_context
from edges.agent.customers import customer_panel_context
from edges.agent.forms import (
    CaseFilterForm,
    CaseIntakeForm,
    DecisionForm,
    HandoverForm,
    RatingForm,
    ReopenForm,
    RequestForm,
    ResolveForm,
    decision_link_initial,
)
from edges.agent.hand_offs import hand_off_context
from edges.agent.inbox import approved_callout_context
from edges.agent.presence import presence_context
from edges.agent.reversals import with_reversal_rights
from edges.web.service_calls import error_text, run_service
from h2h_core.access import (
    may_act_as_owner,
    may_act_on_view,
    may_claim,
    may_hand_over,
    may_reopen,
    may_share_rating_link,
)
from h2h_core.audit import canonical_json, snapshot_value
from h2h_core.errors import DomainError
from h2h_core.models import Case, CaseStatus
from h2h_core.organisation import current_organisation
from workflows import case_search, services
from workflows import selectors as flow_selectors

LIST_LIMIT = 50


def _seen_version(request) -> str | None:
    """The version of the case the submitting page showed (h2h_core.case_views); None when the form had none."""
    value = request.POST.get("seen_version")
    return None if value is None else str(value)[:200]


def _visible_case(request, pk: int) -> Case:
    case = policy.cases_visible_to(request.user).select_related("customer", "owner", "team").filter(pk=pk).first()
    if case is None:
        raise Http404("No such case")
    return case


CASE_PAGE_SIZE = 25


@login_required
@require_GET
def case_list(request):
    """Search, filters, sorting and saved views over the visible cases; without any, my open cases
    and my teams' unclaimed queue."""
    user = request.user
    tz = current_organisation().tz
    now = timezone.now()
    form = CaseFilterForm(request.GET, teams=case_search.teams_for_filter(user))
    query = form.query()
    current = case_search.preset_of(query)
    context = {
        "form": form,
        "views": [{"key": key, "label": label, "query": urlencode(preset.params()), "current": key == current}
                  for key, (label, preset) in case_search.PRESETS.items()],
        "tz": tz,
        "now": now,
        "soon": now + case_search.DUE_SOON,
        "may_open": bool(policy.may_open_cases(user)),
    }

    def search(q):
        return case_search.cases_search(user=user, query=q, now=now)

    if not any(request.GET.get(name) for name in case_search.FIELD_NAMES):
        mine, queue = case_search.PRESETS["mine"][1], case_search.PRESETS["queue"][1]
        context.update(mine=list(search(mine)[:LIST_LIMIT]), queue=list(search(queue)[:LIST_LIMIT]))
        return render(request, "workflows/case_list.html", context)
    page = Paginator(search(query), CASE_PAGE_SIZE).get_page(request.GET.get("page"))
    context.update(page=page, query=urlencode(query.params()),
                   title=case_search.PRESETS[current][0] if current else "Search results")
    return render(request, "workflows/case_list.html", context)


@login_required
@require_GET
def customer_picker(request):
    """The intake picker's suggestions: the first 20 customers by name or e-mail, as JSON."""
    allowed = policy.may_open_cases(request.user)
    if not allowed:
        raise PermissionDenied(allowed.reason)
    text = request.GET.get("q", "")[:200]
    customers = case_search.customers_matching(text, limit=20)
    return JsonResponse({"results": [
        {"id": c.pk, "name": c.name, "email": c.email, "label": f"{c.name} (#{c.pk})"} for c in customers
    ]})


@login_required
@require_http_methods(["GET", "POST"])
def case_new(request):
    """Intake: the same service the API and the seed use, and the start of the case's flow."""
    allowed = policy.may_open_cases(request.user)
    if not allowed:
        raise PermissionDenied(allowed.reason)
    form = CaseIntakeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ok, result = run_service(request, lambda: services.case_flow_open(actor=request.user, **form.cleaned_data))
        if ok:
            team = result.team.name if result.team_id else "no team yet"
            messages.success(request, f"{result.reference} is open: stakes {result.stakes_score}, in the {team} queue.")
            return redirect("cases:detail", pk=result.pk)
    return render(request, "workflows/case_new.html", {"form": form})


# What an anonymous POST of the review keeps for after the login: the decision fields, never more.
DRAFT_FIELDS = {"kind": 50, "amount": 40, "currency": 3, "rationale": 2000}


def _draft_key(pk: int) -> str:
    return f"h2h:decision-draft:{pk}"


@login_required
def case_detail(request, pk: int, decision_form=None, request_form=None, verdict=None, status=200):
    case = _visible_case(request, pk)
    user = request.user
    is_owner = bool(may_act_as_owner(user, case))
    draft = request.session.pop(_draft_key(case.pk), None)
    tz = current_organisation().tz
    now = timezone.now()
    events = list(case.events.select_related("actor").order_by("-at", "-id")[:100])
    month_start = now.astimezone(tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    # Every neighbour of the case is read through the visibility selectors: the customer's other
    # cases and decisions show only where the user may see their case.
    visible_cases = policy.cases_visible_to(user)
    visible_decisions = policy.decisions_visible_to(user)
    context = {
        "case": case,
        "is_owner": is_owner,
        "tz": tz,
        "now": now,
        "events": events,
        "handover_note": flow_selectors.handover_note_for_owner(case, events, user),
        "workflow": flow_selectors.case_workflow_state(case),
        "decisions": with_reversal_rights(user, list(
            visible_decisions.filter(case=case).select_related("agent", "kind", "case", "reversed_by")
            .order_by("-executed_at")[:50])),
        # The requests of a case the user may see (the case itself came through the selector).
        "requests": list(case.authority_requests.select_related("requester", "kind", "decided_by", "one_off_grant")
                         .order_by("-created_at")[:20]),
        "earlier_cases": list(visible_cases.filter(customer_id=case.customer_id).exclude(pk=case.pk)
                              .order_by("-opened_at")[:10]),
        "customer_month_decisions": list(
            visible_decisions.filter(case__customer_id=case.customer_id, executed_at__gte=month_start)
            .select_related("kind", "agent", "case").order_by("-executed_at")[:20]
        ),
        **(_authority_rows(user, case) if is_owner else {"authority": [], "no_authority": []}),
        # A kept draft wins over a link's prefill: neither overwrites a form the agent already typed.
        "decision_form": decision_form or DecisionForm(initial={"currency": str(case.amount_at_stake.currency),
                                                                **(draft or decision_link_initial(request.GET))}),
        **assist_context(request, case, is_owner=is_owner),
        "request_form": request_form,
        "verdict": verdict,
        "resolve_form": ResolveForm(),
        "handover_form": (HandoverForm(candidates=flow_selectors.handover_candidates(case))
                          if may_hand_over(user, case) else None),
        "reopen_form": ReopenForm() if may_reopen(user, case) else None,
        "can_claim": bool(may_claim(user, case)),
        "rating_url": services.rating_url(case) if may_share_rating_link(user, case) else None,
        **presence_context(user, case),
        **approved_callout_context(request, case, is_owner=is_owner),
        **customer_panel_context(user, case),
        **hand_off_context(user, case),
    }
    return render(request, "workflows/case_detail.html", context, status=status)


def _authority_rows(user, case: Case) -> dict:
    """Headroom per kind the user holds authority for; the kinds without any, as one line."""
    rows = selectors.case_authority(agent=user, case=case)
    return {
        "authority": [row for row in rows if row["verdict"].deciding_grants],
        "no_authority": [row["kind"].name for row in rows if not row["verdict"].deciding_grants],
    }


@login_required
@require_POST
def case_claim_view(request, pk: int):
    case = _visible_case(request, pk)
    ok, _ = run_service(request, lambda: services.case_flow_claim(actor=request.user, case=case,
                                                                     seen_version=_seen_version(request)))
    if ok:
        messages.success(request, f"You own {case.reference} now.")
    return redirect("cases:detail", pk=case.pk)


@login_required
@require_POST
def case_handover_view(request, pk: int):
    case = _visible_case(request, pk)
    form = HandoverForm(request.POST, candidates=flow_selectors.handover_candidates(case))
    if not form.is_valid():
        messages.error(request, "Choose the new owner and write the context note they will read first.")
        return redirect("cases:detail", pk=case.pk)
    to_user = form.cleaned_data["to_user"]
    ok, _ = run_service(request, lambda: services.case_flow_handover(
        actor=request.user, case=case, to_user=to_user, note=form.cleaned_data["note"],
        seen_version=_seen_version(request)))
    if ok:
        messages.success(request, f"{case.reference} is with {to_user.get_username()} now, with your note.")
    return redirect("cases:detail", pk=case.pk)


@login_required
@require_POST
def case_reopen_view(request, pk: int):
    case = _visible_case(request, pk)
    form = ReopenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the case is reopened.")
        return redirect("cases:detail", pk=case.pk)
    ok, _ = run_service(request, lambda: services.case_flow_reopen(actor=request.user, case=case,
                                                                   reason=form.cleaned_data["reason"],
                                                                   seen_version=_seen_version(request)))
    if ok:
        messages.success(request, f"{case.reference} is open again.")
    return redirect("cases:detail", pk=case.pk)


def _decision_inputs(form) -> dict:
    data = form.cleaned_data
    return {"kind": data["kind"], "amount": data["amount"], "currency": data["currency"] or None}


def _decision_key(*, actor, case: Case, verdict: Verdict, rationale: str, latest_decision_id: int | None) -> str:
    """Return the idempotency key of a reviewed decision: every review of the same decision gets the same one.

    Two tabs reviewing the same decision therefore execute it once. The latest decision on the case
    at review time is part of the key, so the same decision asked for again after that one was
    executed is a new decision with a new key.
    """
    asked = {"actor": actor.pk, "case": case.pk, "kind": verdict.kind, "amount": snapshot_value(verdict.amount),
             "currency": verdict.currency, "rationale": rationale.strip(), "after": latest_decision_id}
    return "review-" + hashlib.sha256(canonical_json(asked).encode()).hexdigest()


def _keep_draft(request, pk: int) -> None:
    """Keep what an anonymous visitor typed into the decision form, for after they log in again."""
    draft = {name: str(request.POST.get(name, ""))[:limit] for name, limit in DRAFT_FIELDS.items()}
    if any(draft.values()):
        request.session[_draft_key(pk)] = draft


@require_http_methods(["GET", "POST"])
def case_review(request, pk: int):
    """The review step: restate amount, customer, grant and whether approval is needed. Writes nothing.

    Reached by GET (after logging in again mid-decision), it leads back to the decision form on the
    case page, filled in with what was typed before the session ended.
    """
    if not request.user.is_authenticated:
        if request.method == "POST":
            _keep_draft(request, pk)
        return redirect_to_login(request.get_full_path())
    case = _visible_case(request, pk)
    if request.method == "GET":
        if _draft_key(case.pk) in request.session:
            messages.info(request, "Your decision was not submitted; check it and review again.")
        return redirect("cases:detail", pk=case.pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Check the decision form.")
        return case_detail(request, pk, decision_form=form)
    owner = may_act_as_owner(request.user, case)
    if not owner:
        messages.error(request, owner.reason)
        return redirect("cases:detail", pk=case.pk)
    # Said before the review, not only at the execution (which checks it again under the case lock).
    fresh = may_act_on_view(case, _seen_version(request))
    if not fresh:
        messages.error(request, fresh.reason)
        return case_detail(request, pk, decision_form=form)
    inputs = _decision_inputs(form)
    try:
        verdict = policy.evaluate(agent=request.user, case=case, **inputs)
    except ValidationError as error:
        messages.error(request, error_text(error))
        return case_detail(request, pk, decision_form=form)
    kind = inputs["kind"]
    request_form = None
    if verdict.over_limit:
        request_form = RequestForm(initial={"kind": kind.code, "amount": form.cleaned_data["amount"],
                                            "currency": form.cleaned_data["currency"],
                                            "justification": form.cleaned_data["rationale"]})
    latest = policy.decisions_visible_to(request.user).filter(case=case).order_by("-pk").values_list(
        "pk", flat=True).first()
    return render(request, "workflows/case_review.html", {
        "case": case,
        "kind": kind,
        "form": form,
        "verdict": verdict,
        "asked": format_quantity(verdict.amount, unit=kind.unit, currency=verdict.currency),
        "request_form": request_form,
        "seen_version": _seen_version(request),
        "idempotency_key": _decision_key(actor=request.user, case=case, verdict=verdict,
                                         rationale=form.cleaned_data["rationale"], latest_decision_id=latest),
        "tz": current_organisation().tz,
    })


@login_required
@require_POST
def case_decide(request, pk: int):
    case = _visible_case(request, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Check the decision form.")
        return case_detail(request, pk, decision_form=form)
    key = request.POST.get("idempotency_key") or None
    started = timezone.now()
    try:
        decision = decision_execute(actor=request.user, case=case, rationale=form.cleaned_data["rationale"],
                                    idempotency_key=key, seen_version=_seen_version(request),
                                    **_decision_inputs(form))
    except AuthorityDenied as denied:
        request_form = None
        if denied.verdict.over_limit:
            request_form = RequestForm(initial={"kind": form.cleaned_data["kind"].code,
                                                "amount": form.cleaned_data["amount"],
                                                "currency": form.cleaned_data["currency"],
                                                "justification": form.cleaned_data["rationale"]})
        messages.error(request, "Over your authority: " + " ".join(denied.verdict.reasons))
        return case_detail(request, pk, decision_form=form, request_form=request_form, verdict=denied.verdict)
    except (ValidationError, DomainError) as error:
        messages.error(request, error_text(error))
        return case_detail(request, pk, decision_form=form)
    done = (f"{decision.kind.name} of "
            f"{format_quantity(decision.amount, unit=decision.kind.unit, currency=decision.currency)}")
    if key and decision.executed_at < started:
        # The same reviewed decision, executed from another tab: its first result, not a second decision.
        when = decision.executed_at.astimezone(current_organisation().tz)
        messages.info(request, f"Already executed: {done} on {case.reference} at {when:%d %b %H:%M}. "
                               "Here it is; nothing was executed twice.")
    else:
        messages.success(request, f"Done: {done} executed on {case.reference}.")
    return redirect("cases:detail", pk=case.pk)


@login_required
@require_POST
def case_request_authority(request, pk: int):
    case = _visible_case(request, pk)
    form = RequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Explain why the customer needs this.")
        return redirect("cases:detail", pk=case.pk)
    ok, result = run_service(request, lambda: services.authority_request_flow_open(
        actor=request.user, case=case, justification=form.cleaned_data["justification"],
        seen_version=_seen_version(request), **_decision_inputs(form)))
    if ok:
        names = ", ".join(selectors.usernames(result.pool))
        messages.success(request, f"Asked {names}. You keep the case; you will see the answer here.")
    return redirect("cases:detail", pk=case.pk)


@login_required
@require_POST
def case_resolve_view(request, pk: int):
    case = _visible_case(request, pk)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Summarise the resolution.")
        return redirect("cases:detail", pk=case.pk)
    ok, _ = run_service(request, lambda: services.case_flow_resolve(actor=request.user, case=case,
                                                                    summary=form.cleaned_data["summary"],
                                                                    seen_version=_seen_version(request)))
    if ok:
        messages.success(request, f"{case.reference} is resolved. The customer's rating link is below.")
    return redirect("cases:detail", pk=case.pk)


@login_required
@require_GET
def case_check(request, pk: int):
    """Dry-run verdict for the decision form: what is allowed, and what is left, as the amount is typed."""
    kind = kind_for_code(request.GET.get("kind", ""))
    if kind is None:
        return JsonResponse({"error": {"code": "invalid", "message": "Unknown kind."}}, status=400)
    try:
        # The API's authority check, as the API asks it: the case as this agent may see it, read with the grants.
        verdict = policy.evaluate_visible(agent=request.user, case_id=pk, kind=kind,
                                          amount=request.GET.get("amount", ""),
                                          currency=request.GET.get("currency") or None if kind.is_money else None)
    except ValidationError as error:
        return JsonResponse({"error": {"code": "invalid", "message": error_text(error)}}, status=400)
    if verdict is None:
        raise Http404("No such case")
    return JsonResponse({"verdict": verdict.as_dict()})


@require_http_methods(["GET", "POST"])
def rate(request, token: str):
    """The customer's rating page, reached through the signed link: no login."""
    try:
        case = services.case_for_rating_token(token)
    except signing.BadSignature:
        return render(request, "workflows/rate.html", {"invalid": True}, status=404)
    form = RatingForm(request.POST or None)
    if request.method == "POST" and case.rating is None:
        if form.is_valid():
            ok, result = run_service(request, lambda: services.case_flow_rate(case=case,
                                                                              rating=form.cleaned_data["rating"]))
            if ok:
                return render(request, "workflows/rate.html", {"case": result, "thanks": True})
        else:
            messages.error(request, "Choose a rating from 1 to 5.")
    return render(request, "workflows/rate.html", {
        "case": case,
        "form": form,
        "organisation": current_organisation(),
        "not_yet": case.status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED),
    })
