"""The simulator's report: its figures read back from the database, with the dashboard's definitions.

FCR = resolved without a handover and without a reopening (authority.reports.dashboard); CSAT = the
mean customer rating (1-5), with the share of 4s and 5s; high stakes = stakes_score >= 70; one hop =
an over-limit case (one with a request) with exactly one request, approved, and a decision executed
on its approval.
"""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import datetime

from django.db.models import Count, Exists, OuterRef

from authority.models import AuthorityRequest, Decision, RequestStatus
from h2h_core.models import AuditEvent, Case, CaseEvent

HIGH_STAKES = 70


def outcome_report(*, first_case: int, start: datetime, end: datetime) -> dict:
    """The run's figures, read from the database for the cases it opened (ids from `first_case`)."""
    cases = Case.objects.filter(pk__gte=first_case, opened_at__gte=start, opened_at__lte=end)
    handed = CaseEvent.objects.filter(case=OuterRef("pk"), kind=CaseEvent.Kind.HANDOVER)
    reopened = CaseEvent.objects.filter(case=OuterRef("pk"), kind=CaseEvent.Kind.REOPENED)
    resolved = cases.filter(resolved_at__isnull=False).alias(handed=Exists(handed), reopened=Exists(reopened))
    n_resolved = resolved.count()
    fcr = resolved.filter(handed=False, reopened=False).count()
    high = resolved.filter(stakes_score__gte=HIGH_STAKES)
    n_high = high.count()
    high_first = high.filter(handed=False).count()
    requests = AuthorityRequest.objects.filter(case__in=cases)
    by_status = Counter(dict(requests.values_list("status").annotate(n=Count("pk")).order_by()))
    over_cases = cases.filter(Exists(AuthorityRequest.objects.filter(case=OuterRef("pk"))))
    n_over = over_cases.count()
    one_hop = (over_cases.alias(n=Count("authority_requests", distinct=True))
               .filter(n=1, authority_requests__status=RequestStatus.APPROVED,
                       decisions__request__isnull=False).distinct().count())
    waits = [(decided - created).total_seconds() / 60 for created, decided in
             requests.filter(status=RequestStatus.APPROVED).values_list("created_at", "decided_at")]
    ratings = list(cases.filter(rating__isnull=False).values_list("rating", flat=True))
    decisions = Decision.objects.filter(case__in=cases)
    return {
        "cases": cases.count(),
        "resolved": n_resolved,
        "decisions": decisions.count(),
        "decisions_by_ai": decisions.filter(by_ai_agent=True).count(),
        "refusals": AuditEvent.objects.filter(action="decision.refused", occurred_at__gte=start,
                                              occurred_at__lte=end).count(),
        "requests": sum(by_status.values()),
        "requests_by_status": {str(k): v for k, v in sorted(by_status.items())},
        "high_stakes_resolved": n_high,
        "high_stakes_first_owner_share": _share(high_first, n_high),
        "over_limit_cases": n_over,
        "one_hop_share": _share(one_hop, n_over),
        "median_approval_wait_minutes": round(statistics.median(waits), 1) if waits else None,
        "fcr_share": _share(fcr, n_resolved),
        "csat_mean": round(sum(ratings) / len(ratings), 2) if ratings else None,
        "csat_satisfied_share": _share(sum(1 for r in ratings if r >= 4), len(ratings)),
        "ratings": len(ratings),
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def format_report(report: dict) -> str:
    def pct(value):
        return "n/a" if value is None else f"{100 * value:.1f} %"

    workers = report.get("workers", 1)
    return "\n".join([
        f"Simulated {report['start'][:16]} to {report['end'][:16]} UTC (seed {report['seed']}): "
        f"{report['cases']} cases, {report['resolved']} resolved, {report['decisions']} decisions "
        f"({report['decisions_by_ai']} by AI agents), {report['refusals']} refusals, {report['requests']} requests "
        f"{report['requests_by_status']}.",
        f"High-stakes cases (score >= {HIGH_STAKES}) closed by their first owner: "
        f"{pct(report['high_stakes_first_owner_share'])} of {report['high_stakes_resolved']}.",
        f"Over-limit cases resolved in one hop: {pct(report['one_hop_share'])} of {report['over_limit_cases']}.",
        f"Median approval wait: {report['median_approval_wait_minutes']} min.",
        f"FCR: {pct(report['fcr_share'])}. CSAT: {report['csat_mean']} of 5 "
        f"({pct(report['csat_satisfied_share'])} rated 4 or 5; {report['ratings']} ratings).",
        f"{report['events']} events, {report['audit_events']} audit events in {report['seconds']} s "
        f"({report['events_per_second']} events/s, {workers} worker process{'' if workers == 1 else 'es'}).",
        f"Time by step{'' if workers == 1 else ', the workers added up'}: "
        + ", ".join(f"{name} {value} s" for name, value in list(report.get("seconds_by_event", {}).items())[:8]) + ".",
    ])
