"""Querysets compiled once per process, then run with fresh values: a hot read without the ORM's CPU.

Building a queryset and compiling it to SQL costs more CPU than running it against a small indexed
table: the authority check spent most of its time there. A PreparedQuery builds its queryset once
with stand-in values, compiles it once per database alias and shape, and afterwards sends that SQL
with the real values in the stand-ins' places, making model instances (select_related included)
the way the queryset itself would.

Only values whose SQL does not depend on them can be stand-ins (ids, exact texts, instants):
compiling checks this by building the queryset a second time with other stand-ins and refusing if
the SQL differs or a stand-in's place is ambiguous. Anything that changes the SQL belongs in the
`shape` key. The compiled SQL is kept for the life of the process: it depends only on the models.

h2h_core.prepared_writes does the same for the INSERTs and UPDATEs of the hottest rows.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.models.sql.compiler import SQLCompiler

# Values no query of ours holds as a constant (negative ids, an odd microsecond in 2001, a control
# character), two sets apart.
_STAND_IN_INT = (-7_301_001, -7_302_001)
_STAND_IN_TEXT = ("\x1fstand-in-a-", "\x1fstand-in-b-")
_STAND_IN_AT = (datetime(2001, 2, 3, 4, 5, 6, 789_012, tzinfo=UTC), datetime(2001, 3, 4, 5, 6, 7, 890_123, tzinfo=UTC))


class NotPreparable(Exception):
    """The queryset's SQL depends on a stand-in's value, or a stand-in's place in it is ambiguous."""


@dataclass(frozen=True)
class _Compiled:
    compiler: SQLCompiler
    sql: str
    # Per parameter: the stand-in's name, or None for a constant kept from compiling.
    slots: tuple[str | None, ...]
    constants: tuple
    fetch_mode: object = None  # Django 6's queryset fetch mode (None before it had one)
    # The columns' converters, found once: results_iter looks them up on every call (0.2 ms per read
    # under cProfile). None where a composite key's columns need results_iter's own handling.
    converters: dict | None = None

    def selected(self, rows: list) -> list:
        """The rows without the columns the SQL adds only to order by (a DISTINCT query's extra select)."""
        if rows and self.compiler.has_extra_select:
            return [row[: self.compiler.col_count] for row in rows]
        return rows

    def converted(self, rows: list, *, tuple_expected: bool = False):
        """The rows as `compiler.results_iter([rows], tuple_expected=...)` gives them."""
        if self.converters is None:
            return self.compiler.results_iter([rows], tuple_expected=tuple_expected)
        if not self.converters:
            return rows
        converted = self.compiler.apply_converters(rows, self.converters)
        return map(tuple, converted) if tuple_expected else converted


