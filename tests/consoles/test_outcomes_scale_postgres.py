"""The outcomes page on a month of resolved cases at scale (PostgreSQL): right figures, the same queries.

No timing is asserted (performance goals are met in measurements, never in timed tests); the test
prints the server time it saw, and docs/performance.md records the measurement made with
`H2H_SCALE_CASES=10000 pytest -s tests/consoles/test_outcomes_scale_postgres.py` on PostgreSQL.

The month is inserted in bulk (H2H_SCALE_CASES changes its size; 2,000 by default): resolved cases of two teams
over 30 days, about 25,000 decisions (a tenth through approved requests, some contract extensions),
hand-offs, reopenings and notes, 3,000 customers who come back. The timing printed is the server
time of the whole page as the Django test client sees it (docs/performance.md).
"""

import os
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money

from authority.models import AuthorityRequest, Decision, RequestStatus
from h2h_core.models import Case, CaseCategory, CaseEvent, CaseStatus, Customer, HandOff, HandOffReason
from tests.factories import EPOCH, GrantFactory, ai_agent, kind

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the scale run is made on PostgreSQL"),
]
CASES = int(os.environ.get("H2H_SCALE_CASES", "2000"))


@pytest.fixture
def month(cast):
    now = timezone.now()
    bot = ai_agent(cast["retention"], "ava-bot").user
    owners = {cast["retention"].pk: [cast["alice"], cast["bob"], bot],
              cast["billing"].pk: [cast["carol"], cast["dave"]]}
    refund, extension = kind("refund"), kind("contract_extension")
    grants = {(user.pk, k.pk): GrantFactory(subject_user=user, kind=k) for users in owners.values() for user in users
              for k in (refund, extension)}
    customers = Customer.objects.bulk_create(
        Customer(name=f"Customer {n}", annual_value=Decimal("1000"), customer_since=EPOCH.date())
        for n in range(3000))
    cases = []
    for n in range(CASES):
        team_id = cast["retention"].pk if n % 3 else cast["billing"].pk
        owner = owners[team_id][n % len(owners[team_id])]
        resolved_at = now - timedelta(days=n % 30, minutes=n % 1440)
        cases.append(Case(customer=customers[n % len(customers)], subject=f"Problem {n}",
                          category=CaseCategory.values[n % 7], team_id=team_id, owner=owner,
                          amount_at_stake=Money(Decimal("250"), "EUR"),
                          status=CaseStatus.RESOLVED, opened_at=resolved_at - timedelta(hours=1 + n % 50),
                          resolved_at=resolved_at, rating=(n % 5 + 1) if n % 5 < 3 else None))
    cases = Case.objects.bulk_create(cases, batch_size=2000)
    requests, decisions, hand_offs, events = [], [], [], []
    for n, case in enumerate(cases):
        if n % 10 == 1:
            requests.append(AuthorityRequest(case=case, requester=case.owner, kind=refund, amount=Decimal("900"),
                                             currency="EUR", justification="over", verdict={},
                                             status=RequestStatus.APPROVED, created_at=case.opened_at,
                                             expires_at=case.resolved_at))
        if n % 12 == 5:
            hand_offs.append(HandOff(case=case, from_agent=bot, to_user=cast["alice"], reason=HandOffReason.ASKED,
                                     reason_text="asked", created_at=case.opened_at))
        if n % 20 == 7:
            events.append(CaseEvent(case=case, kind=CaseEvent.Kind.REOPENED, at=case.resolved_at))
        events += [CaseEvent(case=case, kind=CaseEvent.Kind.NOTE, at=case.opened_at) for _ in range(2)]
    requests = {r.case_id: r for r in AuthorityRequest.objects.bulk_create(requests, batch_size=2000)}
    for n, case in enumerate(cases):
        if n % 10 in (0, 9, 8):
            continue
        for d in range(1 + n % 6):
            k = extension if (n + d) % 9 == 0 else refund
            decisions.append(Decision(case=case, agent=case.owner, kind=k, amount=Decimal("50"), currency="EUR",
                                      counted_amount=Decimal("50"), counted_currency="EUR",
                                      grant=grants[(case.owner_id, k.pk)],
                                      request=requests.get(case.pk) if d == 0 else None, verdict={},
                                      rationale="bulk", executed_at=case.resolved_at - timedelta(minutes=10),
                                      by_ai_agent=case.owner_id == bot.pk))
    Decision.objects.bulk_create(decisions, batch_size=5000)
    HandOff.objects.bulk_create(hand_offs, batch_size=2000)
    CaseEvent.objects.bulk_create(events, batch_size=5000)
    with connection.cursor() as cursor:
        for table in ("h2h_core_case", "h2h_core_caseevent", "h2h_core_handoff", "authority_decision",
                      "authority_authorityrequest", "h2h_core_customer"):
            cursor.execute(f"ANALYZE {table}")
    return {"cases": len(cases), "decisions": len(decisions)}


@pytest.mark.parametrize(("who", "url"), [("maria", "authority:outcomes"), ("audrey", "audit:outcomes")])
def test_the_outcomes_page_counts_a_whole_month_at_scale(client, cast, month, who, url):
    client.force_login(cast[who])
    client.get(reverse(url))  # templates compiled, organisation cached
    timings = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(reverse(url))
            timings.append((time.perf_counter() - start) * 1000)
    assert response.status_code == 200
    report = response.context["report"]
    assert report.total.figures.cases == month["cases"]
    best, worst = min(timings), max(timings)
    sql_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000
    print(f"\noutcomes page ({who}) on {month['cases']} cases / {month['decisions']} decisions: "
          f"{best:.0f} ms best, {worst:.0f} ms worst of 3; {len(queries.captured_queries)} queries, "
          f"{sql_ms:.0f} ms in SQL (last run)")
