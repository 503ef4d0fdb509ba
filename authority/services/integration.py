"""Integrators' webhook endpoints: every change is audited, the secret never is."""

from __future__ import annotations

from authority.lock_objects import webhook_endpoint_qs_select_for_update
from authority.models import WebhookEndpoint
from h2h_core.audit import audit_record
from h2h_core.errors import NotAllowed
from h2h_core.transactions import service_atomic


def _endpoint_snapshot(endpoint: WebhookEndpoint) -> dict:
    return {"name": endpoint.name, "url": endpoint.url, "topics": endpoint.topics, "active": endpoint.active}


def webhook_endpoint_save(*, actor, endpoint: WebhookEndpoint, secret_changed: bool) -> WebhookEndpoint:
    """Create or change an endpoint (superusers only); validates it and records before and after."""
    if not actor.is_superuser:
        raise NotAllowed("Only administrators configure webhook endpoints.")
    endpoint.full_clean()
    with service_atomic():
        before = None
        if endpoint.pk:
            before = _endpoint_snapshot(webhook_endpoint_qs_select_for_update().get(pk=endpoint.pk))
        endpoint.save()
        audit_record(actor=actor, action="webhook_endpoint.changed" if before else "webhook_endpoint.created",
                     object_type="webhook_endpoint", object_id=endpoint.pk, before=before,
                     after={**_endpoint_snapshot(endpoint), "secret_changed": secret_changed})
    return endpoint
