"""Assist on the case page: similar resolved cases the agent may see, the customer's tone, and a
next-best action that the policy engine checks against the agent's authority and never executes."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from authority.assist import customer_sentiment, similar_resolved_cases
from authority.models import Decision
from authority.services import decision_execute
from edges.agent.assist import assist_context
from h2h_core.models import Case, CaseStatus
from tests.factories import CaseFactory, CustomerFactory, GrantFactory, kind

# The user's roles (visibility), the similar cases, their decisions (3), and the policy engine's
# evaluation of the suggestion (2) with its approver pool (5).
ASSIST_QUERIES = 10
User = get_user_model()
DOUBLE_CHARGE = "Charged twice for the monthly subscription"


def resolved_case(team, owner, *, subject, description="", credit=None, rating=None, category="complaint"):
    """Return a resolved case of `team`, with a goodwill credit of `credit` decided on it by `owner`."""
    case = CaseFactory(customer=CustomerFactory(), team=team, owner=owner, subject=subject,
                       description=description, category=category, status=CaseStatus.OWNED)
    if credit is not None:
        decision_execute(actor=owner, case=case, kind=kind("goodwill_credit"), amount=credit, currency="EUR",
                         rationale="As agreed with the customer")
    Case.objects.filter(pk=case.pk).update(status=CaseStatus.RESOLVED, rating=rating)
    return Case.objects.get(pk=case.pk)


@pytest.fixture
def bob_credits(bob):
    """Bob, alice's team mate, may grant goodwill credits: the history alice learns from is his."""
    GrantFactory(subject_user=bob, kind=kind("goodwill_credit"), per_case_limit=Decimal("1000"),
                 period_limit=Decimal("100000"))
    return bob


@pytest.fixture
def alices_case(alice, retention):
    return CaseFactory(customer=CustomerFactory(name="Lena Fischer GmbH"), team=retention, owner=alice,
                       subject=DOUBLE_CHARGE, description="The subscription was charged twice this month.",
                       status=CaseStatus.OWNED)


def _page(client, user, case, query=""):
    client.force_login(user)
    return client.get(reverse("cases:detail", args=[case.pk]) + query)


@pytest.mark.django_db
def test_the_obviously_similar_resolved_case_ranks_first(alice, retention, bob_credits, alices_case):
    # given three resolved cases of alice's team, one about the same double charge
    resolved_case(retention, bob_credits, subject="Contract renewal date is wrong",
                  description="Renewal should start in May.")
    same = resolved_case(retention, bob_credits, subject="Subscription charged twice",
                         description="Customer was charged twice for the monthly subscription.", credit="50")
    resolved_case(retention, bob_credits, subject="Password reset mail never arrives")
    akin = resolved_case(retention, bob_credits, subject="Late fee on the monthly subscription")
    # when alice asks for cases like hers
    similar = similar_resolved_cases(user=alice, case=alices_case)
    # then the double charge comes first, with what resolved it, then the merely related case;
    # unrelated cases stay out
    assert [item.case.pk for item in similar] == [same.pk, akin.pk]
    assert [(d.kind.code, d.amount) for d in similar[0].decisions] == [("goodwill_credit", Decimal("50"))]


@pytest.mark.django_db
def test_another_teams_similar_case_is_never_shown(client, alice, retention, carol, billing, alices_case):
    # given Billing resolved a case worded exactly like alice's, with a credit by carol
    GrantFactory(subject_user=carol, kind=kind("goodwill_credit"), per_case_limit=Decimal("1000"),
                 period_limit=Decimal("100000"))
    theirs = resolved_case(billing, carol, subject=DOUBLE_CHARGE, credit="321", rating=5)
    # when alice opens her case
    page = _page(client, alice, alices_case).text
    # then the assist panel has no similar case and says nothing of the Billing case or its credit
    assert similar_resolved_cases(user=alice, case=alices_case) == []
    assert "No resolved case you may see reads like this one." in page
    assert theirs.reference not in page and "321.00" not in page


@pytest.mark.django_db
def test_a_clearly_upset_customer_is_flagged_in_words_and_a_neutral_one_is_not(client, alice, retention):
    # given one case written in anger and one written calmly
    upset = CaseFactory(team=retention, owner=alice, subject="Charged twice AGAIN",
                        description="This is terrible. I am furious, your service is awful and I want my money back.")
    calm = CaseFactory(team=retention, owner=alice, subject="Change of billing address",
                       description="Please use the new billing address from next month.")
    # when alice opens each
    upset_page, calm_page = _page(client, alice, upset).text, _page(client, alice, calm).text
    # then only the angry one says, in text, that the customer sounds upset, with the score
    assert customer_sentiment(upset).negative and not customer_sentiment(calm).negative
    score = f"{customer_sentiment(upset).compound:.2f}"
    assert f"Customer sounds upset (sentiment {score})" in upset_page
    assert "Customer sounds upset" not in calm_page and "Customer&#x27;s tone: " in calm_page


def _history(retention, bob):
    """Three resolved double charges: two closed with a 50 EUR credit, one with 70 EUR."""
    for credit in ("50", "50", "70"):
        resolved_case(retention, bob, subject="Subscription charged twice",
                      description="The monthly subscription was charged twice.", credit=credit)


