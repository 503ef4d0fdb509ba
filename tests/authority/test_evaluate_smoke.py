from decimal import Decimal

import pytest

from authority import policy
from h2h_core.models import Case
from tests.factories import GrantFactory, kind


@pytest.mark.django_db
def test_alice_may_refund_within_her_personal_grant(alice, case_owned_by_alice):
    # given alice may refund 500 per case
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    case = Case.objects.select_related("customer").get(pk=case_owned_by_alice.pk)
    # when she asks about 200 EUR
    verdict = policy.evaluate(agent=alice, kind=kind("refund"), amount="200", currency="EUR", case=case)
    # then it is allowed, with 500 left on the case
    assert verdict.allowed, verdict.reasons
    assert verdict.per_case_headroom == Decimal("500")
