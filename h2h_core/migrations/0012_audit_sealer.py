"""Events are sealed into the chain after commit (PostgreSQL): the triggers allow exactly that one change.

An event is written with its chain link empty (seq NULL); the sealer (h2h_core/audit/sealer.py)
later sets seq, prev_hash, hash and sealed_at, once. The event table's UPDATE trigger now lets
through exactly that: a row going from unsealed to sealed that changes nothing else. A sealed
row, and every checkpoint row, is refused as before; DELETE and TRUNCATE always are. Migration
0003 stays the definition of the checkpoint table's triggers and of the function db_app_role
recognises the audit tables by.

The SQL lives in the constants below (the complete set for both tables, as in 0003) so the test
suite can drop and recreate the SQLite triggers inside a test transaction (tests/conftest.py).
"""

import importlib

from django.db import migrations, models
from django.db.models import Q

APPEND_ONLY = importlib.import_module("h2h_core.migrations.0003_audit_append_only")
AUDIT_TABLES = APPEND_ONLY.AUDIT_TABLES
EVENTS = "h2h_core_auditevent"
SEAL_COLUMNS = ("seq", "prev_hash", "hash", "sealed_at")
# Every other column of the event table: the seal must leave each as it was.
KEPT_COLUMNS = ("id", "occurred_at", "actor_id", "actor_username", "actor_roles", "action", "object_type",
                "object_id", "outcome", "before", "after", "reason", "ip", "request_id")
POSTGRESQL_FUNCTION = "h2h_audit_event_seal_only"
_SEAL_ARRAY = "ARRAY[" + ", ".join(f"'{column}'" for column in SEAL_COLUMNS) + "]"

POSTGRESQL_INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION {POSTGRESQL_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.sealed_at IS NOT NULL
                AND NEW.hash <> '' AND NEW.prev_hash <> ''
                AND to_jsonb(NEW) - {_SEAL_ARRAY} = to_jsonb(OLD) - {_SEAL_ARRAY} THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation', HINT = 'See docs/audit.md.';
    END;
    $$
    """,
    f"DROP TRIGGER IF EXISTS {EVENTS}_append_only ON {EVENTS}",
    f"CREATE TRIGGER {EVENTS}_append_only BEFORE UPDATE OR DELETE ON {EVENTS}"
    f" FOR EACH ROW EXECUTE FUNCTION {POSTGRESQL_FUNCTION}()",
]

POSTGRESQL_REMOVE = [
    f"DROP TRIGGER IF EXISTS {EVENTS}_append_only ON {EVENTS}",
    f"CREATE TRIGGER {EVENTS}_append_only BEFORE UPDATE OR DELETE ON {EVENTS}"
    f" FOR EACH ROW EXECUTE FUNCTION {APPEND_ONLY.POSTGRESQL_FUNCTION}()",
    f"DROP FUNCTION IF EXISTS {POSTGRESQL_FUNCTION}()",
]

_UNCHANGED = " AND ".join(f"NEW.{column} IS OLD.{column}" for column in KEPT_COLUMNS)
_SEALING = f"OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.sealed_at IS NOT NULL AND {_UNCHANGED}"


def _sqlite_trigger(table: str, operation: str) -> str:
    when = f" WHEN NOT ({_SEALING})" if (table, operation) == (EVENTS, "UPDATE") else ""
    return (f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}{when} BEGIN"
            f" SELECT RAISE(ABORT, 'the audit log is append-only: {operation} on {table} refused'); END")


SQLITE_INSTALL = [_sqlite_trigger(table, operation) for table in AUDIT_TABLES for operation in ("UPDATE", "DELETE")]
SQLITE_REMOVE = APPEND_ONLY.SQLITE_REMOVE

INSTALL = {"postgresql": POSTGRESQL_INSTALL, "sqlite": [*SQLITE_REMOVE, *SQLITE_INSTALL]}
REMOVE = {"postgresql": POSTGRESQL_REMOVE, "sqlite": [*SQLITE_REMOVE, *APPEND_ONLY.SQLITE_INSTALL]}


def install_triggers(apps, schema_editor):
    # On SQLite the table was just rebuilt (seq became nullable), which dropped its triggers.
    for statement in INSTALL.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


def remove_triggers(apps, schema_editor):
    for statement in REMOVE.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)



class Migration(migrations.Migration):

    dependencies = [
        ('h2h_core', '0011_ai_agent_role'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='auditevent',
            options={'ordering': [models.OrderBy(models.F('seq'), nulls_last=True), 'id']},
        ),
        migrations.AddField(
            model_name='auditevent',
            name='sealed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='prev_hash',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='seq',
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(condition=Q(('seq__isnull', True)), fields=['id'], name='auditevent_unsealed'),
        ),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
