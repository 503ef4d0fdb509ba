"""The case page shows the case's neighbours (the customer's other cases, their decisions) only
through the visibility selectors, shows the intake description, and asks the case predicates what
to offer."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from authority.services import decision_execute
from h2h_core.models import CaseStatus, Role
from tests.factories import (
    CaseFactory,
    CustomerFactory,
    GrantFactory,
    kind,
    role,
    team_manager,
)

CASE_PAGE_QUERIES = 33  # as in test_workspace_pages


@pytest.fixture
def lena(db):
    return CustomerFactory(name="Lena Fischer GmbH")


@pytest.fixture
def retention_history(alice, retention, lena):
    """A Retention case of the customer, rated, with a goodwill credit of 321 by alice this month."""
    GrantFactory(subject_user=alice, kind=kind("goodwill_credit"), per_case_limit=Decimal("500"),
                 period_limit=Decimal("5000"))
    case = CaseFactory(customer=lena, team=retention, owner=alice, subject="Retention offer: three months free",
                       status=CaseStatus.OWNED)
    decision_execute(actor=alice, case=case, kind=kind("goodwill_credit"), amount="321", currency="EUR",
                     rationale="Keep the customer")
    case.rating = 5
    case.save(update_fields=["rating"])
    return case


def billing_case_of(carol, billing, lena, **fields):
    return CaseFactory(customer=lena, team=billing, owner=carol, subject="Invoice sent twice",
                       status=CaseStatus.OWNED, **fields)


@pytest.mark.django_db
def test_a_billing_agent_sees_nothing_of_the_customers_retention_cases_on_her_case_page(
    client, carol, billing, lena, retention_history
):
    # given carol owns a Billing case of a customer who also has a Retention case with a decision
    case = billing_case_of(carol, billing, lena)
    client.force_login(carol)
    # when she opens her case
    page = client.get(reverse("cases:detail", args=[case.pk]))
    # then she sees her case, but neither the Retention case nor its decision
    assert page.status_code == 200 and "Invoice sent twice" in page.text
    assert "Retention offer" not in page.text and retention_history.reference not in page.text
    assert "rated 5/5" not in page.text
    assert "321.00" not in page.text and "alice" not in page.text
    assert "0 earlier cases, 0 decisions this month" in page.text


@pytest.mark.django_db
def test_the_customer_history_shows_what_the_agent_may_see_at_the_same_query_cost(
    client, carol, billing, lena, retention_history, django_assert_max_num_queries
):
    # given carol may grant goodwill credits and owns a Billing case of the customer
    GrantFactory(subject_user=carol, kind=kind("goodwill_credit"), per_case_limit=Decimal("5000"),
                 period_limit=Decimal("100000"))
    case = billing_case_of(carol, billing, lena)
    client.force_login(carol)
    counts = {}
    for n in (2, 8):  # 2, then 10 earlier Billing cases and decisions
        CaseFactory.create_batch(n, customer=lena, team=billing, owner=carol, status=CaseStatus.OWNED)
        for i in range(n):
            decision_execute(actor=carol, case=case, kind=kind("goodwill_credit"), amount="7", currency="EUR",
                             rationale=f"#{i}")
        # when she opens her case
        with django_assert_max_num_queries(CASE_PAGE_QUERIES), CaptureQueriesContext(connection) as shown:
            page = client.get(reverse("cases:detail", args=[case.pk])).text
        counts[n] = len(shown)
    # then she sees her team's history of the customer, never the Retention case, at the same query cost
    assert "10 earlier cases, 10 decisions this month" in page
    assert "Retention offer" not in page and "321.00" not in page
    assert counts[2] == counts[8]


@pytest.mark.django_db
def test_the_retention_agent_still_sees_the_customers_billing_history(client, alice, carol, billing, lena,
                                                                       retention_history):
    # given a Billing case of the same customer
    billing_case_of(carol, billing, lena)
    client.force_login(alice)
    # when alice opens her Retention case, she sees her own decision and no Billing case
    page = client.get(reverse("cases:detail", args=[retention_history.pk])).text
    assert "321.00 EUR" in page and "Invoice sent twice" not in page


@pytest.mark.django_db
def test_the_intake_description_is_on_the_case_page_escaped_with_its_line_breaks(client, carol, billing, lena):
    # given a case whose intake description has two paragraphs and markup typed by someone
    case = billing_case_of(carol, billing, lena,
                           description="Charged twice on <b>3 March</b>.\n\nThe customer called twice.")
    client.force_login(carol)
    # when carol opens it
    page = client.get(reverse("cases:detail", args=[case.pk])).text
    # then the description is near the top, as text, paragraph by paragraph
    facts = page[page.index('class="facts"'):page.index("</dl>")]
    assert "Description" in facts
    assert "<p>Charged twice on &lt;b&gt;3 March&lt;/b&gt;.</p>" in facts
    assert "<p>The customer called twice.</p>" in facts


@pytest.mark.django_db
def test_only_an_agent_of_the_cases_team_is_offered_the_claim(client, carol, billing, lena):
    # given a queued Billing case, carol (an agent in Billing) and a manager of Billing who also works
    # cases as an agent elsewhere, but is not in Billing
    case = CaseFactory(customer=lena, team=billing, owner=None, status=CaseStatus.QUEUED)
    manager = team_manager(billing, "nina")
    manager.groups.add(role(Role.AGENT))
    # when each opens the case
    client.force_login(manager)
    managers_page = client.get(reverse("cases:detail", args=[case.pk]))
    client.force_login(carol)
    carols_page = client.get(reverse("cases:detail", args=[case.pk]))
    # then the claim is offered to carol only: the claim rule says agents of the case's team
    assert managers_page.status_code == 200 and "Claim this case" not in managers_page.text
    assert "Claim this case" in carols_page.text
