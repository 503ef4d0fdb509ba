"""Create or update the least-privilege PostgreSQL role the application connects as.

The role that ran `migrate` owns the tables, and an owner can switch the audit triggers off
(`ALTER TABLE … DISABLE TRIGGER`) or drop them. App servers and workers therefore connect as a
role that owns nothing: it reads and writes the application's rows, only appends to the audit
log, and cannot truncate, alter or drop anything. See README.md, "Production".

Run by the owner after every `migrate`: every run converges the role's privileges to what the
current schema needs, so a table a migration added is covered, and an audit table a migration
added is limited to SELECT and INSERT. `--print-sql` prints the statements instead.
"""

import importlib
import os
import re

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from h2h_core.models import AuditHead

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS"
READ_WRITE = "SELECT, INSERT, UPDATE, DELETE"
# Events and checkpoints are only ever inserted and read (h2h_core/audit/record.py, checkpoint.py)...
APPEND_ONLY = "SELECT, INSERT"
# ...except the chain link of an event, which the sealer sets once after commit (h2h_core/audit/sealer.py);
# the event table's trigger refuses any other change, and every change to a sealed row.
SEAL_COLUMNS = ("seq", "prev_hash", "hash", "sealed_at")
SEALED_TABLE = "h2h_core_auditevent"
# The head row moves with every event; the first writer on an empty database inserts it.
HEAD = "SELECT, INSERT, UPDATE"
# Migrations are the owner's business; the application only asks which ones ran (system checks).
MIGRATIONS_TABLE = "django_migrations"


def audit_triggers():
    """Return migration 0003, the one definition of the append-only tables and their trigger function."""
    return importlib.import_module("h2h_core.migrations.0003_audit_append_only")


def append_only_tables(cursor, schema: str) -> list[str]:
    """Name the append-only audit tables: migration 0003's, and any table its trigger function guards."""
    sql = audit_triggers()
    cursor.execute(
        "SELECT DISTINCT c.relname FROM pg_trigger t"
        " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_proc p ON p.oid = t.tgfoid WHERE n.nspname = %s AND p.proname = %s",
        [schema, sql.POSTGRESQL_FUNCTION],
    )
    return sorted(set(sql.AUDIT_TABLES) | {name for (name,) in cursor.fetchall()})


def role_sql(*, role: str, database: str, schema: str, append_only: list[str], head: str) -> list[str]:
    """Return the statements that create the role if missing and set exactly its privileges."""

    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def tables(names) -> str:
        return ", ".join(f"{q(schema)}.{q(name)}" for name in names)

    # Role names are checked against ROLE_NAME, so they are safe inside a string literal.
    literal_schema = schema.replace("'", "''")
    return [
        # An existing role is checked, not altered: changing SUPERUSER needs a superuser, and a role
        # with more than it needs, or one that may become the tables' owner (SET ROLE works for
        # members even under NOINHERIT), would defeat the point. The operator fixes it and re-runs.
        f"""DO $$
DECLARE
    existing record;
    owners text;
BEGIN
    SELECT * INTO existing FROM pg_roles WHERE rolname = '{role}';
    IF NOT FOUND THEN
        CREATE ROLE {q(role)} {ROLE_ATTRIBUTES};
    ELSIF existing.rolsuper OR existing.rolcreatedb OR existing.rolcreaterole OR existing.rolinherit
            OR existing.rolreplication OR existing.rolbypassrls OR NOT existing.rolcanlogin THEN
        RAISE EXCEPTION 'role {role} exists with other attributes than {ROLE_ATTRIBUTES}'
            USING HINT = 'As a superuser: ALTER ROLE {role} {ROLE_ATTRIBUTES}; then run this again.';
    END IF;
    SELECT string_agg(DISTINCT pg_get_userbyid(owner)::text, ', ') INTO owners FROM (
        SELECT c.relowner AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = '{literal_schema}' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
        UNION SELECT nspowner FROM pg_namespace WHERE nspname = '{literal_schema}'
    ) AS owned WHERE pg_has_role('{role}', owner, 'MEMBER');
    IF owners IS NOT NULL THEN
        RAISE EXCEPTION 'role {role} is, or is a member of, the owner of the schema or its tables (%)', owners
            USING HINT = 'The application role must own nothing: pick another name, or REVOKE the membership.';
    END IF;
END
$$""",
        f"GRANT CONNECT ON DATABASE {q(database)} TO {q(role)}",
        f"GRANT USAGE ON SCHEMA {q(schema)} TO {q(role)}",
        # Revoking first makes a re-run converge: nothing granted by hand or by default privileges survives.
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {q(schema)} FROM {q(role)}",
        f"GRANT {READ_WRITE} ON ALL TABLES IN SCHEMA {q(schema)} TO {q(role)}",
        f"REVOKE ALL ON TABLE {tables([*append_only, head, MIGRATIONS_TABLE])} FROM {q(role)}",
        f"GRANT {APPEND_ONLY} ON TABLE {tables(append_only)} TO {q(role)}",
        f"GRANT UPDATE ({', '.join(SEAL_COLUMNS)}) ON TABLE {tables([SEALED_TABLE])} TO {q(role)}",
        f"GRANT {HEAD} ON TABLE {tables([head])} TO {q(role)}",
        f"GRANT SELECT ON TABLE {tables([MIGRATIONS_TABLE])} TO {q(role)}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {q(schema)} FROM {q(role)}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {q(schema)} TO {q(role)}",
        # Tables a later migration creates are usable before this command runs again; a new audit
        # table is guarded by its triggers meanwhile and narrowed to SELECT, INSERT by the re-run.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {q(schema)} GRANT {READ_WRITE} ON TABLES TO {q(role)}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {q(schema)} GRANT USAGE, SELECT ON SEQUENCES TO {q(role)}",
    ]


