"""Schemathesis against the live OpenAPI schema, as an agent, a manager and an auditor.

Every operation gets valid and invalid input of every kind Schemathesis derives from the schema
(wrong types, missing and extra fields, blanks, huge numbers, odd characters, bad headers): no
answer may be a server error or break the schema, and every error keeps the one error shape.

The normal suite runs the examples and fuzzing phases with a few examples per operation and role,
to stay fast. For a deep run, raise the examples and add the coverage phase (boundary values of
every parameter; about 1,600 more requests per role):

    H2H_FUZZ_EXAMPLES=100 H2H_FUZZ_COVERAGE=1 H2H_FUZZ_RANDOM=1 python -m pytest tests/api/test_fuzz_schemathesis.py

By default the examples are derandomized (the same on every run, so CI is reproducible);
H2H_FUZZ_RANDOM=1 draws new ones.
"""

import os
from decimal import Decimal

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from authority.services import GrantTerms, authority_request_open, decision_execute, grant_create
from h2h_core.api_tokens import api_token_issue
from h2h_core.models import CaseStatus, Role
from tests.factories import CaseFactory, UserFactory, kind

from .helpers import grant_refund

# Input the schema allows but the domain refuses (an amount with too many decimals for its
# currency, an unknown customer, a rationale of blanks) is a 400: the schema cannot say everything.
POSITIVE_EXPECTED = ["2xx", "400", "401", "403", "404", "409", "422", "429"]

EXAMPLES = int(os.environ.get("H2H_FUZZ_EXAMPLES", "15"))
# Deterministic by default, so a CI run is reproducible; H2H_FUZZ_RANDOM=1 explores new inputs.
DERANDOMIZE = os.environ.get("H2H_FUZZ_RANDOM", "") != "1"
COVERAGE = os.environ.get("H2H_FUZZ_COVERAGE", "") == "1"

CONFIG = schemathesis.Config.from_dict({
    "checks": {
        "positive_data_acceptance": {"expected-statuses": POSITIVE_EXPECTED},
    },
    "phases": {"coverage": {"enabled": COVERAGE}},
})

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(), config=CONFIG)


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():
    """Requests go through the real WSGI handler, whose request signals would close the database connection
    (and with it the test's transaction on PostgreSQL); Django's own test client disconnects them the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(retention, alice, maria):
    """Alice (agent) with authority, a case, a decision and an open request; maria (her manager) with a
    pending grant she made; audrey (auditor). Ids start at 1, so some generated ids hit real rows."""
    audrey = UserFactory(username="audrey", roles=[Role.AUDITOR])
    grant_refund(alice)
    grant_refund(maria, per_case="5000", per_month="20000")
    case = CaseFactory(owner=alice, team=retention)
    CaseFactory(owner=None, team=retention, status=CaseStatus.QUEUED)
    decision_execute(actor=alice, case=case, kind=kind("refund"), amount="20.00", currency="EUR", rationale="seed")
    authority_request_open(actor=alice, case=case, kind=kind("refund"), amount="1200.00", currency="EUR",
                           justification="seed")
    grant_create(actor=maria, kind=kind("refund"), user=alice, reason="seed",
                 terms=GrantTerms(per_case_limit=Decimal("3000"), currency="EUR"))
    return {role: f"Token {api_token_issue(actor=user, user=user).key}"
            for role, user in (("agent", alice), ("manager", maria), ("auditor", audrey))}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["agent", "manager", "auditor"])
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
def test_no_server_errors_and_no_answer_outside_the_schema(case, role, tokens):
    response = case.call(headers={"Authorization": tokens[role]})
    case.validate_response(response, headers={"Authorization": tokens[role]})
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message", "details"}, body
