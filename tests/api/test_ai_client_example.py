"""The example AI agent client (examples/ai_agent_client.py) against a live server: the split, end to end."""

import importlib.util
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from djmoney.money import Money

from authority.models import Decision, ShadowDecision
from h2h_core.api_tokens import api_token_new
from h2h_core.models import Case, CaseCategory, CaseStatus, HandOff
from tests.factories import CaseFactory, ai_agent, kind

from .helpers import grant_refund

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CLIENT_PATH = Path(__file__).resolve().parents[2] / "examples" / "ai_agent_client.py"


def load_client():
    spec = importlib.util.spec_from_file_location("ai_agent_client", CLIENT_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


client = load_client()


def queued(team, category, at_stake: str, stakes: int = 30):
    return CaseFactory(team=team, owner=None, status=CaseStatus.QUEUED, category=category, stakes_score=stakes,
                       amount_at_stake=Money(Decimal(at_stake), "EUR"))


@pytest.fixture
def bot_token(retention, alice):
    """An AI agent of Retention (billing errors and "other" cases up to stakes 60; goodwill credits up to
    50 EUR and refunds up to 100 EUR per case), alice the person it hands off to; return its token."""
    bot = ai_agent(retention, "ai-bot", categories=[CaseCategory.BILLING_ERROR, CaseCategory.OTHER])
    grant_refund(bot.user, per_case="50", per_month="1000", kind=kind("goodwill_credit"))
    grant_refund(bot.user, per_case="100", per_month="1000")
    issued = api_token_new(user=bot.user)
    issued.token.save()
    return issued.key


@pytest.fixture
def five_cases(retention):
    return {
        "credit": queued(retention, CaseCategory.OTHER, "250.00"),  # a 25.00 credit: within authority
        "small refund": queued(retention, CaseCategory.BILLING_ERROR, "80.00"),  # 80.00: within
        "big refund": queued(retention, CaseCategory.BILLING_ERROR, "400.00"),  # 400.00: over 100
        "complaint": queued(retention, CaseCategory.COMPLAINT, "90.00"),  # outside the routing rules
        "unsure": queued(retention, CaseCategory.OTHER, "100.00", stakes=55),  # confidence 0.650 < 0.700
    }


def test_the_client_executes_the_routine_and_hands_the_rest_to_a_person(live_server, bot_token, five_cases, alice):
    # when the example client works the team's queue as the AI agent
    report = client.run(client.Api(live_server.url, bot_token), limit=10)
    # then two decisions within its authority are executed, and the three other cases are alice's
    outcomes = {row.case: row.outcome for row in report.rows}
    assert outcomes == {
        five_cases["credit"].reference: "executed", five_cases["small refund"].reference: "executed",
        five_cases["big refund"].reference: "handed_off", five_cases["complaint"].reference: "handed_off",
        five_cases["unsure"].reference: "handed_off",
    }
    assert report.totals == {"executed": 2, "handed_off": 3}
    assert sorted(Decision.objects.values_list("kind__code", "amount")) == [
        ("goodwill_credit", Decimal("25.00")), ("refund", Decimal("80.00"))]
    assert sorted(HandOff.objects.values_list("case_id", "to_user__username")) == sorted(
        (five_cases[name].pk, "alice") for name in ("big refund", "complaint", "unsure"))
    # and the table says so
    table = client.render(report)
    assert "totals: executed 2, shadow 0, handed_off 3" in table
    assert five_cases["big refund"].reference in table and "alice" in table


def test_running_it_again_acts_on_nothing_twice(live_server, bot_token, five_cases):
    api = client.Api(live_server.url, bot_token)
    first = client.run(api, limit=10)
    decisions = list(Decision.objects.values_list("pk", flat=True))
    hand_offs = list(HandOff.objects.values_list("pk", flat=True))
    # when it runs again: the cases it decided are still its own (open), the queue is empty
    again = client.run(api, limit=10)
    # then it sees its own decisions there and proposes nothing more
    assert [(row.case, row.outcome) for row in again.rows] == [
        (row.case, "already_decided") for row in first.rows if row.outcome == "executed"]
    assert list(Decision.objects.values_list("pk", flat=True)) == decisions
    assert list(HandOff.objects.values_list("pk", flat=True)) == hand_offs


def test_a_retried_decision_is_replayed_not_executed_twice(live_server, bot_token, five_cases):
    # given the AI took a case and decided, but the answer was lost (the client crashed)
    api = client.Api(live_server.url, bot_token)
    me = api.get("ai/me/")
    case = api.get(f"cases/{five_cases['credit'].pk}/")
    first = client.work_case(api, me=me, case=case)
    # when the same call is sent again with its key
    proposal = client.propose(case)
    status, again = api.post("ai/decide/", {
        "case": case["id"], "kind": proposal.kind, "amount": proposal.amount, "currency": proposal.currency,
        "rationale": proposal.rationale, "confidence": proposal.confidence,
        "summary": client.summary_for(case, proposal), "transcript": [{"from": "customer", "text": case["subject"]}],
    }, key=client.idempotency_key_for(me, case, "decide", proposal))
    # then the first answer comes back and one decision exists
    assert first.outcome == "executed" and (status, again["outcome"]) == (201, "executed")
    assert Decision.objects.count() == 1 and again["decision"]["id"] == Decision.objects.get().pk


def test_under_a_shadow_grant_the_client_records_and_a_person_decides(live_server, retention, alice):
    bot = ai_agent(retention, "ai-shadow", categories=[CaseCategory.OTHER])
    grant_refund(bot.user, per_case="50", per_month="1000", kind=kind("goodwill_credit"), shadow=True)
    issued = api_token_new(user=bot.user)
    issued.token.save()
    case = queued(retention, CaseCategory.OTHER, "200.00")
    report = client.run(client.Api(live_server.url, issued.key), limit=10)
    assert [(row.case, row.outcome) for row in report.rows] == [(case.reference, "shadow")]
    assert ShadowDecision.objects.get().amount == Decimal("20.00") and not Decision.objects.exists()


def test_a_dry_run_takes_and_decides_nothing(live_server, bot_token, five_cases):
    report = client.run(client.Api(live_server.url, bot_token), limit=10, dry_run=True)
    assert {row.outcome for row in report.rows} == {"would_take"}
    assert not Decision.objects.exists() and not HandOff.objects.exists()
    assert not Case.objects.filter(status=CaseStatus.OWNED).exists()


def test_a_bad_token_is_a_clear_error_not_a_traceback(live_server, capsys):
    code = client.main(["--base-url", live_server.url, "--token", "not-a-token"])
    assert code == 2
    assert "error: 401" in capsys.readouterr().err


def test_a_person_s_token_is_refused_with_a_hint(live_server, alice, capsys):
    issued = api_token_new(user=alice)
    issued.token.save()
    assert client.main(["--base-url", live_server.url, "--token", issued.key]) == 2
    err = capsys.readouterr().err
    assert "error: 403" in err and "AI agent" in err


def test_no_server_is_a_clear_error(capsys):
    assert client.main(["--base-url", "http://127.0.0.1:9", "--token", "x"]) == 2
    assert "Cannot reach" in capsys.readouterr().err


def test_the_stand_in_rules_propose_from_the_case():
    refund = client.propose({"category": "billing_error", "amount_at_stake": "89.90", "currency": "EUR",
                             "stakes_score": 20})
    credit = client.propose({"category": "renewal", "amount_at_stake": "30.00", "currency": "EUR",
                             "stakes_score": 70})
    assert (refund.kind, refund.amount, refund.confidence) == ("refund", "89.90", "0.900")
    assert (credit.kind, credit.amount, credit.confidence) == ("goodwill_credit", "5.00", "0.650")
    assert "Stand-in" in refund.rationale