class PreparedQuery:
    """`build(shape, **values)` returns the queryset; values named in `ints` are ids, in `texts` strings
    compared as they are (no LIKE), in `instants` aware datetimes. Those in `unused_in_some_shapes` may
    be left out of some shapes' SQL; a value missing from the SQL is otherwise refused (it was changed on
    the way, as in a LIKE pattern, or forgotten)."""

    def __init__(self, build: Callable[..., QuerySet], *, ints: tuple[str, ...] = (), texts: tuple[str, ...] = (),
                 instants: tuple[str, ...] = (), unused_in_some_shapes: tuple[str, ...] = ()):
        self._build = build
        self._optional = set(unused_in_some_shapes)
        self._ints = ints
        self._texts = texts
        self._instants = instants
        self._compiled: dict[tuple[str, Hashable], _Compiled] = {}

    def all(self, *, shape: Hashable = None, using: str = "default", **values) -> list[Model]:
        """The model instances the queryset would give."""
        compiled, rows = self._run(shape, using, values)
        return _instances(compiled, rows, using)

    def bound(self, *, shape: Hashable = None, using: str = "default", **values) -> Bound:
        """The read with these values, not yet run: to be sent with others in one statement (`read_together`)."""
        compiled, params = self._bound(shape, using, values)
        return Bound(compiled, params, using)

    def rows(self, *, shape: Hashable = None, using: str = "default", **values) -> list[tuple]:
        """The rows of a values_list() queryset, as tuples (also for flat=True)."""
        compiled, rows = self._run(shape, using, values)
        return list(compiled.converted(rows, tuple_expected=True)) if rows else []

    def _bound(self, shape: Hashable, using: str, values: dict) -> tuple[_Compiled, list]:
        connection = connections[using]
        compiled = self._compiled.get((using, shape))
        if compiled is None:
            compiled = self._compiled[(using, shape)] = self._compile(connection, shape)
        adapted = self._adapted(connection, values)
        params = [adapted[slot] if slot is not None else constant
                  for slot, constant in zip(compiled.slots, compiled.constants, strict=True)]
        return compiled, params

    def _run(self, shape: Hashable, using: str, values: dict) -> tuple[_Compiled, list]:
        compiled, params = self._bound(shape, using, values)
        return compiled, Bound(compiled, params, using).rows()

    def first(self, *, shape: Hashable = None, using: str = "default", **values) -> Model | None:
        found = self.all(shape=shape, using=using, **values)
        return found[0] if found else None

    def get(self, *, shape: Hashable = None, using: str = "default", **values) -> Model:
        """As `QuerySet.get`: the one instance, else the model's DoesNotExist (or MultipleObjectsReturned)."""
        compiled, rows = self._run(shape, using, values)
        found = _instances(compiled, rows, using)
        if len(found) == 1:
            return found[0]
        model = compiled.compiler.query.model
        if not found:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        raise model.MultipleObjectsReturned(f"get() returned more than one {model._meta.object_name}.")

    def _stand_ins(self, which: int) -> dict:
        return {**{name: _STAND_IN_INT[which] - i for i, name in enumerate(self._ints)},
                **{name: f"{_STAND_IN_TEXT[which]}{i}" for i, name in enumerate(self._texts)},
                **{name: _STAND_IN_AT[which] + timedelta(seconds=i) for i, name in enumerate(self._instants)}}

    def _adapted(self, connection, values: dict) -> dict:
        # As a lookup on a DateTimeField passes an aware instant to the database (text on SQLite).
        adapted = {name: int(values[name]) for name in self._ints}
        adapted.update((name, str(values[name])) for name in self._texts)
        for name in self._instants:
            adapted[name] = connection.ops.adapt_datetimefield_value(values[name])
        return adapted

    def _compile(self, connection, shape: Hashable) -> _Compiled:
        compiled = [self._compile_with(connection, shape, which) for which in (0, 1)]
        first, second = compiled
        if first.sql != second.sql or first.slots != second.slots or first.constants != second.constants:
            raise NotPreparable(f"The SQL of {self._build.__qualname__} depends on its values.")
        if {*self._ints, *self._texts, *self._instants} - self._optional - set(first.slots):
            raise NotPreparable(f"{self._build.__qualname__} does not use every value it names.")
        return first

    def _compile_with(self, connection, shape: Hashable, which: int) -> _Compiled:
        stand_ins = self._stand_ins(which)
        queryset = self._build(shape, **stand_ins)
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        adapted = self._adapted(connection, stand_ins)
        slots, constants = [], []
        for param in params:
            names = [name for name, value in adapted.items() if type(value) is type(param) and value == param]
            if len(names) > 1:
                raise NotPreparable(f"{self._build.__qualname__}: a parameter matches several values.")
            slots.append(names[0] if names else None)
            constants.append(None if names else param)
        columns = [column[0] for column in compiler.select[: compiler.col_count]]
        converters = None if compiler.has_composite_fields(columns) else compiler.get_converters(columns)
        return _Compiled(compiler, sql, tuple(slots), tuple(constants), getattr(queryset, "_fetch_mode", None),
                         converters)


@dataclass(frozen=True)
class Bound:
    """A prepared read with its values: run alone (`all`, `first`) or with others (`read_together`)."""

    compiled: _Compiled
    params: list
    using: str

    def rows(self) -> list:
        """The rows as the database sends them, less the columns added only to order by."""
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.compiled.sql, self.params)
            return self.compiled.selected(cursor.fetchall())

    def all(self) -> list[Model]:
        return _instances(self.compiled, self.rows(), self.using)

    def first(self) -> Model | None:
        found = self.all()
        return found[0] if found else None


