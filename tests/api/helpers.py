"""Helpers for API tests: a client per person, grants, and snapshots of everything a call could change."""

from decimal import Decimal

from rest_framework.test import APIClient

from authority.models import (
    AuthorityRequest,
    Decision,
    Grant,
    IdempotencyRecord,
    OutboxMessage,
    Period,
    UsageCounter,
)
from h2h_core.api_tokens import api_token_new
from h2h_core.models import AuditEvent, Case, CaseEvent
from tests.factories import GrantFactory


def client_for(user) -> APIClient:
    """Return an API client that authenticates as `user` with a token, as an integrator would."""
    client = APIClient()
    # Test setup, like the factories: the token is made as the issue service makes it, without its audit
    # event, so tests that read the audit log see only what they did (tests/api/test_tokens.py tests the issue).
    issued = api_token_new(user=user)
    issued.token.save()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    return client


def grant_refund(agent, *, per_case="500", per_month="1000", currency="EUR", **fields) -> Grant:
    return GrantFactory(
        subject_user=agent,
        per_case_limit=Decimal(per_case) if per_case is not None else None,
        period_limit=Decimal(per_month) if per_month is not None else None,
        period=Period.MONTH if per_month is not None else Period.NONE,
        currency=currency,
        **fields,
    )


def state() -> dict:
    """Everything an API call could change: compared before and after every denial."""
    return {
        "cases": list(Case.objects.order_by("pk").values_list("pk", "status", "owner_id", "resolved_at")),
        "requests": list(AuthorityRequest.objects.order_by("pk").values_list("pk", "status", "decided_by_id")),
        "grants": list(Grant.objects.order_by("pk").values_list("pk", "status", "superseded_at")),
        "decisions": list(Decision.objects.values_list("pk", flat=True)),
        "outbox": list(OutboxMessage.objects.values_list("pk", flat=True)),
        "counters": dict(UsageCounter.objects.values_list("key", "used")),
        "case_events": CaseEvent.objects.count(),
    }


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


def idempotency_records() -> list[tuple]:
    return list(IdempotencyRecord.objects.order_by("pk").values_list("key", "state", "response_status"))


def assert_error_shape(response, status: int, code: str | None = None) -> dict:
    """Assert the response is the one error shape with this status (and code); return its body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["code"], str) and isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    if code is not None:
        assert body["code"] == code, body
    return body
