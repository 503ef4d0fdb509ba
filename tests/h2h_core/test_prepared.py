"""Prepared queries answer exactly as the querysets they are compiled from, and refuse what they cannot prepare."""

import pytest
from django.db import connection, transaction
from django.db.models import Value
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from h2h_core.access import case_visible_read, case_visible_to, cases_visible_to, roles_of
from h2h_core.lock_objects import case_locked
from h2h_core.models import AuditEvent, Case, CaseEvent, Role
from h2h_core.prepared import NotPreparable, PreparedQuery, read_together
from h2h_core.prepared_writes import InsertBatch, PreparedInsert
from tests.factories import CaseFactory, UserFactory, ai_agent, role, team_manager

pytestmark = pytest.mark.django_db

RELATED = ("customer", "team", "owner")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def expected(user, pk):
    return cases_visible_to(user).select_related(*RELATED).filter(pk=pk).first()


def fresh(user):
    """The user as a request loads it: nothing cached on it yet."""
    return type(user).objects.get(pk=user.pk)


def test_case_visible_to_answers_as_cases_visible_to_for_every_kind_of_viewer(alice, carol, retention, billing):
    # given cases of two teams, one owned outside its team, and viewers of every kind
    own = CaseFactory(owner=alice, team=retention)
    team_case = CaseFactory(owner=None, team=retention)
    other_team = CaseFactory(owner=carol, team=billing)
    owned_elsewhere = CaseFactory(owner=alice, team=billing)
    viewers = [alice, carol, team_manager(retention, "mia"), UserFactory(username="audrey", roles=[Role.AUDITOR]),
               UserFactory(username="root", is_superuser=True), UserFactory(username="nobody"),
               ai_agent(retention, "bot").user]
    cases = [own, team_case, other_team, owned_elsewhere]
    # when each viewer asks for each case (and one that does not exist)
    for viewer in viewers:
        for pk in [*(case.pk for case in cases), 999_999]:
            found = case_visible_to(fresh(viewer), pk, related=RELATED)
            want = expected(fresh(viewer), pk)
            # then the same case, or none, as the queryset answers
            assert (found and found.pk) == (want and want.pk), (viewer.username, pk)
    assert case_visible_to(fresh(alice), other_team.pk, related=RELATED) is None
    assert case_visible_to(fresh(alice), own.pk, related=RELATED) is not None


def test_a_prepared_case_comes_with_its_relations_loaded_and_typed_as_the_orm_loads_them(alice, retention):
    # given alice's case
    case = CaseFactory(owner=alice, team=retention)
    want = Case.objects.select_related(*RELATED).get(pk=case.pk)
    viewer = fresh(alice)
    roles_of(viewer)
    # when she asks for it twice (the second from the compiled SQL already there)
    case_visible_to(viewer, case.pk, related=RELATED)
    with CaptureQueriesContext(connection) as captured:
        found = case_visible_to(viewer, case.pk, related=RELATED)
    # then one query, and the relations need none
    assert len(captured.captured_queries) == 1
    with CaptureQueriesContext(connection) as captured:
        names = (found.customer.name, found.team.name, found.owner.username)
    assert len(captured.captured_queries) == 0
    assert names == (want.customer.name, want.team.name, want.owner.username)
    assert (found.amount_at_stake, found.opened_at, found.stakes_score) == (
        want.amount_at_stake, want.opened_at, want.stakes_score)


@pytest.mark.parametrize("read", ["visible", "locked"])
def test_a_case_read_with_no_relations_named_joins_none(alice, retention, read):
    # given alice's case
    case = CaseFactory(owner=alice, team=retention)
    viewer = fresh(alice)
    roles_of(viewer)
    # when it is read (and locked) with no relations named
    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        found = case_visible_to(viewer, case.pk) if read == "visible" else case_locked(case.pk)
    # then the one statement selects the case's columns alone: select_related() with no names joins
    # every non-null relation
    reads = [query["sql"] for query in captured.captured_queries if query["sql"].upper().startswith("SELECT")]
    assert found.pk == case.pk and len(reads) == 1
    selected = reads[0].split(" FROM ")[0].removeprefix("SELECT ").removeprefix("DISTINCT ").split(", ")
    assert {column.split(".")[0] for column in selected} == {f'"{Case._meta.db_table}"'}