_END = "h2h_end_of_read_"


def read_together(*reads: Bound) -> list[list[Model]]:
    """The instances of each read, as its `all()` gives them, from one statement: one round trip, not one per read.

    For reads that do not depend on each other's results, of a row or a few each: the statement
    joins them (LEFT JOIN ... ON TRUE, after a one-row anchor so that an empty read empties no other),
    so it returns the product of their rows. A read's rows come back once each, but not necessarily
    in its ORDER BY: a caller that needs an order restores it (a LIMIT within a read still applies
    its ORDER BY). A marker column after each read's columns tells where its columns end, whatever
    the SQL adds to them.
    """
    using = {read.using for read in reads}
    if len(using) != 1:
        raise ValueError("Reads sent together must use one database.")
    (using,) = using
    joins = " ".join(f"LEFT JOIN ({read.compiled.sql}) AS r{i} ON TRUE" for i, read in enumerate(reads))
    columns = ", ".join(f'r{i}.*, 1 AS "{_END}{i}"' for i in range(len(reads)))
    sql = f'SELECT {columns} FROM (SELECT 1 AS "anchor") AS anchor {joins}'
    with connections[using].cursor() as cursor:
        cursor.execute(sql, [param for read in reads for param in read.params])
        rows = cursor.fetchall()
        ends = _ENDS.get(sql)
        if ends is None:
            if len(_ENDS) >= _ENDS_KEPT:
                _ENDS.clear()
            ends = _ENDS[sql] = _marker_positions(cursor.description, len(reads))
    found = []
    start = 0
    for read, end in zip(reads, ends, strict=True):
        own = []
        for row in rows:
            # Each of the read's rows once (compared, not hashed: a column may hold a list), in the order
            # first met; all NULL is the join finding none.
            part = row[start:end]
            if part not in own and any(value is not None for value in part):
                own.append(part)
        found.append(_instances(read.compiled, read.compiled.selected(own), using))
        start = end + 1
    return found


# Where each read's columns end, by statement: the same SQL always has the same columns, and psycopg builds
# the cursor's description afresh at every call (for a check's hundred columns, a tenth of its CPU).
# The statements are a few shapes of a few compiled reads; a bound keeps it small whatever callers do.
_ENDS: dict[str, tuple[int, ...]] = {}
_ENDS_KEPT = 256


def _marker_positions(description, count: int) -> tuple[int, ...]:
    names = [column[0] for column in description]
    return tuple(names.index(f"{_END}{i}") for i in range(count))


def _instances(compiled: _Compiled, rows: list, db: str) -> list[Model]:
    """Model instances from rows, as ModelIterable makes them from its compiler's (select_related too).

    Django 6 gives querysets a fetch mode, which the loader passes to each instance and populator.
    """
    if not rows:
        return []
    compiler, fetch_mode = compiled.compiler, compiled.fetch_mode
    select, klass_info, annotations = compiler.select, compiler.klass_info, compiler.annotation_col_map
    model = klass_info["model"]
    start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
    init_list = [column[0].target.attname for column in select[start:end]]
    if fetch_mode is None:
        populators = get_related_populators(klass_info, select, db)
        from_db = model.from_db
    else:
        populators = get_related_populators(klass_info, select, db, fetch_mode)
        from_db = partial(model.from_db, fetch_mode=fetch_mode)
    found, peers = [], []
    for row in compiled.converted(rows):
        obj = from_db(db, init_list, row[start:end])
        if getattr(fetch_mode, "track_peers", False):
            peers.append(weakref.ref(obj))
            obj._state.peers = peers
        for populator in populators:
            populator.populate(row, obj)
        for name, position in (annotations or {}).items():
            setattr(obj, name, row[position])
        found.append(obj)
    return found


def joining(queryset: QuerySet, related: tuple[str, ...]) -> QuerySet:
    """Return `queryset` joining exactly the `related` relations: none joins nothing.

    `select_related()` with no names joins every non-null relation (and Django 6.1 deprecates the
    call), so a caller that passes an empty tuple through would join what it never reads.
    """
    return queryset.select_related(*related) if related else queryset
