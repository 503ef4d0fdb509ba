"""INSERTs and UPDATEs of the hottest rows, their SQL compiled once per process (as h2h_core.prepared reads).

Django builds and compiles a new INSERT or UPDATE for every `create()` and `save()`; for a small row
that costs more CPU than the database spends on it. Every audited write appends an event, every
decision writes its row, and the flows save each of their tasks three to five times, so those go
through here. The instance is prepared exactly as `save()` prepares it (defaults, each field's
`pre_save`, `get_db_prep_save`), and every concrete field is sent, as Django's own statements send
them; only the statement's text is kept.

No save signal is sent. PreparedInsert does not look for receivers, so only models without save()
overrides or receivers may use it; PreparedSave checks for receivers on each save and leaves the
instance to Django's `save()` when there are any, or when the instance is one it would not write
the same way (deferred fields, an expression as a value, a row that is not there any more).
"""

from __future__ import annotations

from typing import NamedTuple

from django.db import connections, transaction
from django.db.models import NOT_PROVIDED, Model
from django.db.models.signals import post_save, pre_save
from django.db.models.sql import InsertQuery

from .prepared import NotPreparable


def _field_params(fields, instance: Model, connection, *, add: bool) -> list | None:
    """The fields' values as `save()` sends them (`pre_save`, then `get_db_prep_save`); None if one is an
    expression, which would change the statement."""
    values = [field.pre_save(instance, add) for field in fields]
    if any(hasattr(value, "resolve_expression") for value in values):
        return None
    return [field.get_db_prep_save(value, connection) for field, value in zip(fields, values, strict=True)]


class PreparedInsert:
    """`Model.objects.create(**values)` for one hot model, its INSERT compiled once per database alias.

    The instance is built as `create` builds it (defaults, each field's `pre_save`) and every concrete
    field is sent as Django's own INSERT sends it; the new key comes back by RETURNING. No save()
    override or save signal runs, so only a model without them may use it; values must be plain
    (an expression would change the SQL) and no field may have a database default.
    """

    def __init__(self, model: type[Model]):
        self.model = model
        meta = model._meta.concrete_model._meta  # a proxy's rows are its concrete model's, as save() writes them
        self._fields = tuple(field for field in meta.concrete_fields if field is not meta.auto_field)
        if any(getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED for field in self._fields):
            raise NotPreparable(f"{meta.label} has a field with a database default.")
        if any(getattr(field, "generated", False) for field in self._fields):
            raise NotPreparable(f"{meta.label} has a generated field.")
        self._sql: dict[str, str] = {}

    def create(self, *, using: str = "default", **values) -> Model:
        return self.insert(self.model(**values), using=using)

    def insert(self, instance: Model, *, using: str = "default") -> Model:
        """Insert the new `instance` (its key unset) as `save()` would, and return it with its key."""
        connection = connections[using]
        sql, params = self.statement(instance, connection)
        meta = self.model._meta.concrete_model._meta
        with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
            cursor.execute(sql, params)
            if connection.features.can_return_columns_from_insert:
                (pk,) = cursor.fetchone()
            else:  # an SQLite before 3.35
                pk = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
        return _inserted(instance, pk, using)

    def statement(self, instance: Model, connection) -> tuple[str, list]:
        """The INSERT of `instance` (RETURNING its key where the database can) and its parameters."""
        sql = self._sql.get(connection.alias)
        if sql is None:
            sql = self._sql[connection.alias] = self._compile(connection)
        params = _field_params(self._fields, instance, connection, add=True)
        if params is None:
            raise NotPreparable(f"An expression changes the INSERT of {self.model._meta.label}.")
        return sql, params

    def _compile(self, connection) -> str:
        concrete = self.model._meta.concrete_model
        query = InsertQuery(concrete)
        query.insert_values(self._fields, [concrete()])
        ((sql, params),) = query.get_compiler(connection=connection).as_sql()
        if sql.count("%s") != len(self._fields) or len(params) != len(self._fields):
            raise NotPreparable(f"The INSERT of {self.model._meta.label} is not one placeholder per field.")
        if not connection.features.can_return_columns_from_insert:
            return sql
        return f"{sql} RETURNING {connection.ops.quote_name(concrete._meta.pk.column)}"


def _inserted(instance: Model, pk, using: str) -> Model:
    instance.pk = pk
    instance._state.adding = False
    instance._state.db = using
    return instance


class Returned:
    """What a statement of an InsertBatch returned, the first column of each row: set once the batch has run."""

    values: list | None = None


class _Row(NamedTuple):
    prepared: PreparedInsert
    instance: Model


class _Statement(NamedTuple):
    sql: str
    params: list
    returned: Returned