def test_roles_of_reads_the_users_role_names_once(alice):
    # given alice, who is an agent and also an auditor
    alice.groups.add(role(Role.AUDITOR))
    viewer = fresh(alice)
    # when her roles are asked twice
    with CaptureQueriesContext(connection) as captured:
        first, second = roles_of(viewer), roles_of(viewer)
    # then both roles, from one query
    assert first == second == frozenset({Role.AGENT, Role.AUDITOR})
    assert len(captured.captured_queries) == 1


def test_a_user_without_roles_has_none():
    assert roles_of(UserFactory(username="plain")) == frozenset()


def test_a_value_the_query_does_not_use_is_refused(alice):
    # given a builder that ignores one of the values it names
    prepared = PreparedQuery(lambda shape, *, user_id, case_id: Case.objects.filter(owner_id=user_id),
                             ints=("user_id", "case_id"))
    # when it is run, then it refuses rather than run a query that differs from what was asked
    with pytest.raises(NotPreparable):
        prepared.all(user_id=alice.pk, case_id=1)


def test_a_value_the_sql_changes_is_refused(alice):
    # given a builder whose text value is rewritten in the SQL's parameter (a LIKE pattern)
    prepared = PreparedQuery(lambda shape, *, subject: Case.objects.filter(subject__contains=subject),
                             texts=("subject",))
    # when it is run, then it refuses
    with pytest.raises(NotPreparable):
        prepared.all(subject="Problem")


def test_a_value_that_only_shapes_the_sql_is_refused(alice):
    # given a builder whose SQL has as many parameters as the value says
    prepared = PreparedQuery(lambda shape, *, n: Case.objects.filter(pk__in=range(n % 7, n % 7 + 3 + n % 2 + n % 5)),
                             ints=("n",))
    # when it is run, then it refuses
    with pytest.raises(NotPreparable):
        prepared.all(n=3)


def test_get_answers_as_queryset_get_one_none_or_several(alice, retention):
    # given two cases alice owns
    first, second = CaseFactory(owner=alice, team=retention), CaseFactory(owner=alice, team=retention)
    by_pk = PreparedQuery(lambda shape, *, pk: Case.objects.filter(pk=pk), ints=("pk",))
    by_owner = PreparedQuery(lambda shape, *, owner_id: Case.objects.filter(owner_id=owner_id), ints=("owner_id",))
    # when each is asked for one case, then one comes back, or the exceptions QuerySet.get raises
    assert by_pk.get(pk=second.pk).pk == second.pk
    with pytest.raises(Case.DoesNotExist):
        by_pk.get(pk=first.pk + second.pk + 1000)
    with pytest.raises(Case.MultipleObjectsReturned):
        by_owner.get(owner_id=alice.pk)


# --- the audit append's INSERT ----------------------------------------------------------------


def audit_values(**overrides):
    values = {"occurred_at": timezone.now(), "actor_id": 7, "actor_username": "alice", "actor_roles": ["Agent"],
              "action": "refund.decided", "object_type": "case", "object_id": "12", "before": None,
              "after": {"amount": "12.50", "nested": {"list": [1, "two"]}}, "reason": "why",
              "ip": "2001:db8::1", "request_id": "r-1", "prev_hash": "", "hash": ""}
    return {**values, **overrides}


def test_a_prepared_insert_writes_the_row_create_writes(django_assert_num_queries):
    # given the same values for the ORM's create and the prepared insert
    values = audit_values()
    by_orm = AuditEvent.objects.create(**values)
    # when the prepared insert writes them (compiled on the first call, then in one statement)
    first = PreparedInsert(AuditEvent)
    first.create(**values)
    with django_assert_num_queries(1):
        event = first.create(**values)
    # then the instance it returns is saved, with its key, and the stored rows match field for field
    assert event.pk and not event._state.adding and event._state.db == "default"
    stored = AuditEvent.objects.values().get(pk=event.pk)
    expected = AuditEvent.objects.values().get(pk=by_orm.pk)
    assert {**stored, "id": None} == {**expected, "id": None}
    assert stored["outcome"] == "success" and stored["seq"] is None  # the model's defaults, as create applies them


