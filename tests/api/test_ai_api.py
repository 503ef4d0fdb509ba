"""The AI agent's tools under /api/v1/ai/: take, check, decide, hand off, and who am I."""

from decimal import Decimal

import pytest
from django.utils import timezone

from authority.models import Decision, ShadowDecision, UsageCounter
from h2h_core.models import AiAgent, CaseCategory, CaseStatus, HandOff
from tests.factories import CaseFactory, ai_agent, kind

from .helpers import assert_error_shape, client_for, grant_refund, idempotency_records, state

pytestmark = pytest.mark.django_db

AI = "/api/v1/ai"


@pytest.fixture
def bot(retention, alice):
    """An AI agent of Retention that owns billing errors and "other" cases up to stakes 60; alice is the
    person of the team who receives what it hands off."""
    return ai_agent(retention, "ai-bot", categories=[CaseCategory.BILLING_ERROR, CaseCategory.OTHER],
                    model_name="support-llm", model_version="2026-11")


@pytest.fixture
def as_bot(bot):
    return client_for(bot.user)


@pytest.fixture
def bot_may_credit_50(bot):
    """Goodwill credits up to 50 EUR per case and 500 EUR a month."""
    return grant_refund(bot.user, per_case="50", per_month="500", kind=kind("goodwill_credit"))


@pytest.fixture
def queued_billing_case(retention):
    return CaseFactory(team=retention, owner=None, status=CaseStatus.QUEUED, category=CaseCategory.BILLING_ERROR)


@pytest.fixture
def queued_complaint(retention):
    return CaseFactory(team=retention, owner=None, status=CaseStatus.QUEUED, category=CaseCategory.COMPLAINT)


@pytest.fixture
def bot_case(bot, retention):
    """A billing error the AI agent owns (250 EUR at stake)."""
    return CaseFactory(team=retention, owner=bot.user, status=CaseStatus.OWNED, category=CaseCategory.BILLING_ERROR)


def keyed(key: str) -> dict:
    return {"HTTP_IDEMPOTENCY_KEY": key}


def credit(on_case, amount="20.00", **overrides) -> dict:
    return {"case": on_case.pk, "kind": "goodwill_credit", "amount": amount, "currency": "EUR",
            "rationale": "Charged twice; a credit for the trouble", "confidence": "0.920", **overrides}


def ai_state() -> dict:
    """Everything a tool could change, the AI's rows included."""
    return {**state(), "hand_offs": list(HandOff.objects.values_list("pk", "case_id", "to_user_id")),
            "shadow_decisions": list(ShadowDecision.objects.values_list("pk", flat=True)),
            "idempotency": idempotency_records()}


# --- take ---------------------------------------------------------------------------------------------


def test_take_gives_the_ai_a_case_its_routing_rules_allow(as_bot, bot, queued_billing_case):
    # when the AI agent takes a billing error from its team's queue
    response = as_bot.post(f"{AI}/take/", {"case": queued_billing_case.pk}, format="json", **keyed("take-1"))
    # then it owns the case
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body == {"outcome": "owned",
                    "case": {"id": queued_billing_case.pk, "reference": queued_billing_case.reference,
                             "owner": "ai-bot"},
                    "decision": None, "shadow_decision": None, "hand_off": None, "reasons": []}
    queued_billing_case.refresh_from_db()
    assert queued_billing_case.owner == bot.user and queued_billing_case.status == CaseStatus.OWNED


def test_take_hands_a_case_outside_the_routing_rules_to_a_person(as_bot, alice, queued_complaint):
    # when the AI agent takes a complaint, which its routing rules keep with people
    response = as_bot.post(f"{AI}/take/", {"case": queued_complaint.pk, "summary": "Angry about March",
                                           "transcript": [{"from": "customer", "text": "Charged twice!"}]},
                           format="json", **keyed("take-2"))
    # then alice owns it, with the context the AI had
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["outcome"] == "handed_off" and body["case"]["owner"] == "alice"
    assert body["hand_off"]["to_user"] == "alice" and body["hand_off"]["reason"] == "outside_routing"
    assert body["reasons"] and body["decision"] is None
    hand_off = HandOff.objects.get(pk=body["hand_off"]["id"])
    assert hand_off.transcript == [{"from": "customer", "text": "Charged twice!"}]
    assert hand_off.summary == "Angry about March"
    queued_complaint.refresh_from_db()
    assert queued_complaint.owner == alice


# --- check --------------------------------------------------------------------------------------------


