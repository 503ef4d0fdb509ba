"""The rules of authority (DESIGN.md 1, 2, 3 and 5), table by table, through policy.evaluate."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from guardian.shortcuts import assign_perm

from authority import policy, usage
from authority.models import Effect, GrantStatus, Period, UsageCounter
from h2h_core.models import CaseCategory, CustomerTier, Role
from tests.factories import (
    CaseFactory,
    GrantFactory,
    TeamFactory,
    UserFactory,
    exchange_rate,
    kind,
    loaded_case,
    role,
    set_usage,
    team_manager,
)

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
# A Thursday in May 2026, far from any bucket boundary: day 14 May, week from 11 May,
# month from 1 May, quarter from 1 April.
AT = datetime(2026, 5, 14, 10, 0, tzinfo=BERLIN)
ONE_MICROSECOND = timedelta(microseconds=1)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The factories give every user a password; the default hasher costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def case(case_owned_by_alice):
    return loaded_case(case_owned_by_alice)


@pytest.fixture
def grant(alice, retention, case):
    """Return grant(level, **fields): a refund permit in EUR, 500 per case, no period cap."""

    def make(level: str, **fields):
        subject = {
            "person": {"subject_user": alice},
            "team": {"subject_team": retention},
            "role": {"subject_role": role(Role.AGENT)},
            "one-off": {"subject_user": alice, "case": case, "period": Period.NONE, "period_limit": None},
        }[level]
        terms = {"per_case_limit": Decimal("500"), "period": Period.NONE, "period_limit": None}
        return GrantFactory(**{**terms, **subject, **fields})

    return make


def may_approve_5000(*approvers):
    """Give each approver refund authority of 5,000 per case: enough to approve what these tests ask."""
    for approver in approvers:
        GrantFactory(subject_user=approver, per_case_limit=Decimal("5000"), period=Period.NONE, period_limit=None)


def ask(agent, case, amount, currency="EUR", *, kind_code="refund", at=AT):
    return policy.evaluate(agent=agent, kind=kind(kind_code), amount=amount, currency=currency, case=case, at=at)


def case_usage(case, used, currency="EUR"):
    key = usage.case_key(case_id=case.pk, kind_code="refund", currency=currency)
    return set_usage(key, used, kind_obj=kind("refund"), scope="case", case=case, currency=currency)


def period_usage(agent, used, *, period=Period.MONTH, start=date(2026, 5, 1), currency="EUR"):
    key = usage.period_key(agent_id=agent.pk, kind_code="refund", currency=currency, period=period, start=start)
    return set_usage(key, used, kind_obj=kind("refund"), agent=agent, period=period, bucket_start=start,
                     currency=currency)


# --- Rule 2: person over team over role --------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "amount", "allowed", "deciding_level"),
    [
        pytest.param({"person": 1000, "team": 300}, "500", True, "person", id="person-over-higher-team"),
        pytest.param({"person": 100, "team": 1000}, "500", False, "person", id="person-over-team-even-when-lower"),
        pytest.param({"person": 1000, "role": 300}, "500", True, "person", id="person-over-higher-role"),
        pytest.param({"person": 100, "role": 1000}, "500", False, "person", id="person-over-role-even-when-lower"),
        pytest.param({"team": 1000, "role": 300}, "500", True, "team", id="team-over-higher-role"),
        pytest.param({"team": 100, "role": 1000}, "500", False, "team", id="team-over-role-even-when-lower"),
        pytest.param({"person": 1000, "team": 100, "role": 100}, "500", True, "person", id="all-three-person-highest"),
        pytest.param({"person": 100, "team": 1000, "role": 1000}, "500", False, "person", id="all-three-person-lowest"),
        pytest.param({"person": 100, "team": 50, "role": 1000}, "80", True, "person", id="all-three-person-middle"),
        pytest.param({"team": 100, "role": 1000}, "80", True, "team", id="team-within-its-lower-limit"),
        pytest.param({"team": 300}, "500", False, "team", id="team-only"),
        pytest.param({"role": 1000}, "500", True, "role", id="role-only"),
    ],
)
def test_the_most_specific_level_with_a_permit_decides(alice, case, grant, limits, amount, allowed, deciding_level):
    # given permits at several levels with different per-case limits
    grants = {level: grant(level, per_case_limit=Decimal(limit)) for level, limit in limits.items()}
    # when alice asks
    verdict = ask(alice, case, amount)
    # then the most specific level decides, whether its limit is higher or lower than the others
    assert verdict.allowed is allowed, verdict.reasons
    assert verdict.level == deciding_level
    assert verdict.deciding_grant_id == grants[deciding_level].pk
    assert verdict.per_case_limit == Decimal(limits[deciding_level])


@pytest.mark.parametrize(
    ("terms", "chosen"),
    [
        pytest.param(
            [
                {"currency": "USD", "per_case_limit": Decimal("5000")},
                {"currency": "EUR", "per_case_limit": Decimal("300")},
            ],
            1,
            id="decision-currency-before-a-higher-foreign-limit",
        ),
        pytest.param([{"per_case_limit": Decimal("300")}, {"per_case_limit": Decimal("800")}], 1, id="higher-per-case"),
        pytest.param([{"per_case_limit": Decimal("800")}, {"per_case_limit": None}], 1, id="no-per-case-limit-wins"),
        pytest.param(
            [
                {"period": Period.MONTH, "period_limit": Decimal("3000")},
                {"period": Period.MONTH, "period_limit": Decimal("1000")},
            ],
            0,
            id="equal-per-case-then-higher-period-limit",
        ),
        pytest.param(
            [{"period": Period.MONTH, "period_limit": Decimal("3000")}, {"period": Period.NONE}],
            1,
            id="equal-per-case-then-no-period-cap-beats-any",
        ),
        pytest.param([{}, {}], 0, id="all-equal-then-the-oldest"),
    ],
)
def test_within_a_level_currency_then_limits_then_age_choose_the_grant(alice, case, grant, terms, chosen):
    # given two person grants that differ in currency, limits or age
    grants = [grant("person", **fields) for fields in terms]
    exchange_rate("EUR", "USD", "1.1", date(2026, 1, 1))
    # when alice asks for a small refund in EUR
    verdict = ask(alice, case, "100")
    # then the preferred grant of the level decides
    assert verdict.allowed, verdict.reasons
    assert verdict.deciding_grant_id == grants[chosen].pk


# --- Rule 2: a suspension at any level forbids --------------------------------------------------


@pytest.mark.parametrize("permit_level", ["person", "team", "role", "one-off"])
@pytest.mark.parametrize("forbid_level", ["person", "team", "role"])
def test_a_suspension_at_any_level_beats_every_permit(alice, maria, case, grant, forbid_level, permit_level):
    # given a generous permit (or a one-off grant on this case) and a suspension
    grant(permit_level, per_case_limit=Decimal("10000"))
    suspension = grant(forbid_level, effect=Effect.FORBID, per_case_limit=None, reason="under review")
    # when alice asks for a small refund
    verdict = ask(alice, case, "10")
    # then the suspension decides, says so, and offers no approvers (an approval cannot lift it)
    assert not verdict.allowed
    assert verdict.suspended
    assert verdict.level == forbid_level
    assert [ref.id for ref in verdict.deciding_grants] == [suspension.pk]
    assert verdict.reasons[0].startswith("Suspended:") and "under review" in verdict.reasons[0]
    assert verdict.approvers == [] and verdict.consumptions == []


def test_a_suspension_outside_its_scope_does_not_forbid(alice, case, grant):
    # given a suspension for renewals only, and a permit
    grant("person")
    grant("team", effect=Effect.FORBID, per_case_limit=None, scope_categories=[CaseCategory.RENEWAL])
    # when alice asks on a complaint case
    verdict = ask(alice, case, "10")
    # then the permit decides
    assert verdict.allowed and not verdict.suspended
    assert verdict.level == "person"


# --- Rule 1: deny by default --------------------------------------------------------------------

LATER = AT + timedelta(days=1)
EARLIER = AT - timedelta(days=1)


NO_GRANT = "No grant gives you authority to decide refund on this case."


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        pytest.param(lambda grant, others: None, NO_GRANT, id="no-grant"),
        pytest.param(lambda grant, others: grant("person", kind=kind("goodwill_credit")), NO_GRANT,
                     id="grant-of-another-kind"),
        pytest.param(lambda grant, others: grant("person", valid_until=EARLIER),
                     "Your refund grant (version 1) expired on 13 May 2026: no grant gives you refund authority now.",
                     id="expired-grant"),
        pytest.param(lambda grant, others: grant("team", valid_from=LATER), NO_GRANT, id="not-yet-valid-grant"),
        pytest.param(lambda grant, others: grant("person", status=GrantStatus.PENDING), NO_GRANT, id="pending-grant"),
        pytest.param(lambda grant, others: grant("role", status=GrantStatus.REJECTED), NO_GRANT, id="rejected-grant"),
        pytest.param(lambda grant, others: grant("person", superseded_at=EARLIER),
                     "Your refund grant (version 1) was ended on 13 May 2026: no grant gives you refund authority now.",
                     id="superseded-grant"),
        pytest.param(lambda grant, others: grant("person", confirmed_at=LATER), NO_GRANT,
                     id="grant-confirmed-only-later"),
        pytest.param(lambda grant, others: grant("person", subject_user=others["bob"]), NO_GRANT,
                     id="another-persons-grant"),
        pytest.param(lambda grant, others: grant("team", subject_team=others["sales"]), NO_GRANT,
                     id="grant-of-another-team"),
        pytest.param(lambda grant, others: grant("role", subject_role=others["senior"]), NO_GRANT,
                     id="grant-of-a-role-not-held"),
        pytest.param(lambda grant, others: grant("one-off", case=others["other_case"]), NO_GRANT,
                     id="one-off-on-another-case"),
    ],
)
def test_without_an_applicable_active_permit_nothing_is_allowed(alice, maria, retention, case, grant, build, reason):
    # given no grant that speaks for alice on this case now
    others = {
        "bob": UserFactory(username="bob", roles=[Role.AGENT]),
        "sales": TeamFactory(name="Sales", slug="sales"),
        "senior": role(Role.SENIOR_AGENT),
        "other_case": CaseFactory(owner=alice, team=retention),
    }
    build(grant, others)
    may_approve_5000(maria)
    # when alice asks for a small refund
    verdict = ask(alice, case, "10")
    # then it is refused by default, with the reason (a lapsed grant is named) and the way forward,
    # and nothing was consumed
    assert not verdict.allowed and not verdict.suspended
    assert verdict.deciding_grants == [] and verdict.consumptions == []
    assert verdict.reasons == [reason]
    assert verdict.approvers == ["maria"]
    assert UsageCounter.objects.count() == 0


# --- Scope: case category and customer tier (empty means all) -----------------------------------


@pytest.mark.parametrize(
    ("categories", "tiers", "category", "tier", "allowed"),
    [
        pytest.param([], [], CaseCategory.CRISIS, CustomerTier.STANDARD, True, id="empty-scopes-cover-all"),
        pytest.param(["complaint", "billing_error"], [], "billing_error", "standard", True, id="category-listed"),
        pytest.param(["renewal"], [], "complaint", "standard", False, id="category-not-listed"),
        pytest.param([], ["gold", "platinum"], "complaint", "gold", True, id="tier-listed"),
        pytest.param([], ["gold"], "complaint", "standard", False, id="tier-not-listed"),
        pytest.param(["renewal"], ["gold"], "renewal", "gold", True, id="both-listed"),
        pytest.param(["renewal"], ["gold"], "renewal", "silver", False, id="category-listed-tier-not"),
        pytest.param(["renewal"], ["gold"], "crisis", "gold", False, id="tier-listed-category-not"),
    ],
)
def test_a_grant_applies_only_to_cases_in_its_scope(
    alice, retention, grant, categories, tiers, category, tier, allowed
):
    # given a grant scoped by category and tier, and a case of some category for a customer of some tier
    grant("person", scope_categories=categories, scope_tiers=tiers)
    scoped_case = loaded_case(CaseFactory(owner=alice, team=retention, category=category, customer__tier=tier))
    # when alice asks on that case
    verdict = ask(alice, scoped_case, "10")
    # then the grant speaks only inside its scope
    assert verdict.allowed is allowed, verdict.reasons


def test_a_person_grant_out_of_scope_leaves_the_decision_to_the_team_grant(alice, case, grant):
    # given a generous person grant for gold customers only and a smaller team grant for everyone
    grant("person", per_case_limit=Decimal("5000"), scope_tiers=[CustomerTier.GOLD])
    team_grant = grant("team", per_case_limit=Decimal("100"))
    # when alice asks 200 for a standard customer
    verdict = ask(alice, case, "200")
    # then the team grant decides, and refuses
    assert not verdict.allowed
    assert verdict.deciding_grant_id == team_grant.pk


# --- Validity at the exact boundaries -----------------------------------------------------------

T = datetime(2026, 5, 14, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fields", "at", "allowed"),
    [
        pytest.param({"valid_from": T}, T - ONE_MICROSECOND, False, id="just-before-valid-from"),
        pytest.param({"valid_from": T}, T, True, id="valid-from-is-inclusive"),
        pytest.param({"valid_until": T}, T - ONE_MICROSECOND, True, id="just-before-valid-until"),
        pytest.param({"valid_until": T}, T, False, id="valid-until-is-exclusive"),
        pytest.param({"superseded_at": T}, T - ONE_MICROSECOND, True, id="just-before-superseded-at"),
        pytest.param({"superseded_at": T}, T, False, id="superseded-at-is-exclusive"),
        pytest.param({"confirmed_at": T}, T - ONE_MICROSECOND, False, id="just-before-confirmation"),
        pytest.param({"confirmed_at": T}, T, True, id="confirmed-at-is-inclusive"),
    ],
)
def test_validity_boundaries(alice, case, grant, fields, at, allowed):
    # given a grant whose validity starts or ends at T
    grant("person", **fields)
    # when alice asks at an instant next to T
    verdict = ask(alice, case, "10", at=at)
    # then the boundary is inclusive at the start and exclusive at the end
    assert verdict.allowed is allowed, verdict.reasons


# --- Rule 3: per-case headroom ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("used_here", "used_elsewhere", "amount", "allowed", "left"),
    [
        pytest.param(None, None, "500", True, "500", id="whole-limit-on-a-fresh-case"),
        pytest.param("350", None, "150", True, "150", id="exactly-what-is-left"),
        pytest.param("350", None, "150.01", False, "150", id="one-cent-over-what-is-left"),
        pytest.param("500", None, "0.01", False, "0", id="case-exhausted"),
        pytest.param("800", None, "1", False, "0", id="case-over-spent-by-an-earlier-larger-grant"),
        pytest.param(None, "500", "500", True, "500", id="usage-on-another-case-does-not-count"),
    ],
)
def test_per_case_headroom_counts_everything_decided_on_the_case(
    alice, retention, case, grant, used_here, used_elsewhere, amount, allowed, left
):
    # given 500 per case, and what was already decided on this case (by whoever) and on another
    grant("person")
    if used_here:
        case_usage(case, used_here)
    if used_elsewhere:
        case_usage(CaseFactory(owner=alice, team=retention), used_elsewhere)
    # when alice asks
    verdict = ask(alice, case, amount)
    # then the case counter alone sets the headroom
    assert verdict.allowed is allowed, verdict.reasons
    assert verdict.per_case_headroom == Decimal(left)
    if not allowed:
        over = Decimal(amount) - Decimal(left)
        assert (f"{over:.2f} EUR over your per-case limit of 500.00 EUR: {Decimal(left):.2f} EUR left on case "
                f"{case.reference}, this needs {Decimal(amount):.2f} EUR") in verdict.reasons[0]


# --- Rule 3: period headroom --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "start", "when"),
    [
        pytest.param(Period.DAY, date(2026, 5, 14), "today", id="day"),
        pytest.param(Period.WEEK, date(2026, 5, 11), "this week", id="week"),
        pytest.param(Period.MONTH, date(2026, 5, 1), "this month", id="month"),
        pytest.param(Period.QUARTER, date(2026, 4, 1), "this quarter", id="quarter"),
    ],
)
@pytest.mark.parametrize(
    ("amount", "allowed"),
    [pytest.param("100", True, id="exactly-what-is-left"), pytest.param("100.01", False, id="one-cent-over")],
)
def test_period_headroom_uses_the_agents_counter_of_the_current_bucket(
    alice, case, grant, period, start, when, amount, allowed
):
    # given 1,000 per period, of which alice used 900 in the current bucket
    grant("person", per_case_limit=None, period=period, period_limit=Decimal("1000"))
    period_usage(alice, "900", period=period, start=start)
    # when she asks
    verdict = ask(alice, case, amount)
    # then 100 is left in the period
    assert verdict.allowed is allowed, verdict.reasons
    assert verdict.period_used == Decimal("900") and verdict.period_headroom == Decimal("100")
    assert f"100.00 EUR left {when}" in " ".join(verdict.reasons)


@pytest.mark.parametrize(
    "whose",
    [
        pytest.param("another-agent", id="another-agents-usage-does-not-count"),
        pytest.param("previous-month", id="last-months-usage-does-not-count"),
        pytest.param("other-currency", id="usage-of-a-grant-in-another-currency-does-not-count"),
    ],
)
def test_only_the_agents_own_current_bucket_counts(alice, case, grant, whose):
    # given 1,000 a month and a full counter that is not alice's current one
    grant("person", per_case_limit=None, period=Period.MONTH, period_limit=Decimal("1000"))
    if whose == "another-agent":
        period_usage(UserFactory(username="bob"), "1000")
    elif whose == "previous-month":
        period_usage(alice, "1000", start=date(2026, 4, 1))
    else:
        period_usage(alice, "1000", currency="USD")
    # when alice asks for the whole cap
    verdict = ask(alice, case, "1000")
    # then all of it is left
    assert verdict.allowed, verdict.reasons
    assert verdict.period_used == Decimal("0")


def test_refusal_and_permission_say_how_much_is_left_and_when_it_resets(alice, maria, case, grant):
    # given alice may refund 500 per case and 1,000 per month, and has used 900 this month
    grant("person", period=Period.MONTH, period_limit=Decimal("1000"))
    period_usage(alice, "900")
    may_approve_5000(maria)
    # when she asks for 200, then for 50
    refused = ask(alice, case, "200")
    allowed = ask(alice, case, "50")
    # then the refusal says what is left and when it resets; the permission says what is left
    assert not refused.allowed
    assert "100.00 EUR over your monthly cap of 1,000.00 EUR: 100.00 EUR left this month" in refused.reasons[0]
    assert "resets 01 Jun 2026 00:00 Europe/Berlin" in refused.reasons[0]
    assert refused.approvers == ["maria"]
    assert allowed.allowed
    assert "500.00 EUR left on this case, 100.00 EUR left this month" in allowed.reasons[0]


# --- One-off grants: headroom on their own case only --------------------------------------------


@pytest.mark.parametrize(
    ("on_own_case", "one_off_used", "amount", "allowed", "level"),
    [
        pytest.param(True, None, "1200", True, "one-off", id="covers-an-over-limit-amount-on-its-case"),
        pytest.param(False, None, "1200", False, "person", id="does-not-cover-another-case"),
        pytest.param(True, None, "1200.01", False, "person", id="does-not-cover-more-than-approved"),
        # An approval covers exactly what was approved, once (issue 12: action-bound approvals).
        pytest.param(True, None, "1199.99", False, "person", id="does-not-cover-less-than-approved"),
        pytest.param(True, "1200", "1200", False, "person", id="does-not-cover-twice"),
    ],
)
def test_a_one_off_grant_adds_headroom_on_its_own_case_only(
    alice, maria, retention, case, grant, on_own_case, one_off_used, amount, allowed, level
):
    # given alice may refund 500 per case, and an approved one-off grant of 1,200 on this case
    grant("person")
    may_approve_5000(maria)
    one_off = grant("one-off", per_case_limit=Decimal("1200"))
    if one_off_used:
        # what was decided under the one-off also raised the case counter
        set_usage(usage.one_off_key(grant_id=one_off.pk), one_off_used, kind_obj=kind("refund"), scope="one_off",
                  grant=one_off)
        case_usage(case, one_off_used)
    target = case if on_own_case else loaded_case(CaseFactory(owner=alice, team=retention))
    # when alice asks on the case
    verdict = ask(alice, target, amount)
    # then the one-off speaks only on its case and only for exactly what it approved, once
    assert verdict.allowed is allowed, verdict.reasons
    assert verdict.level == level
    assert verdict.via_one_off == (one_off.pk if level == "one-off" else None)
    assert verdict.approvers == ([] if allowed else ["maria"])


# --- Rule 5: currency conversion with a dated rate ----------------------------------------------


@pytest.mark.parametrize(
    ("at", "rate", "rate_date", "counted"),
    [
        pytest.param(
            datetime(2026, 3, 9, 22, 59, tzinfo=UTC), "1.1", date(2026, 3, 9), "110.00", id="local-day-before-midnight"
        ),
        pytest.param(
            datetime(2026, 3, 9, 23, 0, tzinfo=UTC), "1.2", date(2026, 3, 10), "120.00", id="local-midnight-new-rate"
        ),
        pytest.param(
            datetime(2026, 3, 30, 12, 0, tzinfo=UTC), "1.3", date(2026, 3, 11), "130.00", id="latest-rate-before-date"
        ),
    ],
)
def test_the_rate_of_the_local_date_or_the_latest_before_it_converts(alice, case, grant, at, rate, rate_date, counted):
    # given a USD grant and EUR->USD rates on three days (none after the 11th)
    grant("person", currency="USD", per_case_limit=Decimal("1000"))
    for day, value in [(9, "1.1"), (10, "1.2"), (11, "1.3")]:
        exchange_rate("EUR", "USD", value, date(2026, 3, day))
    # when alice asks 100 EUR at an instant in Europe/Berlin
    verdict = ask(alice, case, "100", at=at)
    # then the latest rate on or before the local date converts it, and the rate is recorded
    assert verdict.allowed, verdict.reasons
    assert verdict.rate == Decimal(rate) and verdict.rate_date == rate_date
    assert verdict.counted_amount == Decimal(counted) and verdict.counted_currency == "USD"


def test_the_direct_rate_is_preferred_to_the_inverse_of_the_same_day(alice, case, grant):
    # given both directions stored for the same day
    grant("person", currency="USD", per_case_limit=Decimal("1000"))
    exchange_rate("EUR", "USD", "1.25", date(2026, 5, 1))
    exchange_rate("USD", "EUR", "0.5", date(2026, 5, 1))
    # when alice asks 100 EUR
    verdict = ask(alice, case, "100")
    # then the direct rate is used
    assert verdict.rate == Decimal("1.25") and verdict.counted_amount == Decimal("125.00")


def test_the_inverse_pair_converts_when_only_it_exists_rounded_up_to_whole_yen(alice, case, grant):
    # given a JPY grant and only a JPY->EUR rate (1 JPY = 0.0062 EUR, so 1 EUR = 161.29032258... JPY)
    grant("person", currency="JPY", per_case_limit=Decimal("1613"))
    exchange_rate("JPY", "EUR", "0.0062", date(2026, 5, 1))
    # when alice asks 10 EUR (1,612.90... JPY)
    verdict = ask(alice, case, "10")
    # then it counts as 1,613 JPY, which fits exactly
    assert verdict.allowed, verdict.reasons
    assert verdict.counted_amount == Decimal("1613") and verdict.counted_currency == "JPY"
    assert verdict.rate == Decimal("161.2903225806")


@pytest.mark.parametrize(
    ("currency", "rate", "limit", "amount", "counted", "allowed"),
    [
        pytest.param("JPY", "160.555", "1608", "10.01", "1608", True, id="jpy-1607.16-rounds-up-to-1608-fits"),
        pytest.param("JPY", "160.555", "1608", "10.02", "1609", False, id="jpy-1608.76-rounds-up-to-1609-over"),
        pytest.param("KWD", "0.3333", "0.334", "1.00", "0.334", True, id="kwd-0.3333-rounds-up-to-0.334-fits"),
        pytest.param("KWD", "0.3333", "0.333", "1.00", "0.334", False, id="kwd-0.3333-rounds-up-to-0.334-over"),
        pytest.param("USD", "1.08371", "10.84", "10.00", "10.84", True, id="usd-10.8371-rounds-up-to-10.84"),
    ],
)
def test_conversion_rounds_up_to_the_minor_unit_of_the_grant_currency(
    alice, case, grant, currency, rate, limit, amount, counted, allowed
):
    # given a grant in another currency and a EUR rate to it
    grant("person", currency=currency, per_case_limit=Decimal(limit))
    exchange_rate("EUR", currency, rate, date(2026, 5, 1))
    # when alice asks in EUR
    verdict = ask(alice, case, amount)
    # then the amount is converted and rounded up, never down
    assert verdict.counted_amount == Decimal(counted)
    assert verdict.allowed is allowed, verdict.reasons


def test_the_conversion_is_explained(alice, case, grant):
    # given a JPY grant and a EUR->JPY rate
    grant("person", currency="JPY", per_case_limit=Decimal("100000"))
    exchange_rate("EUR", "JPY", "160.555", date(2026, 5, 1))
    # when alice asks 10.01 EUR
    verdict = ask(alice, case, "10.01")
    # then the reasons show both amounts, the rate and its date
    assert "Converted 10.01 EUR to 1,608 JPY at 160.555" in verdict.reasons[-1]
    assert "01 May 2026 rate, rounded up" in verdict.reasons[-1]


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param([], id="no-rate-at-all"),
        pytest.param([("EUR", "USD", date(2026, 5, 15))], id="only-a-later-rate"),
        pytest.param([("EUR", "GBP", date(2026, 5, 1))], id="only-a-rate-to-another-currency"),
    ],
)
def test_without_a_rate_the_decision_is_refused_with_a_reason(alice, maria, case, grant, stored):
    # given a USD grant and no usable EUR<->USD rate on or before 14 May 2026
    usd_grant = grant("person", currency="USD", per_case_limit=Decimal("1000"))
    may_approve_5000(maria)
    for base, quote, day in stored:
        exchange_rate(base, quote, "1.1", day)
    # when alice asks in EUR
    verdict = ask(alice, case, "10")
    # then it is refused, naming the missing rate and the grant
    assert not verdict.allowed and verdict.consumptions == []
    assert verdict.reasons == ["No exchange rate from EUR to USD on or before 14 May 2026."]
    assert verdict.deciding_grant_id == usd_grant.pk
    assert verdict.approvers == ["maria"]


# --- Approvers listed on refusal ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "suspended", "approvers"),
    [
        pytest.param("600", False, ["maria", "zoe"], id="over-limit-lists-the-teams-managers"),
        pytest.param("100", False, [], id="allowed-lists-nobody"),
        pytest.param("100", True, [], id="suspended-lists-nobody"),
    ],
)
def test_a_refusal_lists_the_managers_of_the_agents_team(alice, maria, retention, case, grant, amount, suspended,
                                                        approvers):
    # given alice (who also manages her own team) may refund 500, and managers in and outside her team,
    # all but max with the authority to approve 600
    grant("person")
    if suspended:
        grant("role", effect=Effect.FORBID, per_case_limit=None)
    zoe = team_manager(retention, "zoe")
    ina = team_manager(retention, "ina", is_active=False)
    bob = team_manager(TeamFactory(name="Sales", slug="sales"), "bob")
    max_ = team_manager(retention, "max")
    may_approve_5000(maria, zoe, ina, bob)
    grant("person", subject_user=max_, per_case_limit=Decimal("500"))
    assign_perm("h2h_core.manage_team", alice, retention)
    # when she asks
    verdict = ask(alice, case, amount)
    # then only the active managers of her team, other than herself, whose authority covers it are named
    assert verdict.approvers == approvers
