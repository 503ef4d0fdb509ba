"""The application's PostgreSQL role does the application's work and nothing that could rewrite the audit log.

The role is cluster-wide, so these tests make their own (a random name, dropped at the end) rather
than touching `h2h_app`, which a parallel run may be acting as (H2H_TEST_DB_ROLE).
"""

import os
import secrets
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, ProgrammingError, connection, transaction

from authority.models import Decision
from authority.services import decision_execute
from h2h_core.audit import audit_record, audit_seal
from h2h_core.audit.checkpoint import audit_checkpoint_create, generate_signing_key
from h2h_core.audit.verify import verify_chain
from h2h_core.models import AuditCheckpoint, AuditEvent, AuditHead
from h2h_core.services import case_add_note
from tests.factories import GrantFactory, kind

on_postgres = pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="the application role is a PostgreSQL role (set DATABASE_URL)")
PASSWORD_ENV = "H2H_TEST_APP_ROLE_PASSWORD"


def run_command(*args) -> str:
    out = StringIO()
    call_command("db_app_role", *args, stdout=out)
    return out.getvalue()


def sql(statement: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params or None)
        return cursor.fetchall() if cursor.description else None


def may(role: str, table: str, privilege: str) -> bool:
    return sql("SELECT has_table_privilege(%s, %s, %s)", [role, table, privilege])[0][0]


@pytest.fixture(scope="module")
def app_role(django_db_setup, django_db_blocker):
    """Create a throwaway application role with a password (committed: it logs in on its own)."""
    name, password = f"h2h_app_test_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    with django_db_blocker.unblock():
        connection.close()  # a fresh session acts as the owner, even when the suite runs as a role
        sql("SET ROLE NONE")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(PASSWORD_ENV, password)
            run_command("--role", name, "--password-env", PASSWORD_ENV)
        connection.close()
    yield name, password
    with django_db_blocker.unblock():
        sql("SET ROLE NONE")
        sql(f'DROP OWNED BY "{name}"')
        sql(f'DROP ROLE "{name}"')
        connection.close()


@pytest.fixture
def as_role(app_role):
    """Return a connection that logged in as the application role, as an app server does."""
    import psycopg

    name, password = app_role
    settings = connection.settings_dict
    role_connection = psycopg.connect(dbname=settings["NAME"], host=settings["HOST"] or None,
                                      port=settings["PORT"] or None, user=name, password=password)
    yield role_connection
    role_connection.close()


@pytest.fixture
def signing_key(tmp_path, settings):
    settings.H2H_AUDIT_SIGNING_KEY = tmp_path / "audit_signing_key.pem"
    return generate_signing_key(settings.H2H_AUDIT_SIGNING_KEY)


def audit_rows() -> list[dict]:
    return [*AuditEvent.objects.values(), *AuditCheckpoint.objects.values(), *AuditHead.objects.values()]


