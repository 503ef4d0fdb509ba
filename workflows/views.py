"""The agent's workspace: my cases, the team queue, the case page with authority next to the button."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from authority import policy, selectors
from authority.errors import AuthorityDenied
from authority.forms import DecisionForm, RequestForm, ResolveForm
from authority.models import AuthorityKind
from authority.services import authority_request_open, decision_execute
from h2h_core import services as case_services
from h2h_core.errors import DomainError
from h2h_core.models import Case, CaseStatus
from h2h_core.models.cases import OPEN_STATUSES
from h2h_core.organisation import current_organisation
from h2h_core.web import error_text, run_service

LIST_LIMIT = 50


def _visible_case(request, pk: int) -> Case:
    case = policy.cases_visible_to(request.user).select_related("customer", "owner", "team").filter(pk=pk).first()
    if case is None:
        raise Http404("No such case")
    return case


@login_required
def case_list(request):
    """My open cases by SLA due and stakes, and my teams' unclaimed queue."""
    visible = policy.cases_visible_to(request.user).select_related("customer", "owner", "team")
    mine = visible.filter(owner=request.user, status__in=OPEN_STATUSES).order_by("resolution_due", "-stakes_score")
    queue = visible.filter(status__in=[CaseStatus.NEW, CaseStatus.QUEUED]).filter(
        Q(team__members=request.user) | Q(team_id__in=policy.managed_team_ids(request.user))
    ).order_by("resolution_due", "-stakes_score")
    return render(request, "workflows/case_list.html", {
        "mine": list(mine[:LIST_LIMIT]),
        "queue": list(queue.distinct()[:LIST_LIMIT]),
        "tz": current_organisation().tz,
    })


@login_required
def case_detail(request, pk: int, decision_form=None, request_form=None, verdict=None):
    case = _visible_case(request, pk)
    is_owner = case.owner_id == request.user.pk and case.is_open
    context = {
        "case": case,
        "is_owner": is_owner,
        "tz": current_organisation().tz,
        "events": list(case.events.select_related("actor").order_by("-at", "-id")[:100]),
        "decisions": list(case.decisions.select_related("agent", "kind").order_by("-executed_at")[:50]),
        "requests": list(case.authority_requests.select_related("requester", "kind", "decided_by")
                         .order_by("-created_at")[:20]),
        "earlier_cases": list(Case.objects.filter(customer_id=case.customer_id).exclude(pk=case.pk)
                              .order_by("-opened_at")[:10]),
        "authority": selectors.case_authority(agent=request.user, case=case) if is_owner else [],
        "decision_form": decision_form or DecisionForm(initial={"currency": str(case.amount_at_stake.currency)}),
        "request_form": request_form,
        "verdict": verdict,
        "resolve_form": ResolveForm(),
        "can_claim": case.status in (CaseStatus.NEW, CaseStatus.QUEUED) and policy.is_agent(request.user),
    }
    return render(request, "workflows/case_detail.html", context)


@login_required
@require_POST
def case_claim_view(request, pk: int):
    case = _visible_case(request, pk)
    ok, _ = run_service(request, lambda: case_services.case_claim(actor=request.user, case=case))
    if ok:
        messages.success(request, f"You own {case.reference} now.")
    return redirect("cases:detail", pk=case.pk)


def _decision_inputs(form) -> dict:
    data = form.cleaned_data
    return {"kind": data["kind"], "amount": data["amount"], "currency": data["currency"] or None}


@login_required
@require_POST
def case_decide(request, pk: int):
    case = _visible_case(request, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Check the decision form.")
        return case_detail(request, pk, decision_form=form)
    try:
        decision = decision_execute(actor=request.user, case=case, rationale=form.cleaned_data["rationale"],
                                    idempotency_key=request.POST.get("idempotency_key") or None,
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
    messages.success(request, f"Done: {decision.kind.name} of {decision.amount.normalize():f} "
                              f"{decision.currency} executed on {case.reference}.")
    return redirect("cases:detail", pk=case.pk)


@login_required
@require_POST
def case_request_authority(request, pk: int):
    case = _visible_case(request, pk)
    form = RequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Explain why the customer needs this.")
        return redirect("cases:detail", pk=case.pk)
    ok, result = run_service(request, lambda: authority_request_open(
        actor=request.user, case=case, justification=form.cleaned_data["justification"], **_decision_inputs(form)))
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
    ok, _ = run_service(request, lambda: case_services.case_resolve(actor=request.user, case=case,
                                                                    summary=form.cleaned_data["summary"]))
    if ok:
        messages.success(request, f"{case.reference} is resolved.")
    return redirect("cases:detail", pk=case.pk)


@login_required
@require_GET
def case_check(request, pk: int):
    """Dry-run verdict for the decision form: what is allowed, and what is left, as the amount is typed."""
    case = _visible_case(request, pk)
    kind = AuthorityKind.objects.filter(code=request.GET.get("kind", "")).first()
    if kind is None:
        return JsonResponse({"error": {"code": "invalid", "message": "Unknown kind."}}, status=400)
    try:
        verdict = policy.evaluate(agent=request.user, kind=kind, amount=request.GET.get("amount", ""),
                                  currency=request.GET.get("currency") or None if kind.is_money else None,
                                  case=case)
    except ValidationError as error:
        return JsonResponse({"error": {"code": "invalid", "message": error_text(error)}}, status=400)
    return JsonResponse({"verdict": verdict.as_dict()})

