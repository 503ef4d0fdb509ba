"""Abuse and structuring findings through the API: auditors only, the page's findings as JSON, bad filters a 400."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.consoles.factories import DecisionFactory
from tests.factories import CaseFactory, CustomerFactory, GrantFactory

from .helpers import assert_error_shape

pytestmark = pytest.mark.django_db

FINDINGS = "/api/v1/findings/"


def test_only_auditors_read_findings(as_alice, as_maria):
    for client in (as_alice, as_maria):
        assert_error_shape(client.get(FINDINGS), 403, "permission_denied")


def test_an_auditor_reads_each_detectors_findings(as_audrey, alice):
    # given: alice refunded one customer 480 and 470 under her 500 limit, two days apart
    grant = GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    customer = CustomerFactory(name="Split Ltd")
    for days, amount in ((4, "480"), (2, "470")):
        DecisionFactory(case=CaseFactory(customer=customer, owner=alice), agent=alice, grant=grant,
                        amount=Decimal(amount), executed_at=timezone.now() - timedelta(days=days))
    # when
    body = as_audrey.get(FINDINGS, {"detector": "split-refunds", "days": "7"}).json()
    # then
    [result] = body["results"]
    assert (result["detector"], result["total"], result["more"]) == ("split-refunds", 1, 0)
    [finding] = result["findings"]
    assert finding["customer_name"] == "Split Ltd" and len(finding["decision_ids"]) == 2
    assert finding["key"].startswith("split-refunds:d") and finding["cases"][0].startswith("H2H-")


def test_bad_filters_are_a_400(as_audrey):
    for bad in ({"detector": "nonsense"}, {"days": "12"}, {"days": ""}):
        assert as_audrey.get(FINDINGS, bad).status_code == 400
