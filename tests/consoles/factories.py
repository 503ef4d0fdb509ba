"""Factories for the console tests: decisions, requests, delegations and review flags in bulk."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from authority.models import AuthorityRequest, Decision, Delegation, RequestStatus, ReviewFlag
from tests.factories import CaseFactory, GrantFactory, kind


class DecisionFactory(factory.django.DjangoModelFactory):
    """An executed decision as decision_execute leaves it (without the counters: tests set those)."""

    class Meta:
        model = Decision

    case = factory.SubFactory(CaseFactory)
    agent = factory.LazyAttribute(lambda d: d.case.owner)
    kind = factory.LazyFunction(lambda: kind("refund"))
    amount = Decimal("100")
    currency = "EUR"
    counted_amount = factory.LazyAttribute(lambda d: d.amount)
    counted_currency = factory.LazyAttribute(lambda d: d.currency)
    grant = factory.LazyAttribute(lambda d: GrantFactory(subject_user=d.agent, kind=d.kind))
    verdict = factory.LazyAttribute(lambda d: {
        "allowed": True, "kind": d.kind.code, "unit": d.kind.unit, "amount": str(d.amount), "currency": d.currency,
        "reasons": ["Within your authority (test)."], "level": "person",
        "deciding_grants": [{"id": d.grant.pk, "lineage": d.grant.lineage or d.grant.pk, "version": d.grant.version,
                             "level": "person", "effect": "permit", "subject": f"person {d.agent}"}],
        "counted_amount": str(d.amount), "counted_currency": d.currency, "per_case_used": "0",
        "per_case_limit": "500", "per_case_headroom": "500",
    })
    rationale = "customer was double charged"
    executed_at = factory.LazyFunction(timezone.now)


class RequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuthorityRequest

    case = factory.SubFactory(CaseFactory)
    requester = factory.LazyAttribute(lambda r: r.case.owner)
    kind = factory.LazyFunction(lambda: kind("refund"))
    amount = Decimal("1200")
    currency = "EUR"
    justification = "key account, outage"
    verdict = factory.LazyAttribute(lambda r: {
        "allowed": False, "reasons": ["Over your per-case limit: 500.00 EUR left."], "counted_amount": str(r.amount),
        "counted_currency": r.currency, "per_case_headroom": "500", "period_headroom": "1000",
        "deciding_grants": [{"id": 1}],
    })
    status = RequestStatus.OPEN
    pool = factory.LazyFunction(list)
    created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=2))
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=22))


class DelegationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delegation

    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=6))
    reason = "holiday"
    created_at = factory.LazyFunction(timezone.now)


class ReviewFlagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewFlag

    decision = factory.SubFactory(DecisionFactory)
    severity = ReviewFlag.Severity.MINOR
    finding = "rationale too thin"
    created_at = factory.LazyFunction(timezone.now)
