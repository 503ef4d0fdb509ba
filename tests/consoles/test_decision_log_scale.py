"""The decision log at scale (PostgreSQL): seek paging and capped counts stay on the indexes.

By default 200,000 decisions are inserted in one statement; H2H_SCALE_ROWS=1000000 runs it at a
million (about a minute more). The assertions are about plans (an index walked backwards, no sort of
the whole table, a bounded count), which do not depend on the machine; the timings printed are for
the report (docs/consoles.md).
"""

import os
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from authority import reports
from tests.factories import CaseFactory, GrantFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="a million-row plan is a PostgreSQL question"),
]
ROWS = int(os.environ.get("H2H_SCALE_ROWS", "200000"))


@pytest.fixture
def many_decisions(cast):
    cases = [CaseFactory(owner=cast[name], team=cast[team]) for name, team in
             (("alice", "retention"), ("bob", "retention"), ("carol", "billing"), ("erin", "onboarding"))]
    grants = [GrantFactory(subject_user=case.owner) for case in cases]
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM authority_authoritykind WHERE code = 'refund'")
        kind_id = cursor.fetchone()[0]
        values = ", ".join(f"({c.pk}, {c.owner_id}, {g.pk})" for c, g in zip(cases, grants, strict=True))
        cursor.execute(f"""
            INSERT INTO authority_decision (case_id, agent_id, kind_id, amount, currency, counted_amount,
                counted_currency, grant_id, verdict, rationale, payload_fingerprint, executed_at,
                by_ai_agent, ai_model, ai_model_version, reversal_reason)
            SELECT p.case_id, p.agent_id, {kind_id}, (n % 900) + 10, 'EUR', (n % 900) + 10, 'EUR', p.grant_id,
                   '{{}}'::jsonb, 'bulk', '', now() - make_interval(secs => n * 7), false, '', '', ''
            FROM generate_series(1, {ROWS}) AS n
            JOIN (VALUES {values}) AS p(case_id, agent_id, grant_id) ON true
            WHERE (n % 4) = (p.case_id % 4)
        """)
        cursor.execute("ANALYZE authority_decision")
    return cases


def plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, (time.perf_counter() - start) * 1000


def test_the_first_and_a_deep_page_walk_the_index_without_sorting_the_table(many_decisions):
    qs = reports.decisions_matching(reports.DecisionFilters())
    first = plan(qs[:51])
    assert "Index Scan Backward" in first and "Sort" not in first, first
    page, first_ms = timed(lambda: reports.seek_page(qs, field_name="executed_at", after=None, before=None,
                                                     size=50))
    cursor = page.older
    for _ in range(3):
        page = reports.seek_page(qs, field_name="executed_at", after=cursor, before=None, size=50)
        cursor = page.older
    _, deep_ms = timed(lambda: reports.seek_page(qs, field_name="executed_at", after=cursor, before=None, size=50))
    value, pk = reports.paging._decode(cursor)
    deep = plan(qs.filter(executed_at__lt=value)[:51])
    assert "Sort" not in deep, deep
    (count, more), count_ms = timed(lambda: reports.capped_count(qs))
    assert (count, more) == (reports.COUNT_CAP, True)
    print(f"\n{ROWS} decisions: first page {first_ms:.1f} ms, deep page {deep_ms:.1f} ms, "
          f"capped count {count_ms:.1f} ms")


def test_an_agent_filter_uses_the_agent_index(many_decisions, cast):
    qs = reports.decisions_matching(reports.DecisionFilters(agent="alice"))
    text = plan(qs[:51])
    assert "Seq Scan on authority_decision" not in text, text
    _, ms = timed(lambda: list(qs[:51]))
    print(f"\nagent filter first page {ms:.1f} ms")


def test_the_log_page_costs_the_same_queries_at_scale(client, many_decisions, cast):
    client.force_login(cast["audrey"])
    client.get(reverse("audit:decisions"))  # templates compiled, organisation cached
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        page = client.get(reverse("audit:decisions"))
        elapsed = (time.perf_counter() - start) * 1000
    assert page.status_code == 200 and "more than 10000 decisions" in page.text
    assert len(queries.captured_queries) <= 10
    print(f"\nthe decision log page at {ROWS} rows: {elapsed:.0f} ms, {len(queries.captured_queries)} queries")
