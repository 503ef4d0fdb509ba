"""Schemathesis against the live OpenAPI schema, as an agent, a manager and an auditor.

Every operation gets valid and invalid input of every kind the schema allows Schemathesis to
invent: no answer may be a server error, break the schema, or leave the one error shape.
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings

from h2h_core.models import Role
from tests.factories import CaseFactory, UserFactory

from .helpers import client_for, grant_refund

# Input the schema allows but the domain refuses (an amount with too many decimals for its
# currency, an unknown customer, a rationale of blanks) is a 400: the schema cannot say everything.
POSITIVE_EXPECTED = ["2xx", "400", "401", "403", "404", "409", "422", "429"]

CONFIG = schemathesis.Config.from_dict({
    "checks": {
        "positive_data_acceptance": {"expected-statuses": POSITIVE_EXPECTED},
    },
})

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(), config=CONFIG)

EXAMPLES = 15


@pytest.fixture
def tokens(retention, alice, maria):
    """An agent with a case and authority, her manager, and an auditor: ids start small, so some examples hit."""
    audrey = UserFactory(username="audrey", roles=[Role.AUDITOR])
    grant_refund(alice)
    grant_refund(maria, per_case="5000", per_month="20000")
    CaseFactory(owner=alice, team=retention)
    return {
        role: client_for(user)._credentials["HTTP_AUTHORIZATION"]
        for role, user in (("agent", alice), ("manager", maria), ("auditor", audrey))
    }


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["agent", "manager", "auditor"])
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
def test_no_server_errors_and_no_answer_outside_the_schema(case, role, tokens):
    response = case.call(headers={"Authorization": tokens[role]})
    case.validate_response(response, headers={"Authorization": tokens[role]})
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"code", "message", "details"}, body