def test_check_says_what_deciding_would_do_and_changes_nothing(as_bot, bot_case, bot_may_credit_50):
    before = ai_state()
    within = as_bot.post(f"{AI}/check/", credit(bot_case, "20.00"), format="json")
    over = as_bot.post(f"{AI}/check/", credit(bot_case, "80.00"), format="json")
    unsure = as_bot.post(f"{AI}/check/", credit(bot_case, "20.00", confidence="0.300"), format="json")
    assert within.status_code == 200, within.json()
    assert within.json()["would"] == "execute" and within.json()["verdict"]["allowed"] is True
    assert within.json()["verdict"]["per_case_headroom"] == "50"
    assert over.json()["would"] == "hand_off" and over.json()["verdict"]["allowed"] is False
    assert any("per-case limit" in reason for reason in over.json()["reasons"])
    assert unsure.json()["would"] == "hand_off"
    assert ai_state() == before


# --- decide -------------------------------------------------------------------------------------------


def test_decide_within_authority_executes_with_the_ais_identity(as_bot, bot, bot_case, bot_may_credit_50):
    # when the AI agent credits 20 EUR on its case
    response = as_bot.post(f"{AI}/decide/", credit(bot_case), format="json", **keyed("decide-1"))
    # then it is executed (201), recorded with its model, version and confidence
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["outcome"] == "executed" and body["case"]["owner"] == "ai-bot" and body["hand_off"] is None
    assert (body["decision"]["kind"], body["decision"]["amount"], body["decision"]["currency"]) == (
        "goodwill_credit", "20.00", "EUR")
    assert body["decision"]["grant"] == bot_may_credit_50.pk
    decision = Decision.objects.get(pk=body["decision"]["id"])
    assert decision.agent == bot.user and decision.confidence == Decimal("0.920")
    assert (decision.ai_model, decision.ai_model_version) == ("support-llm", "2026-11")


def test_decide_over_authority_hands_the_case_to_a_person_with_the_attempt(as_bot, alice, bot_case,
                                                                         bot_may_credit_50):
    # when the AI agent credits 80 EUR, over its 50 per case
    response = as_bot.post(f"{AI}/decide/", credit(bot_case, "80.00"), format="json", **keyed("decide-2"))
    # then nothing is executed, and alice owns the case with what the AI tried (202)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["outcome"] == "handed_off" and body["case"]["owner"] == "alice"
    assert body["decision"] is None and body["hand_off"]["reason"] == "over_authority"
    assert any("per-case limit" in reason for reason in body["reasons"])
    assert not Decision.objects.exists()
    attempt = HandOff.objects.get().attempts[0]
    assert (attempt["kind"], attempt["amount"], attempt["outcome"]) == ("goodwill_credit", "80.00", "refused")


def test_decide_below_the_confidence_bar_goes_to_a_person(as_bot, bot_case, bot_may_credit_50):
    response = as_bot.post(f"{AI}/decide/", credit(bot_case, confidence="0.500"), format="json",
                           **keyed("decide-3"))
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["outcome"] == "handed_off" and body["hand_off"]["reason"] == "low_confidence"
    assert not Decision.objects.exists()


def test_decide_under_a_shadow_grant_records_it_executes_nothing_and_a_person_decides(as_bot, bot, bot_case):
    # given the AI agent's goodwill credits are shadow (log-only)
    grant_refund(bot.user, per_case="50", per_month="500", kind=kind("goodwill_credit"), shadow=True)
    counters = dict(UsageCounter.objects.values_list("key", "used"))
    # when it credits 20 EUR
    response = as_bot.post(f"{AI}/decide/", credit(bot_case), format="json", **keyed("decide-4"))
    # then what it would have done is recorded, nothing executed or consumed, and alice decides (202)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["outcome"] == "shadow" and body["decision"] is None
    assert body["shadow_decision"]["allowed"] is True and body["shadow_decision"]["amount"] == "20.00"
    assert body["hand_off"]["reason"] == "shadow" and body["case"]["owner"] == "alice"
    assert ShadowDecision.objects.get().pk == body["shadow_decision"]["id"]
    assert not Decision.objects.exists() and dict(UsageCounter.objects.values_list("key", "used")) == counters


# --- hand off -----------------------------------------------------------------------------------------


def test_hand_off_gives_the_case_to_a_person_with_the_context(as_bot, alice, bot_case):
    response = as_bot.post(f"{AI}/hand-off/", {
        "case": bot_case.pk, "reason": "The customer asked for a person.", "summary": "Wants to cancel",
        "transcript": [{"from": "customer", "text": "A human, please."}, {"from": "ai", "text": "Of course."}],
    }, format="json", **keyed("hand-off-1"))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["outcome"] == "handed_off" and body["case"]["owner"] == "alice"
    assert body["hand_off"]["reason"] == "asked" and body["hand_off"]["to_user"] == "alice"
    hand_off = HandOff.objects.get()
    assert hand_off.reason_text == "The customer asked for a person." and len(hand_off.transcript) == 2
    bot_case.refresh_from_db()
    assert bot_case.owner == alice


