"""The decision path's fewer statements keep its answers: a key is told by its unique index, counters are
raised in one statement on PostgreSQL, and the API answers from the row it wrote."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from authority import selectors, usage
from authority.errors import AuthorityDenied, IdempotencyConflict
from authority.models import Decision, OutboxMessage, UsageCounter
from authority.policy.verdict import Consumption
from authority.services import decision_execute
from authority.services.usage import usage_consume
from h2h_core.ai_agents import AiAgentSuspended, ai_agent_suspend
from h2h_core.models import AuditEvent, CaseCategory, CaseStatus
from tests.api.helpers import client_for
from tests.factories import CaseFactory, GrantFactory, ai_agent, kind, set_usage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def execute(actor, case, amount, *, key=None, rationale="double charge"):
    return decision_execute(actor=actor, case=case, kind=kind("refund"), amount=amount, currency="EUR",
                            rationale=rationale, idempotency_key=key)


def statements_on(table: str, captured) -> list[str]:
    return [query["sql"] for query in captured.captured_queries if f'"{table}"' in query["sql"]]


def test_a_new_key_is_not_looked_up_before_the_decision_is_written(alice, case_owned_by_alice):
    # given alice may refund
    GrantFactory(subject_user=alice)
    # when she decides with a key never used
    with CaptureQueriesContext(connection) as captured:
        decision = execute(alice, case_owned_by_alice, "200", key="k-new")
    # then the decision table is only written, never read: the unique index is what tells a repeat
    (written,) = statements_on("authority_decision", captured)
    assert 'INSERT INTO "authority_decision"' in written and not written.startswith("SELECT")
    assert decision.idempotency_key == "k-new"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL writes them together")
def test_the_rows_that_record_a_decision_are_written_by_one_statement(alice, case_owned_by_alice):
    # given alice may refund, and nobody subscribes to webhooks
    GrantFactory(subject_user=alice)
    # when she decides
    with CaptureQueriesContext(connection) as captured:
        decision = execute(alice, case_owned_by_alice, "200", key="k-new")
    # then its outbox message, case event and audit event are written by one statement, and each names it
    (together,) = statements_on("authority_outboxmessage", captured)
    assert together.startswith("WITH r0 AS (INSERT")
    for table in ("authority_outboxmessage", "h2h_core_caseevent", "h2h_core_auditevent"):
        assert statements_on(table, captured) == [together]
    assert OutboxMessage.objects.get().decision_id == decision.pk
    assert case_owned_by_alice.events.filter(kind="decision").count() == 1
    assert AuditEvent.objects.get(action="decision.executed").object_id == str(decision.pk)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL writes them together")
def test_the_counters_and_the_decision_are_written_by_one_statement(alice, case_owned_by_alice):
    # given alice may refund
    GrantFactory(subject_user=alice)
    # when she decides
    with CaptureQueriesContext(connection) as captured:
        decision = execute(alice, case_owned_by_alice, "200", key="k-new")
    # then one statement raises both her counters and writes the decision
    (together,) = statements_on("authority_decision", captured)
    assert 'INSERT INTO "authority_usagecounter"' in together
    assert [sql for sql in statements_on("authority_usagecounter", captured) if not sql.startswith("SELECT")] == [
        together]
    assert Decision.objects.get().pk == decision.pk
    assert sorted(UsageCounter.objects.values_list("used", flat=True)) == [Decimal("200"), Decimal("200")]


def test_a_counter_spent_between_the_verdict_and_the_write_refuses_the_decision_and_keeps_nothing(
        alice, case_owned_by_alice, monkeypatch):
    # given alice may refund 500 per case, 450 of it already spent on this case
    refund = kind("refund")
    GrantFactory(subject_user=alice)
    case_key = usage.case_key(case_id=case_owned_by_alice.pk, kind_code="refund", currency="EUR")
    set_usage(case_key, "450", kind_obj=refund, scope=UsageCounter.Scope.CASE, case=case_owned_by_alice,
              currency="EUR")
    # and her verdict reads the counters as they were before that was spent (another decision's race)
    real = selectors.question_grants_and_usage
    reads = []

    def stale_once(**question):
        grants, used = real(**question)
        reads.append(question["counters"])
        return (grants, {}) if len(reads) == 1 else (grants, used)

    monkeypatch.setattr(selectors, "question_grants_and_usage", stale_once)
    events = AuditEvent.objects.count()
    # when she refunds 100
    with pytest.raises(AuthorityDenied) as denied:
        execute(alice, case_owned_by_alice, "100", key="k-late")
    # then she is refused with the headroom as it is now, and neither the decision nor a counter was kept
    assert len(reads) == 2
    verdict = denied.value.verdict
    assert (verdict.per_case_headroom, verdict.period_used, verdict.period_headroom) == (
        Decimal("50"), Decimal("0"), Decimal("1000"))
    assert not Decision.objects.exists() and not OutboxMessage.objects.exists()
    assert UsageCounter.objects.get(key=case_key).used == Decimal("450")
    assert list(UsageCounter.objects.exclude(key=case_key).values_list("used", flat=True)) in ([], [Decimal("0")])
    assert list(AuditEvent.objects.order_by("pk")[events:].values_list("action", flat=True)) == ["decision.refused"]


def test_a_repeat_after_the_first_spent_all_the_headroom_is_the_first_decision_not_a_refusal(alice,
                                                                                          case_owned_by_alice):
    # given alice may refund 200 per case, and spent all of it with key k1
    GrantFactory(subject_user=alice, per_case_limit=Decimal("200"))
    first = execute(alice, case_owned_by_alice, "200", key="k1")
    events = AuditEvent.objects.count()
    # when the same request arrives again
    again = execute(alice, case_owned_by_alice, "200", key="k1")
    # then it is answered with the first decision; nothing more is counted, written or audited
    assert again.pk == first.pk
    assert Decision.objects.count() == 1 and OutboxMessage.objects.count() == 1
    assert UsageCounter.objects.get(key=usage.case_key(case_id=case_owned_by_alice.pk, kind_code="refund",
                                                       currency="EUR")).used == Decimal("200")
    assert AuditEvent.objects.count() == events


def test_a_repeat_with_another_payload_once_the_headroom_is_spent_is_a_conflict_not_a_refusal(alice,
                                                                                           case_owned_by_alice):
    # given alice spent her whole per-case limit with key k1
    GrantFactory(subject_user=alice, per_case_limit=Decimal("200"))
    first = execute(alice, case_owned_by_alice, "200", key="k1")
    events = AuditEvent.objects.count()
    # when she sends another amount with the same key
    with pytest.raises(IdempotencyConflict) as conflict:
        execute(alice, case_owned_by_alice, "150", key="k1")
    # then the key's conflict is the answer, naming the first decision, and no refusal is recorded
    assert conflict.value.details["decision_id"] == first.pk
    assert AuditEvent.objects.count() == events


def test_inside_a_callers_transaction_a_repeat_is_read_first_and_the_transaction_goes_on(alice,
                                                                                       case_owned_by_alice):
    # given alice may refund
    GrantFactory(subject_user=alice)
    # when a caller's transaction decides twice with one key and goes on working
    with transaction.atomic():
        first = execute(alice, case_owned_by_alice, "200", key="k1")
        again = execute(alice, case_owned_by_alice, "200", key="k1")
        after = Decision.objects.count()
    # then the repeat is the first decision, and the caller's transaction was not aborted by it
    assert again.pk == first.pk and after == 1


def test_a_consumption_over_its_cap_on_a_new_counter_is_refused_without_a_statement():
    # given a consumption larger than its cap
    over = Consumption(key="c:0:refund:EUR", scope=UsageCounter.Scope.CASE, amount=Decimal("10"),
                       cap=Decimal("5"), currency="EUR")
    refund = kind("refund")
    # when it is consumed, then it is refused before the database is asked, and no counter exists
    with CaptureQueriesContext(connection) as captured:
        assert usage_consume(consumptions=[over], kind_id=refund.pk, agent_id=None, case_id=None) is False
    assert captured.captured_queries == []
    assert not UsageCounter.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's")
def test_on_postgresql_every_counter_of_a_decision_is_created_or_raised_in_one_statement(alice,
                                                                                        case_owned_by_alice):
    # given alice may refund 500 per case and 1,000 a month, and decided once (both counters exist)
    GrantFactory(subject_user=alice)
    execute(alice, case_owned_by_alice, "100")
    # when she decides again
    with CaptureQueriesContext(connection) as captured:
        execute(alice, case_owned_by_alice, "100")
    # then the counters were read once (the verdict) and raised in one statement
    writes = [sql for sql in statements_on("authority_usagecounter", captured) if not sql.startswith("SELECT")]
    assert len(writes) == 1 and "ON CONFLICT" in writes[0]
    assert sorted(UsageCounter.objects.values_list("used", flat=True)) == [Decimal("200"), Decimal("200")]


def test_a_counter_that_would_pass_its_cap_is_left_as_it_was(alice, case_owned_by_alice):
    # given a case counter at 150 of a 200 cap and a fresh period counter
    refund = kind("refund")
    case_counter = Consumption(key=usage.case_key(case_id=case_owned_by_alice.pk, kind_code="refund", currency="EUR"),
                               scope=UsageCounter.Scope.CASE, amount=Decimal("60"), cap=Decimal("200"),
                               currency="EUR")
    UsageCounter.objects.create(key=case_counter.key, scope=case_counter.scope, kind=refund,
                                case=case_owned_by_alice, currency="EUR", used=Decimal("150"))
    period = Consumption(key="p:test", scope=UsageCounter.Scope.PERIOD, amount=Decimal("60"), cap=None,
                         currency="EUR")
    # when 60 more is consumed on both, then it is refused (the caller rolls back) and the case counter is unchanged
    with transaction.atomic():
        assert usage_consume(consumptions=[case_counter, period], kind_id=refund.pk, agent_id=alice.pk,
                             case_id=case_owned_by_alice.pk) is False
        assert UsageCounter.objects.get(key=case_counter.key).used == Decimal("150")
        assert UsageCounter.objects.filter(key="p:test").exclude(used=0).count() == 0
        transaction.set_rollback(True)
    # and 50 fits exactly
    exact = Consumption(key=case_counter.key, scope=case_counter.scope, amount=Decimal("50"), cap=Decimal("200"),
                        currency="EUR")
    assert usage_consume(consumptions=[exact], kind_id=refund.pk, agent_id=alice.pk,
                         case_id=case_owned_by_alice.pk) is True
    assert UsageCounter.objects.get(key=case_counter.key).used == Decimal("200")


def test_a_consumption_that_cannot_raise_every_counter_lowers_again_those_it_raised(alice, case_owned_by_alice):
    # given a case counter with room, and a period counter at 150 of a 200 cap (after it in key order)
    refund = kind("refund")
    case_counter = Consumption(key=usage.case_key(case_id=case_owned_by_alice.pk, kind_code="refund", currency="EUR"),
                               scope=UsageCounter.Scope.CASE, amount=Decimal("60"), cap=Decimal("500"),
                               currency="EUR")
    UsageCounter.objects.create(key=case_counter.key, scope=case_counter.scope, kind=refund,
                                case=case_owned_by_alice, currency="EUR", used=Decimal("100"))
    period = Consumption(key="p:test", scope=UsageCounter.Scope.PERIOD, amount=Decimal("60"), cap=Decimal("200"),
                         currency="EUR")
    UsageCounter.objects.create(key=period.key, scope=period.scope, kind=refund, agent=alice, currency="EUR",
                                used=Decimal("150"))
    # when 60 more is consumed on both
    with transaction.atomic():
        consumed = usage_consume(consumptions=[period, case_counter], kind_id=refund.pk, agent_id=alice.pk,
                                 case_id=case_owned_by_alice.pk)
        # then it is refused, and inside the transaction both counters read as they were
        assert consumed is False
        assert dict(UsageCounter.objects.values_list("key", "used")) == {case_counter.key: Decimal("100"),
                                                                         period.key: Decimal("150")}
        transaction.set_rollback(True)


def test_the_api_answers_a_new_decision_as_it_reads_it_back(alice, case_owned_by_alice):
    # given alice may refund, with a token
    GrantFactory(subject_user=alice)
    client = client_for(alice)
    # when she decides through the API
    created = client.post("/api/v1/decisions/", {"case": case_owned_by_alice.pk, "kind": "refund",
                                                 "amount": "120.50", "currency": "EUR", "rationale": "Late"},
                          format="json")
    # then the answer, made from the row just written, is what reading the decision back gives
    assert created.status_code == 201, created.json()
    assert client.get(created["Location"]).json() == created.json()


def test_a_suspended_ai_agents_retry_of_an_earlier_decision_is_that_decision(retention, maria):
    # given an AI agent that credited 20 EUR on its case with key k1, and was suspended since
    bot = ai_agent(retention, "ai-bot", categories=[CaseCategory.BILLING_ERROR])
    GrantFactory(subject_user=bot.user, kind=kind("goodwill_credit"), per_case_limit=Decimal("50"))
    case = CaseFactory(team=retention, owner=bot.user, status=CaseStatus.OWNED, category=CaseCategory.BILLING_ERROR)
    credit = {"actor": bot.user, "case": case, "kind": kind("goodwill_credit"), "amount": "20", "currency": "EUR",
              "rationale": "billed twice", "confidence": "0.9"}
    first = decision_execute(**credit, idempotency_key="k1")
    ai_agent_suspend(actor=maria, ai_agent=bot, reason="refunds look wrong")
    bot.user.refresh_from_db()
    # when its retry of that request arrives, then it is answered with the first decision
    assert decision_execute(**credit, idempotency_key="k1").pk == first.pk
    # and anything new is still refused
    with pytest.raises(AiAgentSuspended):
        decision_execute(**credit, idempotency_key="k2")
    assert Decision.objects.count() == 1
