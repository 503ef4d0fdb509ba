"""The auditor console: read-only. Decision log, decision and grant pages, authority as of an instant,
change history, chain status, review sampling (exports: edges.auditor.export_views).

The one write an auditor makes is a review flag (authority.services.oversight.review_flag_create);
exports are recorded in the audit log as well. Lists seek on indexed keys instead of counting and
offsetting, so they stay fast at millions of rows (docs/consoles.md).
"""

from __future__ import annotations

import random
from datetime import UTC
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from authority import reports, selectors
from authority.models import AuthorityKind, AuthorityRequest, Decision, Grant, GrantStatus, ReviewFlag
from authority.policy import is_auditor, may_reverse
from authority.policy.permissions import may_use_auditor_console
from authority.services.oversight import review_flag_create
from edges.auditor import filtering
from edges.auditor.forms import AuthorityAtForm, ReviewFlagForm, SampleForm, VerificationRequestForm
from edges.web.console import auditor_console
from edges.web.service_calls import run_service
from h2h_core.models import AuditCheckpoint, AuditEvent, AuditHead
from h2h_core.organisation import current_organisation

PAGE_SIZE = 50
EVENT_FILTERS = ("action", "actor", "object_type", "object_id", "outcome", "date_from", "date_to", "case")


# --- the audit log (every event) ----------------------------------------------------------------


def _events_matching(params) -> tuple:
    """Audit events filtered by GET parameters; returns (queryset, the filters used)."""
    return filtering.events_matching(params)


@auditor_console
def audit_log(request):
    """Every recorded change, newest first, filtered by action, actor, object, outcome and day."""
    events, filters = _events_matching(request.GET)
    count, more = reports.capped_count(events)
    page = reports.seek_page_events(events, after=request.GET.get("after"), before=request.GET.get("before"),
                                    size=PAGE_SIZE)
    return render(request, "authority/audit_log.html", {
        "page": page, "filters": filters, "count": count, "more": more, "query": urlencode(filters),
        "tz": current_organisation().tz,
    })


# --- the decision log ---------------------------------------------------------------------------


def _decision_filters(request):
    return filtering.decision_filters(request.GET)


@auditor_console
def decision_log(request):
    """Decisions with filters, a (capped) result count and seek paging."""
    form, filters = _decision_filters(request)
    context = {"form": form, "filters": filters, "tz": current_organisation().tz}
    if filters is None:
        return render(request, "authority/decision_log.html", {**context, "page": None, "count": 0})
    if filters.outcome == "refused":
        qs = reports.refusals_matching(filters)
        page = reports.seek_page_events(qs, after=request.GET.get("after"), before=request.GET.get("before"),
                                        size=PAGE_SIZE)
    else:
        qs = reports.decisions_matching(filters).select_related(
            "case__customer", "case__team", "agent", "kind", "grant", "request__decided_by")
        page = reports.seek_page(qs, field_name="executed_at", after=request.GET.get("after"),
                                 before=request.GET.get("before"), size=PAGE_SIZE)
    count, more = reports.capped_count(qs)
    query = filters.as_query()
    return render(request, "authority/decision_log.html", {
        **context, "page": page, "count": count, "more": more, "query": urlencode(query), "params": query,
        "refused": filters.outcome == "refused", "cap": reports.decision_log.COUNT_CAP,
    })


