"""Make the audit tables append-only in the database itself.

Triggers refuse UPDATE and DELETE on every row of the audit events and checkpoints (and TRUNCATE
on PostgreSQL), whoever sends the statement: the ORM, raw SQL or a database console. Only a
PostgreSQL superuser (session_replication_role = replica) or the owner of the tables (who may drop
the triggers) gets past them; see docs/audit.md.

The SQL lives in the constants below so the test suite can drop and recreate the SQLite triggers
inside a test transaction (tests/conftest.py). Other database vendors get no triggers.
"""

from django.db import migrations

AUDIT_TABLES = ("h2h_core_auditevent", "h2h_core_auditcheckpoint")

POSTGRESQL_FUNCTION = "h2h_audit_refuse_change"

POSTGRESQL_INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION {POSTGRESQL_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation', HINT = 'See docs/audit.md.';
    END;
    $$
    """,
    *(
        statement
        for table in AUDIT_TABLES
        for statement in (
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION {POSTGRESQL_FUNCTION}()",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {POSTGRESQL_FUNCTION}()",
        )
    ),
]

POSTGRESQL_REMOVE = [
    *(
        statement
        for table in AUDIT_TABLES
        for statement in (
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        )
    ),
    f"DROP FUNCTION IF EXISTS {POSTGRESQL_FUNCTION}()",
]

# RAISE(ABORT, ...) fails the statement with SQLITE_CONSTRAINT, which Django raises as IntegrityError,
# the same class PostgreSQL's restrict_violation maps to. SQLite has no TRUNCATE: a DELETE without
# WHERE fires the row trigger like any other DELETE.
SQLITE_INSTALL = [
    f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} BEGIN"
    f" SELECT RAISE(ABORT, 'the audit log is append-only: {operation} on {table} refused'); END"
    for table in AUDIT_TABLES
    for operation in ("UPDATE", "DELETE")
]

SQLITE_REMOVE = [
    f"DROP TRIGGER IF EXISTS {table}_no_{operation.lower()}"
    for table in AUDIT_TABLES
    for operation in ("UPDATE", "DELETE")
]

INSTALL = {"postgresql": POSTGRESQL_INSTALL, "sqlite": SQLITE_INSTALL}
REMOVE = {"postgresql": POSTGRESQL_REMOVE, "sqlite": SQLITE_REMOVE}


def install_triggers(apps, schema_editor):
    for statement in INSTALL.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


def remove_triggers(apps, schema_editor):
    for statement in REMOVE.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("h2h_core", "0002_roles_organisation_audit_head")]
    operations = [migrations.RunPython(install_triggers, remove_triggers)]
