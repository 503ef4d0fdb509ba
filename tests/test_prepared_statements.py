"""On PostgreSQL, statements a connection runs repeatedly are prepared on the server (planned once)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from h2h_core.models import Customer

ROOT = Path(__file__).resolve().parent.parent
SHOW_OPTIONS = ("import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'h2h_core.settings'; "
                "from django.conf import settings; print(json.dumps(settings.DATABASES['default'].get('OPTIONS', {})))")


def _options(**environment: str) -> dict:
    env = {name: value for name, value in os.environ.items() if name != "H2H_PREPARED_STATEMENTS"}
    env.update(environment)
    result = subprocess.run([sys.executable, "-c", SHOW_OPTIONS], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_postgresql_connections_bind_on_the_server_and_prepare_repeated_statements():
    # given a PostgreSQL database and nothing said about prepared statements
    # when the settings are read
    options = _options(DATABASE_URL="postgres://h2h@db.example:5432/h2h")

    # then parameters are bound on the server and a statement run a fifth time is prepared
    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == 5


def test_prepared_statements_can_be_turned_off_for_a_pooler_that_cannot_keep_them():
    options = _options(DATABASE_URL="postgres://h2h@db.example:5432/h2h", H2H_PREPARED_STATEMENTS="0")
    assert "server_side_binding" not in options and "prepare_threshold" not in options


def test_sqlite_is_left_as_it_was():
    options = _options(DATABASE_URL="sqlite:///h2h.sqlite3")
    assert "server_side_binding" not in options and "prepare_threshold" not in options


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_read_run_repeatedly_is_planned_once_on_postgresql():
    # given a connection that has run a read of customers five times with different values
    for pk in range(1, 6):
        list(Customer.objects.filter(pk=pk, name="prepared-statement probe"))

    # when it runs it again
    list(Customer.objects.filter(pk=99, name="prepared-statement probe"))

    # then the server holds it as a prepared statement, its values bound apart from the SQL
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
                       ["%h2h_core_customer%"])
        statements = [row[0] for row in cursor.fetchall()]
    assert any("$1" in statement and "probe" not in statement for statement in statements), statements