@pytest.mark.django_db
def test_the_next_best_action_within_authority_says_you_can_do_it_now_and_executes_nothing(
    client, alice, retention, bob_credits, alices_case
):
    # given alice may grant goodwill credits up to 100 EUR a case, and her team's history
    GrantFactory(subject_user=alice, kind=kind("goodwill_credit"), per_case_limit=Decimal("100"),
                 period_limit=Decimal("1000"))
    _history(retention, bob_credits)
    decisions = Decision.objects.count()
    # when she opens her case
    page = _page(client, alice, alices_case).text
    # then the median credit of the similar cases is suggested as within her authority
    assert "A 50.00 EUR goodwill credit resolved 3 of 3 similar cases; <strong>you can do it now</strong>" in page
    assert "?kind=goodwill_credit&amp;amount=50&amp;currency=EUR#decide-h" in page
    # and nothing was decided
    assert Decision.objects.count() == decisions and not alices_case.decisions.exists()


@pytest.mark.django_db
def test_the_next_best_action_over_authority_names_the_one_hop_approver(
    client, alice, maria, retention, bob_credits, alices_case
):
    # given alice may grant only 20 EUR a case; maria, her manager, may approve up to 1000
    GrantFactory(subject_user=alice, kind=kind("goodwill_credit"), per_case_limit=Decimal("20"),
                 period_limit=Decimal("1000"))
    GrantFactory(subject_user=maria, kind=kind("goodwill_credit"), per_case_limit=Decimal("1000"),
                 period_limit=Decimal("10000"))
    _history(retention, bob_credits)
    decisions = Decision.objects.count()
    # when she opens her case
    page = _page(client, alice, alices_case).text
    # then the suggestion says it is over her authority and whom to ask, and nothing was decided
    assert "A 50.00 EUR goodwill credit resolved 3 of 3 similar cases; " \
           "<strong>over your authority: ask maria (one hop)</strong>" in page
    assert "you can do it now" not in page
    assert Decision.objects.count() == decisions and not alices_case.decisions.exists()


@pytest.mark.django_db
def test_the_suggestions_link_prefills_the_decision_form_and_bad_values_are_ignored(client, alice, alices_case):
    # when alice follows a suggestion's link, and then a link with values that are no amount or kind
    page = _page(client, alice, alices_case, "?kind=goodwill_credit&amount=50&currency=EUR").text
    bad_amount = _page(client, alice, alices_case, "?kind=goodwill_credit&amount=1e9&currency=XXX")
    bad_kind = _page(client, alice, alices_case, "?kind=<script>&amount=5")
    # then the form shows the kind and amount to review, and bad values leave the defaults, without an error
    assert '<option value="goodwill_credit" selected>' in page and 'value="50"' in page
    assert bad_amount.status_code == 200 and '<option value="goodwill_credit" selected>' in bad_amount.text
    assert 'value="1e9"' not in bad_amount.text and '<option value="EUR" selected>' in bad_amount.text
    assert bad_kind.status_code == 200 and "&lt;script&gt;" not in bad_kind.text and 'value="5"' not in bad_kind.text
    assert not alices_case.decisions.exists()


@pytest.mark.django_db
def test_the_assist_panel_costs_the_same_queries_for_few_or_many_similar_cases(
    client, rf, alice, maria, retention, bob_credits, alices_case, django_assert_max_num_queries
):
    # given a suggestion over alice's authority (the costliest: it names the approvers), and her
    # team's history growing from 3 to 15 similar resolved cases
    GrantFactory(subject_user=alice, kind=kind("goodwill_credit"), per_case_limit=Decimal("20"),
                 period_limit=Decimal("1000"))
    GrantFactory(subject_user=maria, kind=kind("goodwill_credit"), per_case_limit=Decimal("1000"),
                 period_limit=Decimal("10000"))
    client.force_login(alice)
    counts = []
    for _ in range(2):
        for _ in range(4 if counts else 1):
            _history(retention, bob_credits)
        request = rf.get("/")
        request.user = User.objects.get(pk=alice.pk)
        case = Case.objects.select_related("customer").get(pk=alices_case.pk)
        # when the panel is built, and when she opens her case
        with django_assert_max_num_queries(ASSIST_QUERIES):
            panel = assist_context(request, case, is_owner=True)["assist"]
        with CaptureQueriesContext(connection) as shown:
            page = client.get(reverse("cases:detail", args=[alices_case.pk])).text
        counts.append(len(shown))
        assert "ask maria (one hop)" in page and panel["action"].resolved == len(panel["similar"])
    # then both the panel and the whole page cost the same number of queries both times
    assert counts[0] == counts[1]


@pytest.mark.django_db
def test_similar_cases_are_read_in_three_queries_whatever_their_number(
    alice, retention, bob_credits, alices_case, django_assert_num_queries
):
    # given 12 similar resolved cases with decisions
    for _ in range(4):
        _history(retention, bob_credits)
    # when they are ranked, then the user's roles (for visibility), the candidates and the shown cases'
    # decisions are all it reads
    with django_assert_num_queries(3):
        similar = similar_resolved_cases(user=alice, case=alices_case)
    assert len(similar) == 5 and all(item.decisions for item in similar)