@auditor_console
def decision_detail(request, pk: int):
    """One decision: its verdict, the exact grant version that allowed it, the request, the case."""
    decision = (Decision.objects.select_related(
        "case__customer", "case__team", "case__owner", "agent", "kind",
        "grant__kind", "grant__subject_user", "grant__subject_team", "grant__subject_role", "grant__granted_by",
        "grant__confirmed_by", "request__requester", "request__decided_by", "request__kind", "reversed_by",
    ).filter(pk=pk).first())
    if decision is None:
        raise Http404("No such decision")
    events = list(AuditEvent.objects.filter(
        Q(object_type="decision", object_id=str(decision.pk))
        | Q(object_type="authority_request", object_id=str(decision.request_id or ""))
    ).order_by(*AuditEvent._meta.ordering))
    flags = list(decision.review_flags.select_related("auditor").order_by("-created_at"))
    return render(request, "authority/decision_detail.html", {
        "d": decision, "verdict": decision.verdict, "events": events, "flags": flags,
        "executed_event": next((e for e in events if e.action == "decision.executed"), None),
        "flag_form": ReviewFlagForm(), "may_flag": is_auditor(request.user), "tz": current_organisation().tz,
        "usage": _usage_before_after(decision),
        # A superuser may reverse from here; auditors never may (the predicate says why).
        "may_reverse": may_reverse(request.user, decision),
    })