class Command(BaseCommand):
    help = (
        "Create (if missing) the least-privilege PostgreSQL role app servers and workers connect as, "
        "and set its privileges: read and write the application's tables, only append to the audit "
        "log, own nothing. Run it as the owner after every migrate; it is safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--role", default="h2h_app", help="Name of the application role (default h2h_app).")
        parser.add_argument("--password-env", metavar="VAR",
                            help="Set the role's password from this environment variable.")
        parser.add_argument("--print-sql", action="store_true",
                            help="Print the SQL for the owner to run instead of running it.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default).")

    def handle(self, *args, role: str, password_env: str | None, print_sql: bool, database: str, **options):
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError(
                f"db_app_role applies to PostgreSQL only; this database is {connection.vendor}. "
                "On SQLite the application opens the database file itself, and anyone who can write "
                "that file can change it: protect the file instead."
            )
        if not ROLE_NAME.match(role):
            raise CommandError("The role name must be lower-case letters, digits and underscores, "
                               "starting with a letter or underscore, at most 63 characters.")
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"The environment variable {password_env} is not set or empty.")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database(), current_schema(), current_user")
            database_name, schema, current_user = cursor.fetchone()
            if role == current_user:
                raise CommandError(f"You are connected as {role}. Run this as the owner of the tables "
                                   "(the role that ran migrate), naming another role for the application.")
            head = AuditHead._meta.db_table
            if head not in connection.introspection.table_names(cursor):
                raise CommandError("The tables are not there yet: run `manage.py migrate` first.")
            append_only = append_only_tables(cursor, schema)
        statements = role_sql(role=role, database=database_name, schema=schema, append_only=append_only, head=head)
        if print_sql:
            self.stdout.write("BEGIN;")
            for statement in statements:
                self.stdout.write(statement + ";")
            self.stdout.write("COMMIT;")
            self.stdout.write(f"-- Then set its password, e.g. in psql: \\password {role}")
            return
        try:
            with transaction.atomic(using=database), connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                if password is not None:
                    # A utility statement takes no bound parameters (they are sent apart from the
                    # SQL when statements are prepared on the server): the password is quoted here.
                    cursor.execute(connection.ops.compose_sql(
                        f"ALTER ROLE {connection.ops.quote_name(role)} PASSWORD %s", [password]))
        except DatabaseError as error:  # a refusal of the checks above, or missing rights: nothing was changed
            raise CommandError(f"Nothing was changed: {error}".strip()) from error
        self.stdout.write(
            f"Role {role} on {database_name}.{schema}: {READ_WRITE} on the application's tables; "
            f"{APPEND_ONLY} on {', '.join(append_only)}; UPDATE ({', '.join(SEAL_COLUMNS)}) on {SEALED_TABLE}; "
            f"{HEAD} on {head}; SELECT on {MIGRATIONS_TABLE}; "
            "USAGE, SELECT on sequences. Run this again after every migrate."
        )
