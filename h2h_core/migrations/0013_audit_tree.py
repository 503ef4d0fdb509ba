"""The Merkle tree over the sealed chain (h2h_core/audit/tree.py): its nodes, its size, the signed root.

AuditTreeNode rows are append-only like the events: the trigger function of migration 0003 guards
them (UPDATE, DELETE, TRUNCATE), which is also how `manage.py db_app_role` finds them and grants
the application role only SELECT and INSERT there. A checkpoint that signs a root (v2) keeps it in
`root_hash`; older checkpoints keep it empty and verify as v1.

On SQLite, adding the checkpoint's column rebuilds its table, which drops its triggers: every audit
trigger is dropped and installed again here. AUDIT_TABLES, SQLITE_INSTALL and SQLITE_REMOVE are the
current set the test suite uses (tests/conftest.py).
"""

import importlib

from django.db import migrations, models

APPEND_ONLY = importlib.import_module("h2h_core.migrations.0003_audit_append_only")
SEALER = importlib.import_module("h2h_core.migrations.0012_audit_sealer")
NODES = "h2h_core_audittreenode"
AUDIT_TABLES = (*APPEND_ONLY.AUDIT_TABLES, NODES)

POSTGRESQL_INSTALL = [
    f"CREATE TRIGGER {NODES}_append_only BEFORE UPDATE OR DELETE ON {NODES}"
    f" FOR EACH ROW EXECUTE FUNCTION {APPEND_ONLY.POSTGRESQL_FUNCTION}()",
    f"CREATE TRIGGER {NODES}_no_truncate BEFORE TRUNCATE ON {NODES}"
    f" FOR EACH STATEMENT EXECUTE FUNCTION {APPEND_ONLY.POSTGRESQL_FUNCTION}()",
]
POSTGRESQL_REMOVE = [
    f"DROP TRIGGER IF EXISTS {NODES}_append_only ON {NODES}",
    f"DROP TRIGGER IF EXISTS {NODES}_no_truncate ON {NODES}",
]

SQLITE_INSTALL = [
    *SEALER.SQLITE_INSTALL,
    *(f"CREATE TRIGGER {NODES}_no_{operation.lower()} BEFORE {operation} ON {NODES} BEGIN"
      f" SELECT RAISE(ABORT, 'the audit log is append-only: {operation} on {NODES} refused'); END"
      for operation in ("UPDATE", "DELETE")),
]
SQLITE_REMOVE = [
    *SEALER.SQLITE_REMOVE,
    *(f"DROP TRIGGER IF EXISTS {NODES}_no_{operation.lower()}" for operation in ("UPDATE", "DELETE")),
]

INSTALL = {"postgresql": POSTGRESQL_INSTALL, "sqlite": [*SQLITE_REMOVE, *SQLITE_INSTALL]}
REMOVE = {"postgresql": POSTGRESQL_REMOVE, "sqlite": [*SQLITE_REMOVE, *SEALER.SQLITE_INSTALL]}


def install_triggers(apps, schema_editor):
    for statement in INSTALL.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


def remove_triggers(apps, schema_editor):
    for statement in REMOVE.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("h2h_core", "0012_audit_sealer"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditTreeNode",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("level", models.PositiveSmallIntegerField()),
                ("index", models.BigIntegerField()),
                ("hash", models.CharField(max_length=64)),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("level", "index"), name="audittreenode_position")],
            },
        ),
        migrations.AddField(
            model_name="audithead",
            name="tree_size",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="auditcheckpoint",
            name="root_hash",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