def case_event_values(case, **overrides):
    return {"case": case, "actor": case.owner, "kind": CaseEvent.Kind.DECISION, "at": timezone.now(),
            "text": "Refund of 12.50 EUR: double charge", **overrides}


def test_a_batch_writes_the_rows_create_writes_in_one_statement_on_postgresql(case_owned_by_alice):
    # given rows of two models, and the same rows as the ORM's create writes them
    case, at = case_owned_by_alice, timezone.now()
    rows = [(AuditEvent, audit_values(occurred_at=at)), (CaseEvent, case_event_values(case, at=at)),
            (AuditEvent, audit_values(occurred_at=at, object_id="13"))]
    by_orm = [model.objects.create(**values) for model, values in rows]
    prepared = {AuditEvent: PreparedInsert(AuditEvent), CaseEvent: PreparedInsert(CaseEvent)}
    # when a batch keeps them and its block ends
    with CaptureQueriesContext(connection) as captured, InsertBatch() as batch:
        kept = [batch.add(prepared[model], model(**values)) for model, values in rows]
        keys_inside = [row.pk for row in kept]
    # then every row is saved with its key, as create would have written it; on PostgreSQL together
    inserts = [q["sql"] for q in captured.captured_queries if "INSERT" in q["sql"]]
    if connection.vendor == "postgresql":
        assert keys_inside == [None, None, None] and len(inserts) == 1 and inserts[0].startswith("WITH r0 AS")
    else:
        assert len(inserts) == 3
    for row, expected in zip(kept, by_orm, strict=True):
        assert row.pk and not row._state.adding and row._state.db == "default"
        model = type(row)
        assert {**model.objects.values().get(pk=row.pk), "id": None} == {
            **model.objects.values().get(pk=expected.pk), "id": None}


def test_a_batch_gives_back_what_its_own_statements_return_beside_its_rows(case_owned_by_alice):
    # given a batch with a row and two statements of its own, one that changes two rows and one that changes none
    table = connection.ops.quote_name(CaseEvent._meta.db_table)
    events = [CaseEvent.objects.create(**case_event_values(case_owned_by_alice)) for _ in range(2)]
    update = f"UPDATE {table} SET text = %s WHERE case_id = %s RETURNING id"
    with CaptureQueriesContext(connection) as captured, InsertBatch() as batch:
        changed = batch.add_returning(update, ["edited", case_owned_by_alice.pk])
        none = batch.add_returning(update, ["never", -1])
        event = batch.add(PreparedInsert(AuditEvent), AuditEvent(**audit_values()))
    # then what each statement returned and the row's key are known when the block ends; on PostgreSQL
    # all in one statement
    assert sorted(changed.values) == sorted(e.pk for e in events) and none.values == []
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert set(CaseEvent.objects.values_list("text", flat=True)) == {"edited"}
    written = [q["sql"] for q in captured.captured_queries if "UPDATE" in q["sql"] or "INSERT" in q["sql"]]
    assert len(written) == (1 if connection.vendor == "postgresql" else 3)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL keeps rows for the block's end")
def test_a_batch_whose_block_fails_writes_nothing(case_owned_by_alice):
    # given a batch with rows kept, and a block that then fails
    before = (AuditEvent.objects.count(), CaseEvent.objects.count())
    with pytest.raises(RuntimeError), InsertBatch() as batch:  # noqa: PT012
        batch.add(PreparedInsert(AuditEvent), AuditEvent(**audit_values()))
        batch.add(PreparedInsert(CaseEvent), CaseEvent(**case_event_values(case_owned_by_alice)))
        raise RuntimeError("the change failed")
    # then none of its rows was written
    assert (AuditEvent.objects.count(), CaseEvent.objects.count()) == before


