"""The authority check's reads compiled once (grants, usage) and its answer written through one bound
serializer give exactly what the querysets and VerdictOut give."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rest_framework.renderers import JSONRenderer

from authority import policy, selectors, usage
from authority.models import Effect, Grant, GrantStatus, Period, UsageCounter
from authority.policy.verdict import GrantRef, Verdict
from edges.api.serializers.verdicts import VerdictOut, verdict_data
from h2h_core.models import Role
from tests.authority.test_evaluate_queries import add_many_grants
from tests.factories import CaseFactory, GrantFactory, ai_agent, exchange_rate, kind, loaded_case, role, set_usage

pytestmark = pytest.mark.django_db

AT = datetime(2026, 5, 14, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def fields(grant: Grant) -> dict:
    values = {name: value for name, value in vars(grant).items() if not name.startswith("_")}
    related = {name: getattr(grant, name).pk for name in ("subject_user", "subject_team", "subject_role", "bound_owner")
               if Grant._meta.get_field(name).is_cached(grant) and getattr(grant, name) is not None}
    return {**values, "related": related}


def add_grants_out_of_force(alice, retention, case, refund):
    """Expired, superseded, unconfirmed, future, pending and shadow grants, a bound one-off and a suspension."""
    GrantFactory(subject_user=alice, valid_until=AT - timedelta(days=1))
    GrantFactory(subject_user=alice, superseded_at=AT - timedelta(hours=1))
    GrantFactory(subject_user=alice, confirmed_at=AT + timedelta(hours=1))
    GrantFactory(subject_team=retention, valid_from=AT + timedelta(days=1))
    GrantFactory(subject_team=retention, status=GrantStatus.PENDING)
    GrantFactory(subject_user=alice, shadow=True, per_case_limit=Decimal("9000"))
    GrantFactory(subject_role=role(Role.AGENT), effect=Effect.FORBID, kind=refund, reason="audit")
    GrantFactory(subject_user=alice, case=case, bound_owner=alice, per_case_limit=Decimal("75"), period=Period.NONE,
                 period_limit=None, scope_categories=["complaint"], scope_tiers=["standard", "gold"])


@pytest.mark.parametrize("shadow", [False, True])
def test_grants_for_a_question_are_the_querysets_grants_field_for_field(alice, retention, shadow):
    # given every level of grant, in force and not, for alice's case
    case = CaseFactory(owner=alice, team=retention)
    refund = kind("refund")
    add_many_grants(alice, retention, case, refund)
    add_grants_out_of_force(alice, retention, case, refund)
    # when the grants that could speak are read both ways
    want = list(selectors.grants_applicable_to_agent(agent=alice, kind_id=refund.pk, case_id=case.pk, at=AT,
                                                     shadow=shadow))
    found = selectors.grants_for_question(agent_id=alice.pk, kind_id=refund.pk, case_id=case.pk, at=AT, shadow=shadow)
    # then the same grants, in the same order, with the same values and related rows loaded
    assert len(want) > 20
    assert [grant.pk for grant in found] == [grant.pk for grant in want]
    assert [fields(grant) for grant in found] == [fields(grant) for grant in want]
    assert any(grant.shadow for grant in found) is shadow


def test_an_ai_agents_grants_leave_out_its_teams_grants_as_the_queryset_does(retention):
    # given an AI agent in a team with a team grant, and its own grant
    bot = ai_agent(retention, "bot").user
    case = CaseFactory(owner=bot, team=retention)
    GrantFactory(subject_team=retention)
    own = GrantFactory(subject_user=bot)
    # when its grants are read
    found = selectors.grants_for_question(agent_id=bot.pk, kind_id=kind("refund").pk, case_id=case.pk, at=AT)
    # then only its own
    assert [grant.pk for grant in found] == [own.pk]


@pytest.mark.parametrize("count", [1, 2, 3, selectors.PREPARED_KEYS + 1])
def test_usage_for_keys_reads_the_counters_asked_for_and_no_others(alice, count):
    # given counters, one more than asked for
    refund = kind("refund")
    keys = [usage.case_key(case_id=i, kind_code="refund", currency="EUR") for i in range(count + 1)]
    for i, key in enumerate(keys):
        set_usage(key, Decimal("10.25") * (i + 1), kind_obj=refund, scope=UsageCounter.Scope.CASE)
    # when all but the last are asked for, with one that has no counter
    found = selectors.usage_for_keys([*keys[:count], "c:0:none:EUR"])
    # then exactly those, as decimals
    assert found == {key: Decimal("10.25") * (i + 1) for i, key in enumerate(keys[:count])}
    assert all(isinstance(value, Decimal) for value in found.values())


def verdicts_of_every_kind(alice, retention, maria) -> list[Verdict]:
    refund = kind("refund")
    case = loaded_case(CaseFactory(owner=alice, team=retention))
    GrantFactory(subject_user=alice, currency="USD", per_case_limit=Decimal("100"), period_limit=Decimal("300"))
    GrantFactory(subject_user=maria, per_case_limit=Decimal("5000"), period_limit=None, period=Period.NONE)
    exchange_rate("EUR", "USD", "1.0831", AT.date() - timedelta(days=3))
    ask = {"agent": alice, "kind": refund, "currency": "EUR", "case": case, "at": AT}
    verdicts = [policy.evaluate(amount="10.00", **ask), policy.evaluate(amount="400.00", **ask)]
    GrantFactory(subject_user=alice, case=case, bound_owner=alice, per_case_limit=Decimal("700"), currency="EUR",
                 period=Period.NONE, period_limit=None)
    verdicts.append(policy.evaluate(amount="700.00", **ask))
    GrantFactory(subject_user=alice, effect=Effect.FORBID, reason="under review")
    verdicts.append(policy.evaluate(amount="1.00", **ask))
    verdicts.append(policy.evaluate(agent=maria, kind=refund, amount="1.00", currency="EUR", case=case, at=AT))
    # and one made by hand, with an enum where the database gives text
    verdicts.append(Verdict(allowed=False, kind="refund", unit="money", amount=Decimal("1.50"), currency="EUR",
                            evaluated_at=AT, reasons=["x"], deciding_grants=[GrantRef(1, 1, 2, "team", Effect.FORBID,
                                                                                      "team Retention")],
                            approvers=["maria"], approvers_are_fallback=True, no_approver=""))
    return verdicts


def test_verdict_data_is_what_verdictout_writes_byte_for_byte(alice, retention, maria):
    # given verdicts of every kind: allowed, converted, over a limit with approvers, one-off, suspended, no grant
    verdicts = verdicts_of_every_kind(alice, retention, maria)
    assert {(v.allowed, v.suspended, v.level, bool(v.rate), bool(v.approvers)) for v in verdicts} >= {
        (True, False, "person", True, False), (False, False, "person", True, True),
        (True, False, "one-off", False, False), (False, True, "person", False, False)}
    for verdict in verdicts:
        # when each is written through the kept serializer and through a new VerdictOut
        found, want = verdict_data(verdict), VerdictOut(verdict.as_dict()).data
        # then the same keys, order, values and types, and the same JSON
        assert list(found.items()) == list(want.items())
        assert JSONRenderer().render(found) == JSONRenderer().render(want)
