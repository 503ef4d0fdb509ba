"""`/metrics/`: the operational figures in the Prometheus text format, when H2H_METRICS_ENABLED.

Off by default (404). With H2H_METRICS_TOKEN set, a scraper must send `Authorization: Bearer
<token>`. Every figure is read from the database (edges.web.vitals), so every app server answers
the same and a scraper may ask any of them. Counters are totals over the data kept, not over the
life of a process.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import vitals

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _family(lines: list[str], name: str, kind: str, help_text: str, samples: list[tuple[dict, float | int]]) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        label_text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
        lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def exposition() -> str:
    """The metrics page's text."""
    lines: list[str] = []
    _family(lines, "h2h_decisions_executed_total", "counter", "Decisions executed.",
            [({}, vitals.decisions_executed())])
    _family(lines, "h2h_decisions_refused_total", "counter", "Decisions refused (audited refusals).",
            [({}, vitals.decisions_refused())])
    _family(lines, "h2h_authority_requests_open", "gauge", "Authority requests waiting for an approver.",
            [({}, vitals.requests_open())])
    timers = vitals.timers()
    _family(lines, "h2h_timer_lag_seconds", "gauge", "How late the most overdue workflow timer is (0: none is).",
            [({}, round(timers.lag, 3))])
    if timers.last_sweep is not None:
        _family(lines, "h2h_timer_last_sweep_timestamp_seconds", "gauge", "When the worker last swept the timers.",
                [({}, round(timers.last_sweep.timestamp(), 3))])
    webhooks = vitals.webhooks()
    _family(lines, "h2h_webhook_deliveries", "gauge", "Webhook deliveries by state (pending is the backlog).",
            [({"state": state}, count) for state, count in webhooks.items()])
    mail = vitals.mail()
    _family(lines, "h2h_mail_messages", "gauge", "Outgoing mail by state (pending is the backlog).",
            [({"state": state}, count) for state, count in mail.items()])
    seal = vitals.audit_seal()
    _family(lines, "h2h_audit_seal_lag_seconds", "gauge",
            "Age of the oldest audit entry no signed checkpoint covers yet (0: the head is sealed).",
            [({}, round(seal.lag, 3))])
    _family(lines, "h2h_audit_unsealed_entries", "gauge", "Audit entries after the newest signed checkpoint.",
            [({}, seal.head_seq - seal.sealed_seq)])
    sealer = vitals.audit_sealer()
    _family(lines, "h2h_audit_sealer_pending_entries", "gauge",
            "Audit events written but not yet linked into the chain by the sealer.", [({}, sealer.pending)])
    _family(lines, "h2h_audit_sealer_oldest_pending_seconds", "gauge",
            "Age of the oldest audit event waiting for the sealer (0: none waits).",
            [({}, round(sealer.oldest_pending_age, 3))])
    _family(lines, "h2h_audit_sealer_lag_seconds", "gauge",
            f"Time from writing to sealing over the last {sealer.sample} sealed audit events.",
            [({"quantile": "0.5"}, round(sealer.p50, 3)), ({"quantile": "0.99"}, round(sealer.p99, 3)),
             ({"quantile": "1"}, round(sealer.max, 3))])
    queue = vitals.queue()
    _family(lines, "h2h_jobs", "gauge", "Jobs in the queue by state (failed: within the retention window).",
            [({"state": "ready"}, queue.ready), ({"state": "running"}, queue.running),
             ({"state": "failed"}, queue.failed)])
    _family(lines, "h2h_jobs_oldest_ready_age_seconds", "gauge", "Age of the oldest job waiting for a worker.",
            [({}, round(queue.oldest_ready_age or 0.0, 3))])
    _family(lines, "h2h_periodic_failures", "gauge", "Failed runs of each periodic job within the retention window.",
            [({"job": name}, count) for name, count in sorted(vitals.periodic_failures().items())])
    return "\n".join(lines) + "\n"


def _authorised(request) -> bool:
    token = settings.H2H_METRICS_TOKEN
    if not token:
        return True
    sent = request.headers.get("Authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


@never_cache
@require_safe
def metrics(request):
    if not settings.H2H_METRICS_ENABLED:
        raise Http404("Metrics are not enabled.")
    if not _authorised(request):
        response = HttpResponse("A valid bearer token is needed.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)
