"""Per person: limit, used, left, when it resets (with the time zone), warnings at 75, 90 and 100 %."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from authority import periods, reports, selectors, usage
from authority.models import Period
from h2h_core.organisation import current_organisation
from tests.factories import GrantFactory, kind, set_usage

from .conftest import member

pytestmark = pytest.mark.django_db


def use(agent, amount, *, code="refund", currency="EUR", period=Period.MONTH):
    start = periods.bucket_start(period, timezone.now(), current_organisation().tz)
    set_usage(usage.period_key(agent_id=agent.pk, kind_code=code, currency=currency, period=period, start=start),
              amount, kind_obj=kind(code), agent=agent, period=period, bucket_start=start, currency=currency)


def test_people_page_shows_used_left_reset_and_warnings(client, cast):
    # given alice used 1,200 of 1,500 (80 %), bob 950 of 1,000 (95 %), carol all 1,000 of hers
    use(cast["alice"], "1200")
    use(cast["bob"], "950")
    use(cast["carol"], "1000")
    client.force_login(cast["maria"])
    page = client.get(reverse("authority:people")).text
    assert "Resets (Europe/Berlin)" in page
    assert "1,200.00 EUR (80 %)" in page and "300.00 EUR <span class=\"badge note\">over 75 %</span>" in page
    assert "950.00 EUR (95 %)" in page and "<span class=\"badge warn\">over 90 %</span>" in page
    assert "1,000.00 EUR (100 %)" in page and "<span class=\"badge danger\">limit reached</span>" in page
    resets = periods.resets_at(Period.MONTH, timezone.now(), current_organisation().tz)
    assert timezone.localtime(resets, current_organisation().tz).strftime("%-d %b %Y %H:%M") in page
    assert "erin" not in page


def test_people_figures_match_what_each_person_sees_on_my_authority(cast):
    use(cast["alice"], "700")
    GrantFactory(subject_user=cast["bob"], kind=kind("fee_waiver"), per_case_limit=Decimal("80"),
                 period_limit=Decimal("300"), scope_categories=["billing_error"])
    now = timezone.now()
    people = [cast[name] for name in ("alice", "bob", "carol", "dave", "maria", "mike")]
    for person in reports.people_authority(people, at=now):
        mine = selectors.authority_summary(agent=person.user, at=now)
        assert [(e.kind.code, e.deciding.pk if e.deciding else None, e.used, e.left, e.percent,
                 [g.pk for g in e.suspensions]) for e in person.kinds] == \
               [(r["kind"].code, r["deciding"].pk if r["deciding"] else None, r["used"], r["left"],
                 r["percent_used"], [g.pk for g in r["suspensions"]]) for r in mine], person.user


def test_the_people_page_costs_the_same_queries_for_four_or_fourteen_people(client, cast,
                                                                           django_assert_max_num_queries):
    client.force_login(cast["maria"])
    client.get(reverse("authority:people"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("authority:people"))
    for index in range(10):
        person = member(cast["billing"], f"agent{index}")
        GrantFactory(subject_user=person)
        use(person, str(100 + index))
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(reverse("authority:people"))
    assert "agent9" in page.text