def test_a_transcript_line_from_someone_else_is_400_and_changes_nothing(as_bot, bot_case):
    before = ai_state()
    response = as_bot.post(f"{AI}/hand-off/", {"case": bot_case.pk, "reason": "Customer asked",
                                               "transcript": [{"from": "manager", "text": "hi"}]},
                           format="json", **keyed("hand-off-2"))
    body = assert_error_shape(response, 400, "invalid")
    assert "transcript" in body["details"]
    assert ai_state() == before


# --- who am I -----------------------------------------------------------------------------------------


def test_me_says_who_the_ai_is_what_it_may_own_and_its_caps(as_bot, bot, bot_may_credit_50):
    response = as_bot.get(f"{AI}/me/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["username"], body["model_name"], body["model_version"]) == ("ai-bot", "support-llm", "2026-11")
    assert body["team"]["slug"] == "retention" and body["suspended"] is False
    assert body["routing"]["categories"] == ["billing_error", "other"]
    assert body["routing"]["max_stakes"] == 60 and body["routing"]["min_confidence"] == "0.700"
    rows = {row["kind"]: row for row in body["authority"]}
    assert rows["goodwill_credit"]["allowed"] is True and rows["goodwill_credit"]["grant"] == bot_may_credit_50.pk
    assert (rows["goodwill_credit"]["per_case_limit"], rows["goodwill_credit"]["period_limit"],
            rows["goodwill_credit"]["period_left"]) == ("50.00", "500.00", "500.00")
    assert rows["refund"]["allowed"] is False and rows["refund"]["grant"] is None
    assert body["shadow_grants"] == []


def test_me_lists_shadow_grants_apart_from_live_authority(as_bot, bot):
    shadow = grant_refund(bot.user, per_case="50", per_month="500", kind=kind("goodwill_credit"), shadow=True)
    body = as_bot.get(f"{AI}/me/").json()
    assert [row["grant"] for row in body["shadow_grants"]] == [shadow.pk]
    assert {row["kind"]: row["allowed"] for row in body["authority"]}["goodwill_credit"] is False


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["take", "check", "decide", "hand-off"])
def test_a_person_may_not_use_the_ai_tools_and_nothing_changes(as_alice, alice, bot_case, queued_billing_case,
                                                               bot_may_credit_50, tool):
    # given alice, a human agent, with a credit grant of her own
    grant_refund(alice, kind=kind("goodwill_credit"))
    before = ai_state()
    payload = {**credit(queued_billing_case), "reason": "asked"}
    response = as_alice.post(f"{AI}/{tool}/", payload, format="json", **keyed(f"alice-{tool}"))
    assert_error_shape(response, 403)
    assert ai_state() == before


def test_a_person_has_no_ai_identity(as_alice):
    assert_error_shape(as_alice.get(f"{AI}/me/"), 403)


def test_without_a_token_the_tools_are_401(client, queued_billing_case):
    assert_error_shape(client.post(f"{AI}/take/", {"case": queued_billing_case.pk},
                                   content_type="application/json"), 401)


def test_a_suspended_ai_agent_is_refused_and_nothing_changes(as_bot, bot, bot_case, queued_billing_case,
                                                            bot_may_credit_50):
    # given the AI agent is suspended (its account still active: the predicate alone must refuse it)
    AiAgent.objects.filter(pk=bot.pk).update(suspended_at=timezone.now(), suspension_reason="Misbehaving")
    before = ai_state()
    take = as_bot.post(f"{AI}/take/", {"case": queued_billing_case.pk}, format="json", **keyed("s-1"))
    decide = as_bot.post(f"{AI}/decide/", credit(bot_case), format="json", **keyed("s-2"))
    assert_error_shape(take, 403)
    assert_error_shape(decide, 403)
    assert_error_shape(as_bot.get(f"{AI}/me/"), 403)
    assert ai_state() == before


@pytest.mark.parametrize("tool", ["take", "decide", "hand-off"])
def test_a_write_without_an_idempotency_key_is_400_and_changes_nothing(as_bot, bot_case, bot_may_credit_50,
                                                                       tool):
    before = ai_state()
    response = as_bot.post(f"{AI}/{tool}/", {**credit(bot_case), "reason": "asked"}, format="json")
    body = assert_error_shape(response, 400, "invalid")
    assert "Idempotency-Key" in body["details"]
    assert ai_state() == before


def test_a_replayed_decision_returns_the_same_answer_and_does_nothing_more(as_bot, bot_case, bot_may_credit_50):
    first = as_bot.post(f"{AI}/decide/", credit(bot_case), format="json", **keyed("decide-replay"))
    assert first.status_code == 201, first.json()
    after_first = ai_state()
    again = as_bot.post(f"{AI}/decide/", credit(bot_case), format="json", **keyed("decide-replay"))
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert ai_state() == after_first and Decision.objects.count() == 1


