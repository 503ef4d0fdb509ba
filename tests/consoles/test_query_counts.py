"""Every list page of the consoles costs a fixed number of queries, however many rows it lists.

Each case measures the page, adds rows of what it lists, and asserts the page costs no more.
(The approvals, matrix, people, dashboard and decision-log pages have their own tests.)
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authority.models import Delegation, GrantStatus
from authority.services import GrantTerms, grant_change
from h2h_core.audit import audit_record
from h2h_core.models import Role
from tests.factories import CaseFactory, GrantFactory, UserFactory, role

from .factories import DecisionFactory, ReviewFlagFactory

pytestmark = pytest.mark.django_db


def pending_grants(cast, count):
    for index in range(count):
        GrantFactory(subject_user=cast["alice"], status=GrantStatus.PENDING, granted_by=cast["mike"],
                     per_case_limit=Decimal(3000 + index))


def events(cast, count):
    from django.db import transaction

    with transaction.atomic():
        for index in range(count):
            audit_record(actor=cast["admin"], action="test.event", object_type="test", object_id=index)


def grant_versions(cast, count):
    grant = GrantFactory(subject_role=role(Role.SENIOR_AGENT), per_case_limit=Decimal("100"))
    for index in range(count):
        grant = grant_change(actor=cast["maria"], grant=grant, reason=f"step {index}",
                             terms=GrantTerms(per_case_limit=Decimal(101 + index), currency="EUR"))


def flags(cast, count):
    case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    for _ in range(count):
        ReviewFlagFactory(decision=DecisionFactory(case=case), auditor=cast["audrey"])


def delegations(cast, count):
    now = timezone.now()
    for index in range(count):
        other = UserFactory(username=f"manager{index}", roles=[Role.MANAGER])
        Delegation.objects.create(manager=cast["maria"], delegate=other, starts_at=now + timedelta(days=10 * index),
                                  ends_at=now + timedelta(days=10 * index + 5), created_at=now)


def decisions(cast, count):
    case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    DecisionFactory.create_batch(count, case=case)


PAGES = [
    ("maria", "authority:pending", {}, pending_grants),
    ("maria", "authority:delegations", {}, delegations),
    ("audrey", "audit:log", {}, events),
    ("audrey", "audit:changes", {}, grant_versions),
    ("audrey", "audit:flags", {}, flags),
    ("audrey", "audit:review", {"size": "20", "seed": "1"}, decisions),
    ("audrey", "audit:authority_at", {"subject": "person", "person": "alice"}, grant_versions),
]


@pytest.mark.parametrize(("who", "name", "params", "grow"), PAGES, ids=[p[1] for p in PAGES])
def test_a_list_page_costs_the_same_queries_with_more_rows(client, cast, who, name, params, grow,
                                                           django_assert_max_num_queries):
    grow(cast, 2)
    client.force_login(cast[who])
    client.get(reverse(name), params)
    with CaptureQueriesContext(connection) as few:
        response = client.get(reverse(name), params)
    assert response.status_code == 200
    grow(cast, 12)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(reverse(name), params).status_code == 200
    assert len(few.captured_queries) <= 12, [q["sql"][:100] for q in few.captured_queries]


def test_a_decision_page_costs_the_same_queries_whatever_its_history(client, cast,
                                                                      django_assert_max_num_queries):
    case = CaseFactory(owner=cast["alice"], team=cast["retention"])
    decision = DecisionFactory(case=case)
    client.force_login(cast["audrey"])
    client.get(reverse("audit:decision", args=[decision.pk]))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("audit:decision", args=[decision.pk]))
    for _ in range(10):
        ReviewFlagFactory(decision=decision, auditor=cast["audrey"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(reverse("audit:decision", args=[decision.pk]))
    grant_page = reverse("audit:grant", args=[decision.grant_id])
    client.get(grant_page)
    with CaptureQueriesContext(connection) as grant_few:
        client.get(grant_page)
    DecisionFactory.create_batch(10, case=case, agent=cast["alice"], grant=decision.grant)
    with django_assert_max_num_queries(len(grant_few.captured_queries)):
        client.get(grant_page)
