"""Shared fixtures: a clean organisation cache, the database vendor, and the demo cast."""

import importlib
import os
from contextlib import contextmanager
from io import StringIO

import pytest
from django.db import DatabaseError, IntegrityError, ProgrammingError, connection, transaction

from h2h_core.models import Role
from h2h_core.organisation import forget_organisation

from .factories import CaseFactory, TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _fresh_organisation():
    forget_organisation()
    yield
    forget_organisation()


@pytest.fixture(autouse=True)
def _fresh_rate_counters():
    """Start every test with empty API rate counters (they live in Django's cache, and ids repeat across tests)."""
    from django.core.cache import cache

    cache.clear()


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` are about PostgreSQL's behaviour: on another database they are skipped.

    A transactional test must also ask for serialized_rollback: its flush empties the tables the
    migrations filled, and without it the next test that restores them collides with the rows the
    flush's post-migrate step recreated under new ids (content types, first of all).
    """
    unsafe = [item.nodeid for item in items if _flushes_without_restoring(item)]
    if unsafe:
        raise pytest.UsageError("transactional tests need serialized_rollback=True: " + ", ".join(unsafe))
    if on_postgres():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip)


def _flushes_without_restoring(item) -> bool:
    marker = item.get_closest_marker("django_db")
    if marker is None:
        return False
    return bool(marker.kwargs.get("transaction")) and not marker.kwargs.get("serialized_rollback")


@pytest.fixture
def retention(db):
    return TeamFactory(name="Retention", slug="retention")


@pytest.fixture
def billing(db):
    return TeamFactory(name="Billing", slug="billing")


@pytest.fixture
def carol(billing):
    user = UserFactory(username="carol", roles=[Role.AGENT])
    billing.members.add(user)
    return user


@pytest.fixture
def alice(retention):
    user = UserFactory(username="alice", roles=[Role.AGENT])
    retention.members.add(user)
    return user


@pytest.fixture
def maria(retention):
    from guardian.shortcuts import assign_perm

    user = UserFactory(username="maria", roles=[Role.MANAGER])
    assign_perm("h2h_core.manage_team", user, retention)
    return user


@pytest.fixture
def case_owned_by_alice(alice, retention):
    return CaseFactory(owner=alice, team=retention)


# --- The append-only audit tables ------------------------------------------------------------------
# Migration 0003 installs triggers that refuse UPDATE, DELETE and TRUNCATE on the audit tables. Two
# places in the tests must get past them on purpose: tamper tests (to play the attacker) and the
# flush that ends every transactional test (it empties every table).


def audit_trigger_sql():
    """Return the migration module that holds the current trigger SQL (one definition for app and tests)."""
    return importlib.import_module("h2h_core.migrations.0013_audit_tree")


def _on_postgres_superuser() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        return bool(cursor.fetchone()[0])


@contextmanager
def _audit_triggers_bypassed():
    """Switch the audit triggers off for the enclosed statements, inside the test's transaction.

    PostgreSQL: SET LOCAL session_replication_role = replica (superusers only; the test is skipped
    otherwise). SQLite: drop the triggers and create them again afterwards; SQLite DDL is
    transactional, so the test's rollback would restore them in any case.
    """
    assert connection.in_atomic_block, "bypass the audit triggers only inside the test's transaction"
    sql = audit_trigger_sql()
    with connection.cursor() as cursor:
        if on_postgres():
            if TEST_DB_ROLE:
                # Acting as the application role: the attacker is the session's own user, the owner.
                cursor.execute("SET LOCAL ROLE NONE")
            if not _on_postgres_superuser():
                pytest.skip("bypassing the audit triggers on PostgreSQL needs a superuser "
                            "(session_replication_role); the test database user is not one")
            cursor.execute("SET LOCAL session_replication_role = replica")
        else:
            for statement in sql.SQLITE_REMOVE:
                cursor.execute(statement)
    yield
    with connection.cursor() as cursor:
        if on_postgres():
            cursor.execute("SET LOCAL session_replication_role = origin")
            if TEST_DB_ROLE:
                cursor.execute(f"SET LOCAL ROLE {connection.ops.quote_name(TEST_DB_ROLE)}")
        else:
            for statement in sql.SQLITE_INSTALL:
                cursor.execute(statement)


@pytest.fixture
def bypass_audit_triggers(db):
    """Return a context manager under which audit rows can be changed: for playing the attacker."""
    return _audit_triggers_bypassed


@pytest.fixture
def audit_refusal():
    """Return a pytest.raises for a refused change to an audit row.

    The owner (the suite's usual user) is refused by the append-only triggers; the application
    role (H2H_TEST_DB_ROLE) is refused earlier, by its privileges, before any trigger runs.
    """

    def refused(match: str = "append-only"):
        if TEST_DB_ROLE and on_postgres():
            # The role may set an event's chain link (the sealer's columns): the trigger refuses that.
            return pytest.raises((ProgrammingError, IntegrityError),
                                 match=f"permission denied for table h2h_core_audit|{match}")
        return pytest.raises(IntegrityError, match=match)

    return refused


def _uses_transactional_db(request) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:

        def transactional(transaction=False, reset_sequences=False, *args, **kwargs):
            return transaction or reset_sequences

        if transactional(*marker.args, **marker.kwargs):
            return True
    return not {"transactional_db", "django_db_reset_sequences", "live_server"}.isdisjoint(request.fixturenames)


@pytest.fixture(autouse=True)
def _audit_tables_flushable(request):
    """Let the flush that ends a transactional test empty the append-only audit tables.

    Requesting transactional_db here makes this fixture's teardown run before pytest-django's,
    which flushes the database. PostgreSQL: the flush TRUNCATEs, so this switches the session to
    session_replication_role = replica; Django closes the connection right after the flush, which
    ends the setting. SQLite: the flush DELETEs row by row, so this empties the two audit tables
    itself with their triggers dropped and recreated in one transaction; the flush then finds
    nothing to refuse and the triggers stay in place for the next test.
    """
    if not _uses_transactional_db(request):
        yield
        return
    request.getfixturevalue("transactional_db")
    yield
    if on_postgres():
        try:
            with connection.cursor() as cursor:
                if TEST_DB_ROLE:
                    cursor.execute("SET ROLE NONE")  # the flush is the owner's job, not the application's
                cursor.execute("SET session_replication_role = replica")
        except DatabaseError as error:
            raise RuntimeError(
                "transactional tests on PostgreSQL need a test user that may set session_replication_role "
                "(a superuser, or GRANT SET ON PARAMETER session_replication_role) to flush the audit tables"
            ) from error
    elif connection.vendor == "sqlite":
        sql = audit_trigger_sql()
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in sql.SQLITE_REMOVE:
                cursor.execute(statement)
            for table in sql.AUDIT_TABLES:
                cursor.execute(f"DELETE FROM {table}")
            for statement in sql.SQLITE_INSTALL:
                cursor.execute(statement)


# --- Running as the application's least-privilege role (PostgreSQL) --------------------------------
# H2H_TEST_DB_ROLE=h2h_app: the test database is created and migrated by the connecting user (its
# owner), then `manage.py db_app_role` sets the role up and every later connection acts as it
# (PostgreSQL's `role` setting at session start, i.e. SET ROLE), as app servers and workers do in
# production. The flush and the tamper fixture switch back to the owner (SET ROLE NONE), because
# emptying or rewriting the audit tables is exactly what the role must not be able to do.
TEST_DB_ROLE = os.environ.get("H2H_TEST_DB_ROLE", "")

if TEST_DB_ROLE:

    @pytest.fixture(scope="session")
    def django_db_setup(django_db_setup, django_db_blocker):
        from django.core.management import call_command
        from django.db import connections

        if connection.vendor != "postgresql":
            raise pytest.UsageError("H2H_TEST_DB_ROLE needs PostgreSQL: set DATABASE_URL as well")
        with django_db_blocker.unblock():
            call_command("db_app_role", role=TEST_DB_ROLE, stdout=StringIO())
            connection.close()
        options = connection.settings_dict.setdefault("OPTIONS", {})
        owner_options = options.get("options")
        options["options"] = f"{owner_options or ''} -c role={TEST_DB_ROLE}".strip()
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == TEST_DB_ROLE, "the tests do not act as the application role"
        connection.close()
        yield
        # The owner drops the test database.
        if owner_options is None:
            del options["options"]
        else:
            options["options"] = owner_options
        with django_db_blocker.unblock():
            for each in connections.all(initialized_only=True):
                each.close()


def pytest_configure(config):
    """Hash test passwords quickly: the default hasher costs about 0.3 s per user by design."""
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