class InsertBatch:
    """New rows of hot models, inserted together when the block ends: on PostgreSQL in one statement.

    A decision raises its counters and writes its own row, then writes its outbox message, its case
    event and its audit event; nothing reads what those statements return before they all have run,
    and each was a round trip of its own. Inside `with InsertBatch() as batch:`,
    `batch.add(prepared, instance)` keeps a row, and `batch.add_returning(sql, params)` keeps a
    statement of its own (an INSERT or UPDATE … RETURNING one column); leaving the block without an
    error runs them all in one statement of data-modifying CTEs (`WITH r0 AS (INSERT … RETURNING id),
    r1 AS (…) SELECT (SELECT id FROM r0), (SELECT array_agg(t.c) FROM r1 AS t(c)), …`), in the order
    they were added, and sets the rows' keys and what the statements returned. The rows must not
    refer to each other (the CTEs run as one statement, on one snapshot), and a key or a returned
    value is unset until the block ends. An error inside the block discards what it kept, with the
    transaction it is failing. On other databases each is run at once: there a round trip costs next
    to nothing.
    """

    def __init__(self, *, using: str = "default"):
        self.using = using
        self._together = connections[using].vendor == "postgresql"
        self._kept: list[_Row | _Statement] = []

    def __enter__(self) -> InsertBatch:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.flush()

    def add(self, prepared: PreparedInsert, instance: Model) -> Model:
        """Keep the new `instance` for the batch's INSERT (elsewhere than on PostgreSQL: insert it now)."""
        if not self._together:
            return prepared.insert(instance, using=self.using)
        self._kept.append(_Row(prepared, instance))
        return instance

    def add_returning(self, sql: str, params: list) -> Returned:
        """Keep `sql` (one INSERT or UPDATE … RETURNING) for the batch; what it returns is set once it has run."""
        returned = Returned()
        if self._together:
            self._kept.append(_Statement(sql, params, returned))
        else:
            connection = connections[self.using]
            with transaction.mark_for_rollback_on_error(self.using), connection.cursor() as cursor:
                cursor.execute(sql, params)
                returned.values = [row[0] for row in cursor.fetchall()]
        return returned

    def flush(self) -> None:
        """Run what was kept (one statement), and set the rows' keys and what the statements returned."""
        kept, self._kept = self._kept, []
        if not kept:
            return
        if len(kept) == 1 and isinstance(kept[0], _Row):
            kept[0].prepared.insert(kept[0].instance, using=self.using)
            return
        connection = connections[self.using]
        ctes, results, params = [], [], []
        for i, item in enumerate(kept):
            if isinstance(item, _Row):
                sql, item_params = item.prepared.statement(item.instance, connection)
                pk = connection.ops.quote_name(item.prepared.model._meta.concrete_model._meta.pk.column)
                results.append(f"(SELECT {pk} FROM r{i})")
            else:
                sql, item_params = item.sql, item.params
                results.append(f"(SELECT array_agg(t.c) FROM r{i} AS t(c))")
            ctes.append(f"r{i} AS ({sql})")
            params.extend(item_params)
        with transaction.mark_for_rollback_on_error(self.using), connection.cursor() as cursor:
            cursor.execute(f"WITH {', '.join(ctes)} SELECT {', '.join(results)}", params)
            values = cursor.fetchone()
        for item, value in zip(kept, values, strict=True):
            if isinstance(item, _Row):
                _inserted(item.instance, value, self.using)
            else:
                item.returned.values = list(value or ())


class PreparedSave:
    """`instance.save()` (no arguments) for one hot model: its INSERT and its UPDATE compiled once.

    A new instance is inserted (PreparedInsert); a stored one is written whole, every field but the
    key, by `UPDATE … SET … WHERE key = %s`, as `save()` writes it. `save()` returns False, having
    written nothing, where Django's own save must do the work: a receiver of the model's save signals,
    deferred fields, an expression as a value, another database than the instance's, or an UPDATE that
    found no row (Django then inserts it).
    """

    def __init__(self, model: type[Model]):
        self.model = model
        self._insert = PreparedInsert(model)
        meta = model._meta.concrete_model._meta
        self._fields = tuple(field for field in meta.concrete_fields if not field.primary_key)
        if any(hasattr(field, "get_placeholder") for field in self._fields):
            raise NotPreparable(f"A field of {meta.label} writes its own placeholder.")
        self._sql: dict[str, str] = {}

    def save(self, instance: Model, *, using: str = "default") -> bool:
        model = type(instance)
        if pre_save.has_listeners(model) or post_save.has_listeners(model):
            return False
        if instance._state.db not in (None, using) or instance.get_deferred_fields():
            return False
        instance._prepare_related_fields_for_save(operation_name="save")
        if instance._state.adding and instance.pk is None:
            try:
                self._insert.insert(instance, using=using)
            except NotPreparable:  # refused before anything was sent
                return False
            return True
        if instance.pk is None:
            return False
        connection = connections[using]
        sql = self._sql.get(using)
        if sql is None:
            sql = self._sql[using] = self._update_sql(connection)
        params = _field_params(self._fields, instance, connection, add=False)
        if params is None:
            return False
        params.append(self.model._meta.concrete_model._meta.pk.get_db_prep_value(instance.pk, connection))
        with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.rowcount != 1:
                return False
        instance._state.adding = False
        instance._state.db = using
        return True

    def _update_sql(self, connection) -> str:
        quote = connection.ops.quote_name
        meta = self.model._meta.concrete_model._meta
        columns = ", ".join(f"{quote(field.column)} = %s" for field in self._fields)
        return f"UPDATE {quote(meta.db_table)} SET {columns} WHERE {quote(meta.pk.column)} = %s"