def test_a_prepared_insert_refuses_an_expression_and_writes_nothing():
    # given an expression as a value, which would change the SQL
    before = AuditEvent.objects.count()
    # when it is inserted, then it is refused and no row is written
    with pytest.raises(NotPreparable):
        PreparedInsert(AuditEvent).create(**audit_values(object_id=Value("12")))
    assert AuditEvent.objects.count() == before


def _team_cases(shape, *, team_id: int):
    return Case.objects.filter(team_id=team_id).order_by("pk")


_TEAM_CASES = PreparedQuery(_team_cases, ints=("team_id",))


def visible_read(user, pk):
    return case_visible_read(fresh(user), pk, related=RELATED)


def test_reads_sent_together_give_what_each_gives_alone_in_one_statement(alice, carol, retention, billing):
    # given alice's case, and three cases of the billing team
    own = CaseFactory(owner=alice, team=retention)
    billing_cases = CaseFactory.create_batch(3, owner=carol, team=billing)
    read_together(visible_read(alice, own.pk), _TEAM_CASES.bound(team_id=billing.pk))  # compiled once
    # when the visibility read of alice's case and the billing team's cases are sent together
    reads = visible_read(alice, own.pk), _TEAM_CASES.bound(team_id=billing.pk)
    with CaptureQueriesContext(connection) as captured:
        cases, team_cases = read_together(*reads)
    # then one statement gives each read's instances, each once, as the reads give them alone
    assert len(captured) == 1
    alone = visible_read(alice, own.pk).all()
    assert [case.pk for case in cases] == [case.pk for case in alone] == [own.pk]
    assert cases[0].customer == alone[0].customer and cases[0].owner.username == "alice"
    assert sorted(case.pk for case in team_cases) == [case.pk for case in billing_cases]
    assert {case.subject for case in team_cases} == {case.subject for case in _TEAM_CASES.all(team_id=billing.pk)}


def test_an_empty_read_sent_together_empties_no_other(alice, carol, retention, billing):
    # given carol's case, which alice may not see, and a team without cases
    hidden = CaseFactory(owner=carol, team=billing)
    # when alice's visibility read of it is sent with the billing team's cases, and with the empty team's
    cases, team_cases = read_together(visible_read(alice, hidden.pk), _TEAM_CASES.bound(team_id=billing.pk))
    none, nothing = read_together(visible_read(alice, hidden.pk), _TEAM_CASES.bound(team_id=retention.pk))
    # then the empty read is empty and the other whole
    assert cases == [] and [case.pk for case in team_cases] == [hidden.pk]
    assert none == [] and nothing == []


def test_reads_sent_together_in_another_order_or_shape_each_get_their_own_columns(alice, carol, retention, billing):
    # given alice's case and carol's billing case, and the same two reads already sent together once
    own = CaseFactory(owner=alice, team=retention)
    billing_case = CaseFactory(owner=carol, team=billing)
    read_together(visible_read(alice, own.pk), _TEAM_CASES.bound(team_id=billing.pk))
    # when they are sent again, then in the other order, then after a read of fewer columns
    again = read_together(visible_read(alice, own.pk), _TEAM_CASES.bound(team_id=billing.pk))
    swapped = read_together(_TEAM_CASES.bound(team_id=billing.pk), visible_read(alice, own.pk))
    narrow = case_visible_read(fresh(carol), billing_case.pk, related=())
    shifted = read_together(narrow, visible_read(alice, own.pk))
    # then each statement's columns are split where its own reads end
    assert [[case.pk for case in read] for read in again] == [[own.pk], [billing_case.pk]]
    assert [[case.pk for case in read] for read in swapped] == [[billing_case.pk], [own.pk]]
    assert [[case.pk for case in read] for read in shifted] == [[billing_case.pk], [own.pk]]
    for read in (swapped[1], shifted[1]):
        assert read[0].customer == own.customer and read[0].owner.username == "alice" and read[0].team == retention