@auditor_console
def decision_receipt(request, pk: int):
    """Download the decision's receipt (h2h-receipt/v1), checkable offline with examples/verify_receipt.py."""
    from h2h_core.audit.jobs import decision_receipt_or_signing

    if not Decision.objects.filter(pk=pk).exists():
        raise Http404("No such decision")
    receipt = decision_receipt_or_signing(decision_id=pk)
    if receipt is None:
        messages.info(request, "No signed checkpoint includes this decision yet. A signing was asked for: "
                               "download the receipt again in a minute.")
        return redirect("audit:decision", pk=pk)
    response = JsonResponse(receipt, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="decision-{pk}-receipt.json"'
    return response


def _usage_before_after(decision: Decision) -> list[dict]:
    """Headroom the decision found and what it left, from the verdict stored with it."""
    verdict = decision.verdict or {}
    amount = verdict.get("counted_amount") or verdict.get("amount")
    rows = []
    for label, used, limit in (("Per case", "per_case_used", "per_case_limit"),
                               ("Period", "period_used", "period_limit")):
        if verdict.get(used) is None:
            continue
        before = Decimal(str(verdict[used]))
        rows.append({"label": label, "limit": verdict.get(limit), "before": before,
                     "after": before + Decimal(str(amount or 0)), "currency": verdict.get("counted_currency", "")})
    return rows


@auditor_console
@require_POST
def flag_decision(request, pk: int):
    """An auditor's finding on a decision: the only change an auditor makes."""
    decision = Decision.objects.filter(pk=pk).first()
    if decision is None:
        raise Http404("No such decision")
    form = ReviewFlagForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a severity and describe the finding.")
    else:
        ok, _ = run_service(request, lambda: review_flag_create(actor=request.user, decision=decision,
                                                                severity=form.cleaned_data["severity"],
                                                                finding=form.cleaned_data["finding"]))
        if ok:
            messages.success(request, f"Flagged decision {decision.pk}; the flag is in the audit log.")
    return redirect(reverse("audit:decision", args=[decision.pk]) + "#flags")


@auditor_console
def grant_version(request, pk: int):
    """One grant version: its terms, maker and checker, every version of its line, its decisions."""
    grant = (Grant.objects.with_state()
             .select_related("kind", "subject_user", "subject_team", "subject_role", "case", "granted_by",
                             "confirmed_by", "supersedes", "bound_owner")
             .filter(pk=pk).first())
    if grant is None:
        raise Http404("No such grant")
    versions = list(Grant.objects.with_state().filter(lineage=grant.lineage)
                    .select_related("granted_by", "confirmed_by").order_by("-version")) if grant.lineage else [grant]
    decisions = list(Decision.objects.filter(grant=grant).select_related("case", "agent", "kind")
                     .order_by("-executed_at", "-id")[:20])
    request_row = AuthorityRequest.objects.filter(one_off_grant=grant).select_related("requester", "decided_by").first()
    # Every event about the grant: its versions' own, and for a one-off grant those of the request
    # whose approval created it (recorded against the request).
    about = Q(object_type="grant", object_id__in=[str(v.pk) for v in versions])
    if request_row is not None:
        about |= Q(object_type="authority_request", object_id=str(request_row.pk))
    events = list(AuditEvent.objects.filter(about).order_by(*AuditEvent._meta.ordering))
    return render(request, "authority/grant_version.html", {
        "grant": grant, "versions": versions, "events": events, "decisions": decisions,
        "diff": reports.grant_diff(grant.supersedes, grant) if grant.supersedes_id else None,
        "authority_request": request_row, "tz": current_organisation().tz,
    })


# --- authority as of an instant, and its history ------------------------------------------------


@auditor_console
def authority_at(request):
    """The grants in force at an instant for a person, a team or a role."""
    form = AuthorityAtForm(request.GET or None)
    result = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        at = data["at"] or timezone.now()
        if data["subject"] == "person":
            held = list(selectors.grants_in_force(at=at, user=data["user"]))
            inherited = [g for g in selectors.grants_applicable_to_agent(
                agent=data["user"], kind_id=None, case_id=None, at=at).select_related("kind")
                if g.subject_user_id is None]
            label = f"person {data['user'].get_username()}"
        else:
            held = list(selectors.grants_in_force(at=at, **{data["subject"]: data[data["subject"]]}))
            inherited = []
            label = f"{data['subject']} {data[data['subject']]}"
        result = {"at": at, "held": held, "inherited": inherited, "label": label}
    return render(request, "authority/authority_at.html", {"form": form, "result": result,
                                                           "tz": current_organisation().tz})


@auditor_console
def changes(request):
    """Every authority change, newest first: the version, its maker and its checker."""
    params = {key: request.GET.get(key, "").strip() for key in ("kind", "level", "maker", "status")}
    qs = reports.grant_changes(**params)
    page = reports.seek_page(qs, field_name="id", after=request.GET.get("after"),
                                    before=request.GET.get("before"), size=PAGE_SIZE)
    rows = [{"grant": g, "diff": [r for r in reports.grant_diff(g.supersedes, g) if r["changed"]]
             if g.supersedes_id else None} for g in page.rows]
    filters = {k: v for k, v in params.items() if v}
    return render(request, "authority/changes.html", {
        "page": page, "rows": rows, "filters": filters, "query": urlencode(filters),
        "kinds": AuthorityKind.objects.order_by("name"), "statuses": GrantStatus.choices,
        "levels": ("person", "team", "role", "one-off"), "tz": current_organisation().tz,
    })


# --- the chain ----------------------------------------------------------------------------------


def _chain_context(request, **extra) -> dict:
    from h2h_core.audit.checkpoint import configured_key_fingerprint
    from h2h_core.audit.seal_lag import seal_lag
    from h2h_core.models import ChainVerification

    verifications = ChainVerification.objects.select_related("requested_by")
    return {
        "head": AuditHead.objects.filter(pk=1).first(),
        "last_checkpoint": AuditCheckpoint.objects.order_by("-seq", "-id").first(),
        "checkpoint_count": AuditCheckpoint.objects.count(),
        "sealer": seal_lag(),
        "key_fingerprint": configured_key_fingerprint(),
        "active": verifications.filter(status__in=ChainVerification.ACTIVE).first(),
        "last": verifications.exclude(status__in=ChainVerification.ACTIVE).order_by("-finished_at", "-pk").first(),
        "verify_form": VerificationRequestForm(),
        "may_verify": may_use_auditor_console(request.user),
        "tz": current_organisation().tz,
        **extra,
    }


@auditor_console
def chain(request):
    """Chain status: the head, the last signed checkpoint and verification, and downloads to check outside."""
    return render(request, "authority/chain.html", _chain_context(request))


@auditor_console
def verify(request):
    """The last verification's result, the one queued or running, and the form that requests one."""
    return render(request, "authority/chain.html", _chain_context(request))


@auditor_console
@require_POST
def verify_request(request):
    """Queue a verification of the chain (a worker runs it); a second request gets the queued one."""
    from h2h_core.audit.verification import chain_verification_request

    form = VerificationRequestForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose what to verify: the new entries or the whole chain.")
        return render(request, "authority/chain.html", _chain_context(request, verify_form=form), status=400)
    ok, result = run_service(request, lambda: chain_verification_request(actor=request.user, full=form.full()))
    if not ok:
        return render(request, "authority/chain.html", _chain_context(request, verify_form=form), status=403)
    verification, created = result
    if created:
        messages.success(request, f"Verification {verification.pk} ({verification.mode}) "
                                  "is queued; this page shows its result when a worker has run it.")
    else:
        requested = timezone.localtime(verification.requested_at, current_organisation().tz)
        who = verification.requested_by.username if verification.requested_by else "the schedule"
        messages.info(request, f"Verification {verification.pk} is already {verification.get_status_display().lower()} "
                               f"(requested by {who} at {requested:%H:%M:%S}); no second one was queued.")
    return redirect(reverse("audit:verify"))


@auditor_console
def checkpoints_json(request):
    """Every signed checkpoint, with what its signature covers, as JSON for outside verification."""
    rows = [{
        "id": c.pk, "seq": c.seq, "hash": c.hash, "signed_at": c.signed_at.astimezone(UTC).isoformat(),
        # v2 checkpoints also sign the root of the Merkle tree over entries 1..seq (tree_size = seq).
        "tree_size": c.seq if c.root_hash else None, "root_hash": c.root_hash or None,
        "signature": c.signature, "key_fingerprint": c.key_fingerprint, "public_key": c.public_key,
        "signed_message": c.signed_message().decode(),
    } for c in AuditCheckpoint.objects.order_by("seq", "id")]
    response = JsonResponse({
        "algorithm": "Ed25519 over signed_message (UTF-8); signature and hash in hex",
        "checkpoints": rows,
    }, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = 'attachment; filename="h2h-audit-checkpoints.json"'
    return response


@auditor_console
def public_key(request):
    """The public key that verifies the checkpoints (PEM)."""
    from h2h_core.audit.checkpoint import SigningKeyError, public_key_pem

    try:
        pem = public_key_pem()  # H2H_AUDIT_PUBLIC_KEY (this server needs no private key)
    except SigningKeyError:
        latest = AuditCheckpoint.objects.order_by("-seq", "-id").first()
        if latest is None:
            raise Http404("No audit public key is configured and nothing has been signed yet.") from None
        pem = latest.public_key
    response = HttpResponse(pem, content_type="application/x-pem-file")
    response["Content-Disposition"] = 'attachment; filename="h2h-audit-public-key.pem"'
    return response


# --- review sampling ----------------------------------------------------------------------------


@auditor_console
def review(request):
    """A random, reproducible sample of decisions to review; flag them from the decision page."""
    form = SampleForm(request.GET or None, initial={"size": 20})
    sample = None
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data.get("seed") is None:
            query = request.GET.copy()
            query["seed"] = str(random.SystemRandom().randint(0, 2**31 - 1))  # noqa: S311
            return redirect(reverse("audit:review") + "?" + query.urlencode())
        filters = reports.DecisionFilters(date_from=data.get("date_from"), date_to=data.get("date_to"))
        ids = reports.sample_decisions(reports.decisions_matching(filters), size=data["size"], seed=data["seed"])
        sample = list(Decision.objects.filter(pk__in=ids).select_related("case__customer", "agent", "kind")
                      .order_by("-executed_at", "-id"))
    flagged = set(ReviewFlag.objects.filter(decision__in=sample or []).values_list("decision_id", flat=True))
    return render(request, "authority/review.html", {"form": form, "sample": sample, "flagged": flagged,
                                                     "tz": current_organisation().tz})


@auditor_console
def flags(request):
    """Every review flag, newest first."""
    qs = ReviewFlag.objects.select_related("decision__agent", "decision__kind", "decision__case", "auditor") \
        .order_by("-id")
    page = reports.seek_page(qs, field_name="id", after=request.GET.get("after"),
                                    before=request.GET.get("before"), size=PAGE_SIZE)
    return render(request, "authority/flags.html", {"page": page, "tz": current_organisation().tz})