def test_a_replayed_hand_off_returns_the_same_answer_and_does_nothing_more(as_bot, bot_case, bot_may_credit_50):
    first = as_bot.post(f"{AI}/decide/", credit(bot_case, "80.00"), format="json", **keyed("over-replay"))
    assert first.status_code == 202, first.json()
    after_first = ai_state()
    again = as_bot.post(f"{AI}/decide/", credit(bot_case, "80.00"), format="json", **keyed("over-replay"))
    assert again.status_code == 202 and again.json() == first.json()
    assert ai_state() == after_first and HandOff.objects.count() == 1


def test_the_same_key_for_another_decision_is_422(as_bot, bot_case, bot_may_credit_50):
    as_bot.post(f"{AI}/decide/", credit(bot_case), format="json", **keyed("decide-k"))
    before = ai_state()
    response = as_bot.post(f"{AI}/decide/", credit(bot_case, "30.00"), format="json", **keyed("decide-k"))
    assert_error_shape(response, 422, "idempotency_conflict")
    assert ai_state() == before


@pytest.mark.parametrize("field, value", [("amount", 20), ("amount", 20.5), ("confidence", 0.9)])
def test_a_json_number_for_an_amount_or_confidence_is_400_and_changes_nothing(as_bot, bot_case, bot_may_credit_50,
                                                                              field, value):
    before = ai_state()
    response = as_bot.post(f"{AI}/decide/", credit(bot_case, **{field: value}), format="json",
                           **keyed("decide-number"))
    body = assert_error_shape(response, 400, "invalid")
    assert field in body["details"] and "JSON string" in body["details"][field][0]
    assert ai_state() == before


@pytest.mark.parametrize("confidence", ["1.5", "0.1234", "-0.1"])
def test_a_confidence_outside_0_to_1_or_too_precise_is_400(as_bot, bot_case, bot_may_credit_50, confidence):
    before = ai_state()
    response = as_bot.post(f"{AI}/decide/", credit(bot_case, confidence=confidence), format="json",
                           **keyed("decide-confidence"))
    assert "confidence" in assert_error_shape(response, 400, "invalid")["details"]
    assert ai_state() == before


def test_decide_without_confidence_is_400(as_bot, bot_case, bot_may_credit_50):
    payload = credit(bot_case)
    del payload["confidence"]
    response = as_bot.post(f"{AI}/decide/", payload, format="json", **keyed("decide-no-confidence"))
    assert "confidence" in assert_error_shape(response, 400, "invalid")["details"]


@pytest.mark.parametrize("tool", ["take", "check", "decide", "hand-off"])
def test_a_case_that_does_not_exist_or_is_not_visible_is_404(as_bot, billing_case, bot_may_credit_50, tool):
    before = ai_state()
    for case_id in (billing_case.pk, 999999):
        payload = {**credit(billing_case), "case": case_id, "reason": "asked"}
        response = as_bot.post(f"{AI}/{tool}/", payload, format="json", **keyed(f"{tool}-{case_id}"))
        assert_error_shape(response, 404, "not_found")
    assert ai_state() == before


def test_deciding_on_a_case_the_ai_does_not_own_is_refused_and_changes_nothing(as_bot, case_owned_by_alice,
                                                                             bot_may_credit_50):
    before = ai_state()
    response = as_bot.post(f"{AI}/decide/", credit(case_owned_by_alice), format="json", **keyed("not-mine"))
    assert_error_shape(response, 403)
    assert {key: value for key, value in ai_state().items() if key != "idempotency"} == {
        key: value for key, value in before.items() if key != "idempotency"}


def test_the_tools_are_in_the_openapi_schema(as_bot):
    paths = as_bot.get("/api/schema/?format=json").json()["paths"]
    for tool in ("take", "check", "decide", "hand-off", "me"):
        assert f"/api/v1/ai/{tool}/" in paths
    decide = paths["/api/v1/ai/decide/"]["post"]
    assert {"201", "202", "400", "403"} <= set(decide["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in decide["parameters"])


def test_me_costs_a_fixed_number_of_queries_whatever_the_grants(as_bot, bot, django_assert_max_num_queries):
    # given grants for every kind, live and shadow
    for code in ("refund", "goodwill_credit", "fee_waiver"):
        grant_refund(bot.user, kind=kind(code))
        grant_refund(bot.user, kind=kind(code), shadow=True)
    # then who-am-I reads them in a fixed number of queries (token, roles, agent, summary, shadow grants)
    with django_assert_max_num_queries(7):
        assert as_bot.get(f"{AI}/me/").status_code == 200
