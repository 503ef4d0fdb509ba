"""evaluate_visible, the authority check: evaluate on a case the agent may see, the case and grants read together."""

import dataclasses
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from authority import policy
from authority.models import Effect, Period
from h2h_core.access import case_visible_to, roles_of
from h2h_core.models import Role
from tests.factories import CaseFactory, GrantFactory, UserFactory, ai_agent, kind, role, team_manager

pytestmark = pytest.mark.django_db

RELATED = ("customer", "team", "owner")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def fresh(user):
    """The user as a request loads it, with the roles it reads along (nothing else cached)."""
    user = type(user).objects.get(pk=user.pk)
    roles_of(user)
    return user


def without_instant(verdict):
    return dataclasses.replace(verdict, evaluated_at=None) if verdict is not None else None


def evaluated_in_turn(user, pk, **question):
    case = case_visible_to(user, pk, related=RELATED)
    return None if case is None else policy.evaluate(agent=user, case=case, **question)


def test_the_check_answers_as_the_visibility_read_and_evaluate_in_turn_for_every_viewer(alice, carol, retention,
                                                                                         billing):
    # given grants at every level (one personal in another currency, a one-off, a suspension of another
    # kind) and cases of two teams, one of them owned by alice in the other team
    refund = kind("refund")
    GrantFactory(subject_user=alice, per_case_limit=Decimal("300"), period_limit=Decimal("900"))
    GrantFactory(subject_user=alice, currency="GBP", per_case_limit=Decimal("50"), period=Period.DAY)
    GrantFactory(subject_team=retention, per_case_limit=Decimal("200"))
    GrantFactory(subject_role=role(Role.AGENT), per_case_limit=Decimal("100"))
    GrantFactory(subject_user=alice, kind=kind("goodwill_credit"), effect=Effect.FORBID)
    own = CaseFactory(owner=alice, team=retention)
    GrantFactory(subject_user=alice, case=own, per_case_limit=Decimal("700"), period=Period.NONE, period_limit=None)
    cases = [own, CaseFactory(owner=None, team=retention), CaseFactory(owner=carol, team=billing),
             CaseFactory(owner=alice, team=billing)]
    viewers = [alice, carol, team_manager(retention, "mia"), UserFactory(username="audrey", roles=[Role.AUDITOR]),
               ai_agent(retention, "bot").user]
    # when each viewer checks each case (and one that does not exist) for an amount within and one beyond
    for viewer in viewers:
        for pk in [*(case.pk for case in cases), 999_999]:
            for amount in ("80.00", "650.00", "5000.00"):
                question = {"kind": refund, "amount": amount, "currency": "EUR"}
                checked = policy.evaluate_visible(agent=fresh(viewer), case_id=pk, related=RELATED, **question)
                # then the same verdict, or none, as reading the case and evaluating on it in turn
                want = evaluated_in_turn(fresh(viewer), pk, **question)
                assert without_instant(checked) == without_instant(want), (viewer.username, pk, amount)
    # (both answers were among them)
    assert policy.evaluate_visible(agent=fresh(alice), case_id=own.pk, kind=refund, amount="80.00",
                                   currency="EUR").allowed
    assert not policy.evaluate_visible(agent=fresh(alice), case_id=own.pk, kind=refund, amount="5000.00",
                                       currency="EUR").allowed
    assert policy.evaluate_visible(agent=fresh(alice), case_id=cases[2].pk, kind=refund, amount="1.00",
                                   currency="EUR") is None


def test_an_agents_check_reads_the_case_the_grants_and_the_counters_in_one_statement(alice, case_owned_by_alice):
    # given alice may refund, and has checked once (what a process compiles once is compiled)
    GrantFactory(subject_user=alice)
    question = {"kind": kind("refund"), "amount": "10.00", "currency": "EUR"}
    user = fresh(alice)
    policy.evaluate_visible(agent=user, case_id=case_owned_by_alice.pk, **question)
    # when she checks again
    with CaptureQueriesContext(connection) as captured:
        verdict = policy.evaluate_visible(agent=user, case_id=case_owned_by_alice.pk, **question)
    # then the case, her grants and the usage counters come in one statement, one fewer than in turn
    assert verdict.allowed
    assert len(captured) == 1, [query["sql"][:80] for query in captured.captured_queries]
    assert all(table in captured[0]["sql"] for table in ("authority_grant", "h2h_core_case", "authority_usagecounter"))
    with CaptureQueriesContext(connection) as in_turn:
        evaluated_in_turn(user, case_owned_by_alice.pk, **question)
    assert len(in_turn) == 2


def test_a_case_the_agent_may_not_see_is_none_and_nothing_is_evaluated(alice, carol, billing):
    # given carol's case in another team, and alice holding a grant
    GrantFactory(subject_user=alice)
    hidden = CaseFactory(owner=carol, team=billing)
    user = fresh(alice)
    question = {"kind": kind("refund"), "amount": "10.00", "currency": "EUR"}
    policy.evaluate_visible(agent=user, case_id=hidden.pk, **question)
    # when alice checks it
    with CaptureQueriesContext(connection) as captured:
        verdict = policy.evaluate_visible(agent=user, case_id=hidden.pk, **question)
    # then no verdict, from the one read: no usage is read for it
    assert verdict is None
    assert len(captured) == 1
