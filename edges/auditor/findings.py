"""The auditor console's abuse and structuring findings: the page, its CSV and "Flag for review".

The findings come from authority.reports.abuse (three queries per detector); the page adds one
query for the review flags already written on the findings' decisions. Flagging a finding writes an
ordinary review flag (authority.services.oversight.review_flag_create) on the finding's latest
decision, with the finding's explanation as its text: the one write an auditor makes.
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from authority.models import Decision, ReviewFlag
from authority.policy import is_auditor
from authority.reports.abuse import CSV_COLUMNS, DETECTORS, Findings, Thresholds, abuse_findings, csv_rows
from authority.services.oversight import review_flag_create
from edges.web.console import auditor_console
from edges.web.csv_cells import csv_lines
from edges.web.service_calls import run_service
from h2h_core.audit import audit_record
from h2h_core.organisation import current_organisation

DAY_CHOICES = (7, 30, 90, 365)
DEFAULT_DAYS = 30
DATASET = "abuse-findings"


class FindingsFilterForm(forms.Form):
    """The period (the last N days) and one detector or all of them."""

    days = forms.TypedChoiceField(choices=[(d, f"last {d} days") for d in DAY_CHOICES], coerce=int,
                                  required=False, empty_value=DEFAULT_DAYS, initial=DEFAULT_DAYS, label="Period")
    detector = forms.ChoiceField(choices=[("", "every detector"), *DETECTORS.items()], required=False,
                                 label="Detector")


class FindingFlagForm(forms.Form):
    """A finding turned into a review flag on its latest decision."""

    decision = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    finding = forms.CharField(max_length=4000, widget=forms.HiddenInput)
    severity = forms.ChoiceField(choices=ReviewFlag.Severity.choices, label="Severity")
    back = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)


def _filters(request) -> FindingsFilterForm:
    data = request.GET.copy()
    data.setdefault("days", str(DEFAULT_DAYS))
    return FindingsFilterForm(data)


def _findings(form: FindingsFilterForm) -> Findings:
    until = timezone.now()
    detector = form.cleaned_data.get("detector")
    return abuse_findings(since=until - timedelta(days=form.cleaned_data.get("days") or DEFAULT_DAYS), until=until,
                          detectors=[detector] if detector else None, thresholds=Thresholds())


def _flagged(findings: Findings) -> set[str]:
    """The keys of the findings shown that already have their review flag (one query)."""
    shown = [f for f in findings.shown() if f.flag_decision_id]
    texts = ReviewFlag.objects.filter(decision_id__in={f.flag_decision_id for f in shown}).values_list(
        "decision_id", "finding")
    marked = {(decision_id, text) for decision_id, text in texts}
    return {f.key for f in shown if any(d == f.flag_decision_id and f"(finding {f.key})" in text for d, text in marked)}


@auditor_console
def findings_page(request):
    """Findings of the four detectors over the chosen period, worst first, each with its evidence."""
    form = _filters(request)
    if not form.is_valid():
        return render(request, "authority/findings.html", {"form": form, "findings": None}, status=400)
    findings = _findings(form)
    return render(request, "authority/findings.html", {
        "form": form, "findings": findings, "flagged": _flagged(findings), "may_flag": is_auditor(request.user),
        "severities": ReviewFlag.Severity.choices, "query": request.GET.urlencode(),
        "back": request.get_full_path()[:200], "tz": current_organisation().tz,
    })


@auditor_console
def findings_csv(request) -> HttpResponse:
    """The findings shown on the page, as CSV (safe cells), recorded in the audit log before they leave."""
    form = _filters(request)
    if not form.is_valid():
        messages.error(request, "Correct the filters before exporting.")
        return redirect(reverse("audit:findings"))
    findings = _findings(form)
    filters = {"days": form.cleaned_data.get("days") or DEFAULT_DAYS,
               "detector": form.cleaned_data.get("detector") or "all", "since": findings.since,
               "until": findings.until}
    with transaction.atomic(durable=True):
        audit_record(actor=request.user, action="audit.exported", object_type="export", object_id=DATASET,
                     after={"dataset": DATASET, "format": "csv", "filters": filters})
    response = StreamingHttpResponse(csv_lines(CSV_COLUMNS, csv_rows(findings)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="h2h-{DATASET}-{findings.until:%Y%m%dT%H%M%SZ}.csv"'
    response["Cache-Control"] = "no-store"
    return response


def _back(url: str) -> str:
    """Only this page (with its filters) is a place to return to."""
    page = reverse("audit:findings")
    return url if url.startswith(page + "?") or url == page else page


@auditor_console
@require_POST
def flag_finding(request):
    """Record a finding as a review flag on its latest decision (the review-flag service decides who may)."""
    form = FindingFlagForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a severity for the finding.")
        return redirect(reverse("audit:findings"))
    data = form.cleaned_data
    back = _back(data.get("back") or "")
    decision = Decision.objects.filter(pk=data["decision"]).first()
    if decision is None:
        messages.error(request, "That decision does not exist.")
        return redirect(back)
    ok, _ = run_service(request, lambda: review_flag_create(actor=request.user, decision=decision,
                                                            severity=data["severity"], finding=data["finding"]))
    if ok:
        messages.success(request, f"Flagged decision {decision.pk} for review; the flag is in the audit log.")
    return redirect(back)
