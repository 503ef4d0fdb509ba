"""Consume usage counters exactly: never past a cap, in key order, and all of them or none.

PostgreSQL raises every counter of a decision in one statement (INSERT … ON CONFLICT DO UPDATE …
WHERE used fits the cap … RETURNING), which a decision sends with its own row (an InsertBatch).
SQLite, whose transactions hold the whole database's write lock, keeps the plain path: INSERT …
ON CONFLICT DO NOTHING, then one conditional UPDATE per counter. Either way a consumption that could
not raise every counter lowers again those it raised, so that what its transaction reads next (the
fresh verdict a refusal states) is as it was.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

from django.db import connection
from django.db.models import F

from authority.models import UsageCounter
from authority.policy.verdict import Consumption
from h2h_core.prepared_writes import InsertBatch


def usage_consume(*, consumptions: list[Consumption], kind_id: int, agent_id: int | None, case_id: int | None) -> bool:
    """Raise every counter by its amount, never past its cap. Return False, having raised none, if one would
    overflow.

    Must run inside the caller's transaction, which rolls back on False. Counters are created or
    raised in key order, the fixed lock order that keeps concurrent decisions free of deadlocks.
    """
    with InsertBatch() as batch:
        consumed = usage_consume_batched(batch=batch, consumptions=consumptions, kind_id=kind_id,
                                         agent_id=agent_id, case_id=case_id)
    return consumed.succeeded()


def usage_consume_batched(*, batch: InsertBatch, consumptions: list[Consumption], kind_id: int,
                          agent_id: int | None, case_id: int | None) -> Consumed:
    """`usage_consume` with the counters raised by `batch`'s statement, beside the rows it writes
    (PostgreSQL; elsewhere at once). Ask `succeeded()` once the batch has run; when it is False, the
    caller rolls back, the batch's rows with it.
    """
    ordered = sorted(consumptions, key=lambda c: c.key)
    if not ordered or any(c.cap is not None and c.amount > c.cap for c in ordered):
        return Consumed(ordered, list)  # nothing to raise, or over a cap even at zero: nothing to ask the database
    one_per_key = len({c.key for c in ordered}) == len(ordered)  # one statement may touch a row only once
    if connection.vendor == "postgresql" and one_per_key:
        rows = [_counter(c, kind_id=kind_id, agent_id=agent_id, case_id=case_id, used=c.amount) for c in ordered]
        by_key = {c.key: c for c in ordered}
        returned = batch.add_returning(*_upsert(rows, ordered))
        return Consumed(ordered, lambda: [by_key[key] for key in returned.values])
    UsageCounter.objects.bulk_create(
        [_counter(c, kind_id=kind_id, agent_id=agent_id, case_id=case_id, used=0) for c in ordered],
        ignore_conflicts=True,
    )
    raised = []
    for consumption in ordered:
        counters = UsageCounter.objects.filter(key=consumption.key)
        if consumption.cap is not None:
            counters = counters.filter(used__lte=consumption.cap - consumption.amount)
        if counters.update(used=F("used") + consumption.amount) != 1:
            break
        raised.append(consumption)
    return Consumed(ordered, lambda: raised)


class Consumed:
    """The counters a consumption raised, known once its statement has run."""

    def __init__(self, ordered: list[Consumption], raised: Callable[[], list[Consumption]]):
        self._ordered = ordered
        self._raised = raised
        self._answer: bool | None = None

    def succeeded(self) -> bool:
        """True if every counter was raised; if not, lower again those that were (once), and return False."""
        if self._answer is None:
            raised = self._raised()
            self._answer = len(raised) == len(self._ordered)
            if not self._answer:
                _lower(raised)
        return self._answer


def _lower(raised: list[Consumption]) -> None:
    """Take back what `raised` added to its counters (a consumption that could not raise them all: rare)."""
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for consumption in raised:
        amounts[consumption.key] += consumption.amount
    for key, amount in sorted(amounts.items()):
        UsageCounter.objects.filter(key=key).update(used=F("used") - amount)


def _counter(c: Consumption, *, kind_id: int, agent_id: int | None, case_id: int | None, used) -> UsageCounter:
    return UsageCounter(
        key=c.key,
        scope=c.scope,
        kind_id=kind_id,
        agent_id=agent_id if c.scope == UsageCounter.Scope.PERIOD else None,
        case_id=case_id if c.scope == UsageCounter.Scope.CASE else None,
        grant_id=c.grant_id,
        period=c.period,
        bucket_start=c.bucket_start,
        currency=c.currency,
        used=used,
    )


_COLUMNS = ("key", "scope", "kind_id", "agent_id", "case_id", "grant_id", "period", "bucket_start", "currency",
            "used")


def _upsert(rows: list[UsageCounter], ordered: list[Consumption]) -> tuple[str, list]:
    """The statement that inserts each counter at its amount, or raises it where it still fits its cap,
    returning one row per counter it raised.

    A row whose cap would be passed is left as it is (locked, not raised) and is not returned. The
    rows go in key order, and PostgreSQL takes their locks in that order.
    """
    table = connection.ops.quote_name(UsageCounter._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(name) for name in _COLUMNS)
    one_row = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    fits = " ".join(f"WHEN %s THEN {table}.used <= %s" for c in ordered if c.cap is not None)
    condition = f"CASE EXCLUDED.key {fits} ELSE TRUE END" if fits else "TRUE"
    sql = (f"INSERT INTO {table} ({columns}) VALUES {', '.join([one_row] * len(rows))} "
           f"ON CONFLICT (key) DO UPDATE SET used = {table}.used + EXCLUDED.used WHERE {condition} RETURNING key")
    params: list = []
    for row in rows:
        params.extend(getattr(row, name) for name in _COLUMNS)
    for c in ordered:
        if c.cap is not None:
            params.extend((c.key, c.cap - c.amount))
    return sql, params