# --- What the role may do ----------------------------------------------------------------------------


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_the_role_does_the_applications_work(app_role, alice, case_owned_by_alice, signing_key):
    # given alice may refund 500 per case, and the session now acts as the application role
    GrantFactory(subject_user=alice)
    name, _ = app_role
    sql(f'SET LOCAL ROLE "{name}"')
    assert sql("SELECT current_user")[0][0] == name
    # when she notes, refunds, and the chain is signed and verified
    case_add_note(actor=alice, case=case_owned_by_alice, text="Called the customer")
    decision = decision_execute(actor=alice, case=case_owned_by_alice, kind=kind("refund"), amount="200",
                                currency="EUR", rationale="double charge")
    audit_checkpoint_create()
    report = verify_chain()
    # then all of it was written, appended to the chain, and verifies
    assert Decision.objects.get(pk=decision.pk).amount == Decimal("200")
    assert report.ok and report.total == AuditEvent.objects.count() >= 3
    assert AuditCheckpoint.objects.count() == 1


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_the_role_owns_nothing_and_may_become_nobody_else(app_role):
    # given the application role
    name, _ = app_role
    # then it has none of the attributes that get past privileges
    attributes = sql("SELECT rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolreplication, rolbypassrls, "
                     "rolcanlogin FROM pg_roles WHERE rolname = %s", [name])
    assert attributes == [(False, False, False, False, False, False, True)]
    # and it owns no table, nor belongs to a role that does
    owners = sql("SELECT DISTINCT pg_get_userbyid(relowner)::text FROM pg_class c JOIN pg_namespace n "
                 "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r' "
                 "AND pg_has_role(%s, relowner, 'MEMBER')", [name])
    assert owners == []
    # and on the audit tables it may read and append, move the head, and nothing else
    for table in ("h2h_core_auditevent", "h2h_core_auditcheckpoint"):
        assert [may(name, table, p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")] == [
            True, True, False, False, False]
    # and of an event it may set only the chain link, which the sealer adds after commit
    columns = [column for (column,) in sql("SELECT column_name FROM information_schema.columns "
                                           "WHERE table_name = 'h2h_core_auditevent'")]
    updatable = {column for column in columns
                 if sql("SELECT has_column_privilege(%s, 'h2h_core_auditevent', %s, 'UPDATE')", [name, column])[0][0]}
    assert updatable == {"seq", "prev_hash", "hash", "sealed_at"}
    assert [may(name, "h2h_core_audithead", p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")] == [
        True, True, True, False, False]
    assert [may(name, "django_migrations", p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE")] == [
        True, False, False, False]
    assert [may(name, "h2h_core_case", p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")] == [
        True, True, True, True, False]


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_the_role_seals_events_but_cannot_alter_a_sealed_one(app_role):
    # given the session acts as the application role, and an event waits for its chain link
    name, _ = app_role
    sql(f'SET LOCAL ROLE "{name}"')
    with transaction.atomic():
        audit_record(actor=None, action="case.note_added", object_type="case", object_id=1)
    # when the role runs the sealer
    sealed = audit_seal()
    # then the event is linked into the chain
    event = AuditEvent.objects.get()
    assert sealed == 1 and event.seq == 1 and verify_chain().ok
    before = AuditEvent.objects.values().get()
    # and the role can neither relink the sealed event (the trigger) nor touch another column (its privileges)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        sql("UPDATE h2h_core_auditevent SET seq = 5, hash = repeat('a', 64) WHERE id = %s", [event.pk])
    with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
        sql("UPDATE h2h_core_auditevent SET reason = 'rewritten' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.values().get() == before


# --- What the role may not do --------------------------------------------------------------------------

REFUSED = {
    "update an event": "UPDATE h2h_core_auditevent SET reason = 'rewritten'",
    "delete an event": "DELETE FROM h2h_core_auditevent",
    "update a checkpoint": "UPDATE h2h_core_auditcheckpoint SET hash = repeat('0', 64)",
    "delete a checkpoint": "DELETE FROM h2h_core_auditcheckpoint",
    "delete the head": "DELETE FROM h2h_core_audithead",
    "truncate the events": "TRUNCATE h2h_core_auditevent",
    "truncate the checkpoints": "TRUNCATE h2h_core_auditcheckpoint",
    "truncate the head": "TRUNCATE h2h_core_audithead",
    "disable the triggers": "ALTER TABLE h2h_core_auditevent DISABLE TRIGGER USER",
    "disable all triggers": "ALTER TABLE h2h_core_auditcheckpoint DISABLE TRIGGER ALL",
    "drop a trigger": "DROP TRIGGER h2h_core_auditevent_append_only ON h2h_core_auditevent",
    "drop the audit table": "DROP TABLE h2h_core_auditevent",
    "drop a table": "DROP TABLE h2h_core_case CASCADE",
    "switch triggers off for the session": "SET session_replication_role = replica",
    "become the owner": "SET ROLE {owner}",
    "fake a migration": "INSERT INTO django_migrations (app, name, applied) VALUES ('h2h_core', 'x', now())",
}


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("attempt", REFUSED, ids=str)
def test_the_role_cannot_rewrite_the_audit_log_or_the_schema(attempt, as_role, signing_key):
    import psycopg

    # given committed audit events, a checkpoint and the head
    for index in range(2):
        with transaction.atomic():
            audit_record(actor=None, action="case.note_added", object_type="case", object_id=index)
    audit_checkpoint_create()
    before = audit_rows()
    owner = sql("SELECT tableowner FROM pg_tables WHERE tablename = 'h2h_core_auditevent'")[0][0]
    # when the application role tries it
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role.transaction():
        as_role.execute(REFUSED[attempt].format(owner=f'"{owner}"'))
    # then it is refused for want of privilege, and nothing changed
    assert audit_rows() == before
    assert verify_chain().ok


# --- The command --------------------------------------------------------------------------------------


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_running_again_takes_back_what_was_granted_by_hand(app_role):
    # given someone granted the role more on the audit log than it needs
    name, _ = app_role
    sql("SET LOCAL ROLE NONE")
    sql(f'GRANT UPDATE, DELETE, TRUNCATE ON h2h_core_auditevent, h2h_core_audithead TO "{name}"')
    assert may(name, "h2h_core_auditevent", "UPDATE")
    # when the command runs again
    run_command("--role", name)
    # then the role has exactly its privileges again
    assert not any(may(name, "h2h_core_auditevent", p) for p in ("UPDATE", "DELETE", "TRUNCATE"))
    assert not any(may(name, "h2h_core_audithead", p) for p in ("DELETE", "TRUNCATE"))
    assert may(name, "h2h_core_audithead", "UPDATE") and may(name, "h2h_core_auditevent", "INSERT")


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_a_table_a_later_migration_creates_is_usable_at_once(app_role):
    # given the command ran, then the owner created a table (as a migration would)
    name, _ = app_role
    sql("SET LOCAL ROLE NONE")
    sql("CREATE TABLE h2h_core_later (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)")
    # then the role may use it, but not truncate it
    assert [may(name, "h2h_core_later", p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")] == [
        True, True, True, True, False]


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_the_printed_sql_sets_up_the_same_role_without_its_password():
    # given a role name nobody uses (creating a role is transactional: the test's rollback removes it)
    name = f"h2h_app_printed_{secrets.token_hex(4)}"
    sql("SET LOCAL ROLE NONE")
    # when the owner prints the SQL and runs it
    printed = run_command("--role", name, "--print-sql")
    body = [line for line in printed.splitlines() if line not in ("BEGIN;", "COMMIT;") and not line.startswith("--")]
    sql("\n".join(body))  # several statements in one query, as psql would send them
    # then the role exists with the application's privileges, and no password was printed
    assert "PASSWORD" not in printed
    assert may(name, "h2h_core_auditevent", "INSERT") and not may(name, "h2h_core_auditevent", "UPDATE")
    assert may(name, "h2h_core_case", "DELETE") and not may(name, "h2h_core_case", "TRUNCATE")


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_an_existing_role_with_more_attributes_is_refused_and_left_alone():
    # given a role of that name that may create databases
    name = f"h2h_app_wide_{secrets.token_hex(4)}"
    sql("SET LOCAL ROLE NONE")
    sql(f'CREATE ROLE "{name}" LOGIN NOINHERIT CREATEDB')
    # when the command is asked to set it up
    with pytest.raises(CommandError, match=f"role {name} exists with other attributes"):
        run_command("--role", name)
    # then it was given nothing
    assert not may(name, "h2h_core_case", "SELECT")


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_the_owner_itself_is_refused_as_the_application_role():
    # given the session acts as the owner
    sql("SET LOCAL ROLE NONE")
    owner = sql("SELECT current_user")[0][0]
    # when the owner names itself
    with pytest.raises(CommandError, match="Run this as the owner of the tables"):
        run_command("--role", owner)


@pytest.mark.django_db
def test_a_missing_password_variable_is_a_clear_error(monkeypatch):
    # given the password variable is not set
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    # when the command is asked to read it, then it refuses before touching anything
    expected = "not set or empty" if connection.vendor == "postgresql" else "PostgreSQL only"
    with pytest.raises(CommandError, match=expected):
        run_command("--role", "h2h_app_unused", "--password-env", PASSWORD_ENV)


@pytest.mark.django_db
def test_on_sqlite_the_command_explains_it_is_for_postgresql():
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite answer")
    # when the command runs on SQLite, then it explains and fails (manage.py exits 1 on CommandError)
    with pytest.raises(CommandError, match="applies to PostgreSQL only; this database is sqlite"):
        run_command("--role", "h2h_app")


@on_postgres
@pytest.mark.postgres
@pytest.mark.django_db
def test_with_h2h_test_db_role_the_suite_acts_as_that_role():
    role = os.environ.get("H2H_TEST_DB_ROLE")
    if not role:
        pytest.skip("the suite runs as the database owner (set H2H_TEST_DB_ROLE to run it as the application role)")
    # then every query of the suite runs as the application role, which may not rewrite the audit log
    assert sql("SELECT current_user")[0][0] == role
    assert not may(role, "h2h_core_auditevent", "UPDATE")
