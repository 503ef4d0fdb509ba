"""A service is the whole transaction when called alone, and joins its caller's when nested."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from h2h_core import services as case_services
from h2h_core.errors import DomainError
from h2h_core.models import AuditEvent, CaseStatus, Role
from tests.factories import CaseFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_case(retention):
    return CaseFactory(team=retention, owner=None, status=CaseStatus.QUEUED)


@pytest.fixture
def outsider(db):
    return UserFactory(username="zed", roles=[Role.AGENT])


def test_a_service_alone_commits_its_refusal_after_rolling_back(outsider, queued_case):
    audit = AuditEvent.objects.exclude(outcome="denied").count()
    # when an agent of another team claims the case, through the service alone
    with pytest.raises(DomainError):
        case_services.case_claim(actor=outsider, case=queued_case)
    # then nothing changed, and the refusal is on the record
    queued_case.refresh_from_db()
    assert queued_case.owner is None
    assert AuditEvent.objects.exclude(outcome="denied").count() == audit
    assert AuditEvent.objects.filter(action="case.claim.refused", outcome="denied").count() == 1


def test_a_service_inside_a_callers_transaction_joins_it_without_a_savepoint(alice, queued_case):
    # when the service runs inside a transaction its caller opened
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        case_services.case_claim(actor=alice, case=queued_case)
    # then it opened no savepoint of its own, and its change is the caller's to commit
    assert not [q["sql"] for q in queries.captured_queries if "SAVEPOINT" in q["sql"].upper()]
    queued_case.refresh_from_db()
    assert queued_case.owner == alice


def test_a_refusal_inside_a_callers_transaction_aborts_all_of_it_and_the_caller_records_it(
    alice, outsider, queued_case
):
    audit = AuditEvent.objects.count()
    # when the caller's unit of work claims the case, then has it claimed again (refused)
    with pytest.raises(DomainError), transaction.atomic():
        case_services.case_claim(actor=alice, case=queued_case)
        case_services.case_claim(actor=outsider, case=queued_case)
    # then the first claim was rolled back with it, and the service recorded no refusal: its
    # outermost caller does (a workflow step's own decorator, or the edge that opened the transaction)
    queued_case.refresh_from_db()
    assert queued_case.owner is None and queued_case.status == CaseStatus.QUEUED
    assert AuditEvent.objects.count() == audit
