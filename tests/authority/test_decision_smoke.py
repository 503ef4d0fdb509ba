from decimal import Decimal

import pytest

from authority.errors import AuthorityDenied
from authority.models import Decision, OutboxMessage, RequestStatus
from authority.services import authority_request_approve, authority_request_open, decision_execute
from h2h_core.models import AuditEvent
from tests.factories import GrantFactory, kind


@pytest.mark.django_db
def test_refund_request_approve_execute_round_trip(alice, maria, case_owned_by_alice):
    # given alice may refund 500 per case, maria 5,000
    GrantFactory(subject_user=alice, per_case_limit=Decimal("500"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=Decimal("20000"))
    refund = kind("refund")
    # when she refunds 200, then tries 1,200
    decision_execute(actor=alice, case=case_owned_by_alice, kind=refund, amount="200", currency="EUR",
                     rationale="double charge")
    with pytest.raises(AuthorityDenied) as refused:
        decision_execute(actor=alice, case=case_owned_by_alice, kind=refund, amount="1200", currency="EUR",
                         rationale="goodwill")
    assert "300.00 EUR left on case" in refused.value.verdict.reasons[0]
    request = authority_request_open(actor=alice, case=case_owned_by_alice, kind=refund, amount="1200",
                                     currency="EUR", justification="Key account")
    assert request.pool == [maria.pk]
    authority_request_approve(actor=maria, request=request, note="ok")
    decision = decision_execute(actor=alice, case=case_owned_by_alice, kind=refund, amount="1200",
                                currency="EUR", rationale="goodwill")
    # then
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
    assert decision.request == request
    assert Decision.objects.count() == 2 and OutboxMessage.objects.count() == 2
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions == ["decision.executed", "decision.refused", "authority_request.opened",
                       "authority_request.approved", "decision.executed"]
