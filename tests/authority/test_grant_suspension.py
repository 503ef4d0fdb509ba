"""A suspension forbids without an amount, so a money kind's suspension needs no currency."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from authority import policy
from authority.models import Effect, Grant
from authority.services import GrantTerms, grant_create
from h2h_core.models import Case
from tests.factories import GrantFactory, kind


@pytest.mark.django_db
def test_manager_suspends_an_agent_without_giving_a_currency(alice, maria, case_owned_by_alice):
    # given alice may refund, and maria manages her team
    GrantFactory(subject_user=alice)
    # when maria suspends alice's refunds without a currency
    grant_create(actor=maria, kind=kind("refund"), user=alice, reason="under review",
                 terms=GrantTerms(effect=Effect.FORBID))
    # then refunds are forbidden for alice
    case = Case.objects.select_related("customer").get(pk=case_owned_by_alice.pk)
    verdict = policy.evaluate(agent=alice, kind=kind("refund"), amount="1", currency="EUR", case=case)
    assert not verdict.allowed and verdict.suspended


@pytest.mark.django_db
def test_a_money_permit_still_needs_a_currency(alice, maria):
    before = Grant.objects.count()
    with pytest.raises(ValidationError) as error:
        grant_create(actor=maria, kind=kind("refund"), user=alice, reason="raise",
                     terms=GrantTerms(per_case_limit=Decimal("100")))
    assert "currency" in error.value.message_dict
    assert Grant.objects.count() == before


@pytest.mark.django_db
def test_a_change_scheduled_for_later_leaves_no_gap(alice, maria):
    # given alice's refund grant of 500, changed today to 300 from ten days on
    from datetime import timedelta

    from django.utils import timezone

    from authority.selectors import grants_in_force
    from authority.services import grant_change

    original = grant_create(actor=maria, kind=kind("refund"), user=alice, reason="start",
                            terms=GrantTerms(per_case_limit=Decimal("500"), currency="EUR"))
    starts = timezone.now() + timedelta(days=10)
    grant_change(actor=maria, grant=original, reason="tighter", terms=GrantTerms(
        per_case_limit=Decimal("300"), currency="EUR", valid_from=starts))
    # then the old version is in force until the new one starts, and the new one after
    tomorrow = timezone.now() + timedelta(days=1)
    assert [g.per_case_limit for g in grants_in_force(at=tomorrow, user=alice)] == [Decimal("500")]
    assert [g.per_case_limit for g in grants_in_force(at=starts, user=alice)] == [Decimal("300")]
