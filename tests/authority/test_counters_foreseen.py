"""The counters read with the grants (counters_foreseen), and the ones a resolution needs beyond them."""

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from authority import policy, usage
from authority.models import Grant, Period, UsageCounter
from authority.policy.evaluation import Question, counters_foreseen, counters_needed
from tests.factories import GrantFactory, exchange_rate, kind, loaded_case, set_usage

BERLIN = ZoneInfo("Europe/Berlin")
# Late on the last day of a quarter in Berlin, already the next day in UTC: every bucket is the local one.
AT = datetime(2026, 6, 30, 23, 30, tzinfo=BERLIN)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def question(currency: str) -> Question:
    return Question(agent_id=7, kind_code="refund", kind_name="Refund", unit="money", amount=Decimal("10"),
                    currency=currency, case_id=42, case_reference="H2H-000042", case_category="billing_error",
                    customer_tier="standard", at=AT, tz=BERLIN, case_owner_id=7)


@pytest.mark.parametrize("period", list(Period))
@pytest.mark.parametrize("currency", ["EUR", ""])
def test_what_a_grant_in_the_questions_currency_needs_is_foreseen_for_every_period(period, currency):
    # given a grant of the agent, in the question's currency, capped by `period`
    asked = question(currency)
    grant = Grant(pk=3, kind_id=1, currency=currency, period=period, per_case_limit=Decimal("100"),
                  period_limit=Decimal("1000"))
    # when the counters are foreseen before the grant is known
    foreseen = counters_foreseen(agent_id=asked.agent_id, kind_code=asked.kind_code, case_id=asked.case_id,
                                 currency=currency, at=AT, tz=BERLIN)
    # then every counter the resolution needs is among them: nothing is left to read after
    assert set(counters_needed(asked, [grant])) <= set(foreseen)
    assert len(foreseen) == 5


@pytest.mark.django_db
def test_a_grant_in_another_currency_is_held_to_its_own_counters(alice, case_owned_by_alice,
                                                               django_assert_num_queries):
    # given alice's only refund grant is 100 GBP per case, 90 GBP of it spent on this case, and a rate
    refund = kind("refund")
    GrantFactory(subject_user=alice, currency="GBP", per_case_limit=Decimal("100"), period=Period.NONE,
                 period_limit=None)
    set_usage(usage.case_key(case_id=case_owned_by_alice.pk, kind_code="refund", currency="GBP"), "90",
              kind_obj=refund, scope=UsageCounter.Scope.CASE, case=case_owned_by_alice, currency="GBP")
    exchange_rate("EUR", "GBP", "0.85", date(2026, 1, 1))
    case = loaded_case(case_owned_by_alice)
    policy.evaluate(agent=alice, kind=refund, amount="20", currency="EUR", case=case, with_approvers=False)
    # when she asks to refund 20 EUR (17 GBP): the grants with the EUR counters, the GBP counters, the rate
    with django_assert_num_queries(3):
        verdict = policy.evaluate(agent=alice, kind=refund, amount="20", currency="EUR", case=case,
                                  with_approvers=False)
    # then the 90 GBP already spent counts: 10 GBP are left, not 100
    assert not verdict.allowed
    assert verdict.per_case_headroom == Decimal("10")


@pytest.mark.django_db
@pytest.mark.parametrize("asked_by", ["evaluate", "check"])
def test_an_approval_already_used_covers_nothing_more(alice, case_owned_by_alice, asked_by):
    # given alice's approval of 50 EUR on her case (a one-off grant), already used, and nothing else
    refund = kind("refund")
    approval = GrantFactory(subject_user=alice, case=case_owned_by_alice, per_case_limit=Decimal("50"),
                            period=Period.NONE, period_limit=None, currency="EUR", bound_owner=alice)
    set_usage(usage.one_off_key(grant_id=approval.pk), "50", kind_obj=refund, scope=UsageCounter.Scope.ONE_OFF,
              grant=approval, currency="EUR")
    # when she asks for exactly the 50 EUR again (a decision's evaluation, or the API's check)
    if asked_by == "evaluate":
        verdict = policy.evaluate(agent=alice, kind=refund, amount="50", currency="EUR",
                                  case=loaded_case(case_owned_by_alice), with_approvers=False)
    else:
        verdict = policy.evaluate_visible(agent=alice, case_id=case_owned_by_alice.pk, kind=refund, amount="50",
                                          currency="EUR")
    # then she is refused, and told why: the approval's counter is read though no one foresaw it
    assert not verdict.allowed
    assert any("already used" in reason for reason in verdict.reasons), verdict.reasons
