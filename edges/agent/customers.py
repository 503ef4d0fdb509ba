"""The whole customer: their page, the panel on a case, and internal notes.

Every read goes through the visibility selectors: a person sees the customer's cases, decisions and
case-bound notes only where they may see the case. The one write is `customer_note_add`.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Avg, Count, Q, Sum
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from authority import policy
from authority.quantities import format_quantity
from edges.agent.hand_offs import PANEL_CONVERSATIONS, customer_ai_conversations
from edges.web.service_calls import run_service
from h2h_core.access import customers_visible_to, may_add_customer_note
from h2h_core.customers import customer_note_add, customer_notes_visible_to
from h2h_core.models import Case, Customer
from h2h_core.models.customers import NOTE_MAX_LENGTH
from h2h_core.organisation import current_organisation

CASE_LIMIT = 100
DECISION_LIMIT = 100
NOTES_PER_PAGE = 50
PANEL_NOTES = 5


class CustomerNoteForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=NOTE_MAX_LENGTH,
                           label="Internal note (colleagues only, never the customer)")
    case = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        # Its own ids: the note form sits on the case page beside other forms' fields.
        super().__init__(*args, auto_id="customer-note-%s", **kwargs)


def _visible_customer(user, pk: int) -> Customer:
    """The customer, or 404 for a customer the user may not see (as if there were none)."""
    customer = customers_visible_to(user).filter(pk=pk).first()
    if customer is None:
        raise Http404("No such customer")
    return customer


def customer_panel_context(user, case: Case) -> dict:
    """The case page's customer panel: contact details, the latest notes and the note form."""
    customer = case.customer
    return {"customer_panel": {
        "customer": customer,
        "notes": list(customer_notes_visible_to(user, customer).select_related("author", "case")[:PANEL_NOTES]),
        "form": CustomerNoteForm(initial={"case": case.pk}) if may_add_customer_note(user, customer) else None,
        "ai_conversations": customer_ai_conversations(user, customer, limit=PANEL_CONVERSATIONS),
    }}


def _decision_totals(decisions, *, month_start, year_start) -> list[dict]:
    """This month's and this year's totals per kind and currency, counted by the database."""
    rows = (decisions.filter(executed_at__gte=year_start)
            .values("kind__name", "kind__unit", "currency")
            .annotate(month_total=Sum("amount", filter=Q(executed_at__gte=month_start)),
                      month_count=Count("pk", filter=Q(executed_at__gte=month_start)),
                      year_total=Sum("amount"), year_count=Count("pk"))
            .order_by("kind__name", "currency"))
    return [{
        "kind": row["kind__name"],
        "month": format_quantity(row["month_total"], unit=row["kind__unit"], currency=row["currency"])
        if row["month_count"] else "none",
        "month_count": row["month_count"],
        "year": format_quantity(row["year_total"], unit=row["kind__unit"], currency=row["currency"]),
        "year_count": row["year_count"],
    } for row in rows]


def _page_context(request, customer: Customer, form: CustomerNoteForm | None = None) -> dict:
    user = request.user
    tz = current_organisation().tz
    local_now = timezone.now().astimezone(tz)
    month_start = local_now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    visible_cases = policy.cases_visible_to(user).filter(customer=customer)
    decisions = policy.decisions_visible_to(user).filter(case__customer=customer)
    case_stats = visible_cases.aggregate(total=Count("pk"), rated=Count("rating"), average=Avg("rating"))
    notes = Paginator(customer_notes_visible_to(user, customer).select_related("author", "case"), NOTES_PER_PAGE)
    may_add = may_add_customer_note(user, customer)
    return {
        "customer": customer,
        "tz": tz,
        "cases": list(visible_cases.select_related("owner", "team").order_by("-opened_at", "-id")[:CASE_LIMIT]),
        "case_stats": case_stats,
        "case_limit": CASE_LIMIT,
        "decisions": list(decisions.select_related("kind", "agent", "case").order_by("-executed_at", "-id")
                          [:DECISION_LIMIT]),
        "decision_limit": DECISION_LIMIT,
        "totals": _decision_totals(decisions, month_start=month_start,
                                   year_start=month_start.replace(month=1)),
        "notes": notes.get_page(request.GET.get("notes")),
        "note_form": (form or CustomerNoteForm()) if may_add else None,
        "ai_conversations": customer_ai_conversations(user, customer),
    }


@login_required
@require_GET
def customer_detail(request, pk: int):
    customer = _visible_customer(request.user, pk)
    return render(request, "workflows/customer_detail.html", _page_context(request, customer))


@login_required
@require_POST
def customer_note_add_view(request, pk: int):
    """Add a note from the customer page or a case's panel, and go back where it was written."""
    customer = _visible_customer(request.user, pk)
    form = CustomerNoteForm(request.POST)
    status = 400
    if form.is_valid():
        case = None
        if case_id := form.cleaned_data["case"]:
            case = policy.cases_visible_to(request.user).filter(pk=case_id, customer=customer).first()
            if case is None:
                raise Http404("No such case")
        ok, result = run_service(request, lambda: customer_note_add(actor=request.user, customer=customer,
                                                                   text=form.cleaned_data["text"], case=case))
        if not ok:
            status = getattr(result, "status", 400)
        else:
            messages.success(request, f"Note added on {customer.name}.")
            if case is not None:
                return redirect(reverse("cases:detail", args=[case.pk]) + "#customer-notes")
            return redirect(reverse("customers:detail", args=[customer.pk]) + "#notes")
    # Not added: the page again with the text kept and the reason next to it (no redirect, so the
    # form's once token is released and the corrected note may be sent).
    return render(request, "workflows/customer_detail.html", _page_context(request, customer, form), status=status)
