"""`/metrics/`: Prometheus text, off unless enabled, behind a bearer token when one is set."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from authority.services import decision_execute
from h2h_core.audit import audit_seal
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, kind
from workflows import services

pytestmark = pytest.mark.django_db


def sample(text: str, name: str, **labels) -> float:
    label_text = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = "^" + re.escape(f"{name}{{{label_text}}}" if labels else name) + r" (\S+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{name} {labels} not in the metrics"
    return float(match.group(1))


def test_metrics_are_off_unless_enabled(client):
    assert client.get("/metrics/").status_code == 404


def test_metrics_need_the_bearer_token_when_one_is_set(client, settings):
    settings.H2H_METRICS_ENABLED = True
    settings.H2H_METRICS_TOKEN = "s3cret-scraper-token"
    assert client.get("/metrics/").status_code == 401
    assert client.get("/metrics/", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics/", HTTP_AUTHORIZATION="Bearer s3cret-scraper-token").status_code == 200


def test_metrics_count_decisions_requests_and_lags(client, settings, alice, maria):
    settings.H2H_METRICS_ENABLED = True
    # given one executed refund, one refused, an overdue unclaimed case and an unsealed audit log
    GrantFactory(subject_user=alice, per_case_limit=Decimal("100"))
    case = CaseFactory(owner=alice, team=alice.teams.first())
    decision_execute(actor=alice, case=case, kind=kind("refund"), amount=Decimal("40"), currency="EUR",
                     rationale="Goodwill")
    with pytest.raises(Exception):  # noqa: B017 (whichever refusal the policy names)
        decision_execute(actor=alice, case=case, kind=kind("refund"), amount=Decimal("400"), currency="EUR",
                         rationale="Too much")
    services.case_flow_open(actor=alice, customer=CustomerFactory(), subject="Late", category="complaint",
                            amount_at_stake="250", currency="EUR", opened_at=timezone.now() - timedelta(hours=6))
    audit_seal()  # the sealer has run: every event is in the chain, none is covered by a checkpoint yet
    # when the scraper asks
    response = client.get("/metrics/")
    text = response.content.decode()
    # then the page is Prometheus text with the figures
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert sample(text, "h2h_decisions_executed_total") == 1
    assert sample(text, "h2h_decisions_refused_total") == 1
    assert sample(text, "h2h_authority_requests_open") == 0
    assert sample(text, "h2h_timer_lag_seconds") >= 2 * 3600 - 60
    assert sample(text, "h2h_audit_unsealed_entries") >= 3 and sample(text, "h2h_audit_seal_lag_seconds") >= 0
    assert sample(text, "h2h_audit_sealer_pending_entries") == 0
    assert sample(text, "h2h_webhook_deliveries", state="pending") == 0
    assert sample(text, "h2h_webhook_deliveries", state="dead") == 0
    assert sample(text, "h2h_mail_messages", state="pending") >= 0
    assert sample(text, "h2h_jobs", state="ready") >= 0
    assert "# TYPE h2h_decisions_executed_total counter" in text


def test_every_metrics_line_is_valid_exposition_text(client, settings):
    settings.H2H_METRICS_ENABLED = True
    text = client.get("/metrics/").content.decode()
    for line in text.strip().splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or re.fullmatch(
            r'[a-z0-9_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+', line), line
