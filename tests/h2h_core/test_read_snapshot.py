"""`read_snapshot`: long reads (verifying the chain) see one state and hold no writer up."""

import pytest
from django.db import DatabaseError, connection, transaction

from h2h_core.models import Team
from h2h_core.transactions import read_snapshot


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_on_sqlite_the_snapshot_begins_deferred_and_the_immediate_mode_comes_back():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's transaction modes")
    connection.ensure_connection()
    assert connection.transaction_mode == "IMMEDIATE"  # the settings: writers never fail on an upgrade
    executed = []
    with read_snapshot():
        assert connection.in_atomic_block and connection.transaction_mode == "DEFERRED"
        executed.append(Team.objects.count())
    assert connection.transaction_mode == "IMMEDIATE" and executed == [0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_on_postgresql_the_snapshot_is_read_only_and_repeatable():
    with pytest.raises(DatabaseError, match="read-only"), read_snapshot():
        Team.objects.create(name="Sneaky", slug="sneaky")
    assert not Team.objects.filter(slug="sneaky").exists()
    with read_snapshot(), connection.cursor() as cursor:
        cursor.execute("SHOW transaction_isolation")
        assert cursor.fetchone()[0] == "repeatable read"
    assert not transaction.get_connection().in_atomic_block
