"""factory_boy factories for the domain. Grants default to a person permit for refunds in EUR."""

from datetime import UTC, date, datetime
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from djmoney.money import Money

from authority.models import AuthorityKind, Effect, ExchangeRate, Grant, GrantStatus, Period, UsageCounter
from h2h_core.models import Case, CaseCategory, CaseStatus, Customer, CustomerTier, Team

User = get_user_model()
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def role(name: str) -> Group:
    return Group.objects.get_or_create(name=name)[0]


def kind(code: str = "refund") -> AuthorityKind:
    return AuthorityKind.objects.get(code=code)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("h2h-demo")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(*(role(name) for name in extracted))


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.LazyAttribute(lambda t: t.name.lower().replace(" ", "-"))


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    tier = CustomerTier.STANDARD
    annual_value = Money(Decimal("12000.00"), "EUR")
    customer_since = date(2021, 3, 1)


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    customer = factory.SubFactory(CustomerFactory)
    subject = factory.Sequence(lambda n: f"Problem {n}")
    category = CaseCategory.COMPLAINT
    amount_at_stake = Money(Decimal("250.00"), "EUR")
    stakes_score = 30
    status = CaseStatus.OWNED
    opened_at = EPOCH


class GrantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Grant
        skip_postgeneration_save = True

    kind = factory.LazyFunction(lambda: kind("refund"))
    effect = Effect.PERMIT
    status = GrantStatus.ACTIVE
    per_case_limit = Decimal("500")
    period_limit = Decimal("1000")
    period = Period.MONTH
    currency = "EUR"
    valid_from = EPOCH
    reason = "test grant"
    created_at = EPOCH

    @factory.post_generation
    def set_lineage(self, create, extracted, **kwargs):
        if create and self.lineage is None:
            Grant.objects.filter(pk=self.pk).update(lineage=self.pk)
            self.lineage = self.pk


def set_usage(key: str, used, *, kind_obj: AuthorityKind, scope: str = "period", **fields) -> UsageCounter:
    counter, _ = UsageCounter.objects.update_or_create(
        key=key, defaults={"used": Decimal(str(used)), "scope": scope, "kind": kind_obj, **fields}
    )
    return counter


def exchange_rate(base: str, quote: str, rate, valid_on: date) -> ExchangeRate:
    """Store "1 `base` = `rate` `quote` from `valid_on`"."""
    return ExchangeRate.objects.create(base=base, quote=quote, rate=Decimal(str(rate)), valid_on=valid_on)


def loaded_case(case: Case) -> Case:
    """Return the case as evaluate wants it: with its customer loaded in the same query."""
    return Case.objects.select_related("customer").get(pk=case.pk)


def team_manager(team: Team, username: str, **fields):
    """Return a user with the Manager role and the manage_team object permission on `team`."""
    from guardian.shortcuts import assign_perm

    user = UserFactory(username=username, roles=["Manager"], **fields)
    assign_perm("h2h_core.manage_team", user, team)
    return user


def successful_audit_events() -> int:
    """Count audit events of changes that happened; refusals are audited too, as `denied`.

    Signing in and out is audited as well (`auth.*`), but changes nothing: not counted.
    """
    from h2h_core.models import AuditEvent

    return AuditEvent.objects.exclude(outcome="denied").exclude(action__startswith="auth.").count()


def ai_agent(team: Team, username: str = "ai-bot", *, categories=None, max_stakes: int = 60, **fields):
    """Return an AiAgent (its user has the AI agent role, no password, and is a member of `team`).

    By default it may own every category up to stakes 60 and acts on cases whatever their sentiment.
    """
    from h2h_core.models import AiAgent

    user = UserFactory(username=username, roles=["AI agent"])
    user.set_unusable_password()
    user.save(update_fields=["password"])
    team.members.add(user)
    fields.setdefault("hand_off_negative_sentiment", False)
    return AiAgent.objects.create(
        user=user, team=team, model_name=fields.pop("model_name", "support-llm"),
        model_version=fields.pop("model_version", "2026-11"), registered_at=EPOCH,
        route_categories=list(CaseCategory.values) if categories is None else list(categories),
        max_stakes=max_stakes, **fields,
    )
