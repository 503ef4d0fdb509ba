"""The row locks of the core domain: which rows, in which order, and never more rows than named.

Every row a transaction reads and then writes is locked through a helper of its domain
(`h2h_core.lock_objects`, `authority.lock_objects`, `workflows.lock_objects`). Each helper orders
by primary key and locks `of=("self",)`: a `select_related` join adds columns to the query, never
locks to the transaction (without `of`, PostgreSQL would lock the joined customer row with its
case, and every decision on that customer's cases would queue behind every other).

The one lock order, for every transaction that takes more than one lock:

1. the workflow process row (`workflows.lock_objects`), when a workflow step or timer runs;
2. the case row (`case_qs_select_for_update`);
3. the authority rows (`authority.lock_objects`): an authority request, a grant version (a pending
   version before the version it replaces), a delegation, a webhook endpoint; or an account and
   its API token (`user_qs_select_for_update`, `api_token_qs_select_for_update`), each alone; or
   an AI agent and then its account (`ai_agent_qs_select_for_update`, then the account's helper); a
   decision by an AI agent shares its AI agent row (`ai_agent_suspended_under_share_lock`);
4. the usage counters, in key order, each by its conditional UPDATE (`authority.services.usage`).

The audit event is written last, in the change's own transaction (rule 7), by `audit_record`: on
PostgreSQL one INSERT that takes no lock beyond its new row, so writers never queue behind each
other for the audit log and the append can take part in no deadlock. Its chain link is added after
commit, within a bounded lag, by the sealer (`h2h_core.audit.sealer.audit_seal`), the one taker of
the audit head (`audit_head_qs_select_for_update`) besides the checkpoint signing: each holds the
head in a transaction of its own that locks nothing else, so the head waits for no other lock.
On SQLite, where one writer runs at a time, `audit_record` still takes the head itself, last, and
links the event at once.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet

from .models import AiAgent, ApiToken, AuditHead, Case
from .prepared import PreparedQuery, joining


def case_qs_select_for_update() -> QuerySet[Case]:
    """Return cases to lock, in key order; the rows joined by select_related stay unlocked."""
    return Case.objects.order_by("pk").select_for_update(of=("self",))


def _case_to_lock(related: tuple[str, ...], *, pk: int) -> QuerySet[Case]:
    return joining(case_qs_select_for_update(), related).filter(pk=pk)


_CASE_TO_LOCK = PreparedQuery(_case_to_lock, ints=("pk",))


def case_locked(pk: int, *, related: tuple[str, ...] = ()) -> Case:
    """Lock case `pk` and return it as read under the lock, with the `related` rows joined (not locked).

    `case_qs_select_for_update().select_related(*related).get(pk=pk)`, compiled once per process
    (h2h_core.prepared): almost every step and service takes this lock, and building the query cost
    more CPU than running it.
    """
    return _CASE_TO_LOCK.get(shape=related, pk=pk)


def user_qs_select_for_update() -> QuerySet:
    """Return accounts to lock against other account changes, in key order.

    FOR NO KEY UPDATE: a row that other tables point at (cases, decisions, events, tasks all name
    a user) is never locked against their foreign-key checks, so no writer waits for an account
    change, before or after its audit append.
    """
    return get_user_model().objects.order_by("pk").select_for_update(no_key=True, of=("self",))


def api_token_qs_select_for_update() -> QuerySet[ApiToken]:
    """Return API tokens to lock, in key order (nothing points at a token)."""
    return ApiToken.objects.order_by("pk").select_for_update(of=("self",))


def ai_agent_qs_select_for_update() -> QuerySet[AiAgent]:
    """Return AI agents to lock against other changes of their registration, in key order (nothing points at one)."""
    return AiAgent.objects.order_by("pk").select_for_update(of=("self",))


def audit_head_qs_select_for_update() -> QuerySet[AuditHead]:
    """Return the audit head to lock: the sealer's and the checkpoint signing's (SQLite: every audit append's, last)."""
    return AuditHead.objects.order_by("pk").select_for_update(of=("self",))


_AUDIT_HEAD_TO_LOCK = PreparedQuery(lambda shape: audit_head_qs_select_for_update().filter(pk=1))


def audit_head_locked() -> AuditHead | None:
    """Lock the audit head and return it (None in an emptied database), from SQL compiled once per process."""
    return _AUDIT_HEAD_TO_LOCK.first()


def ai_agent_suspended_under_share_lock(*, user_id: int) -> bool:
    """Return whether the AI agent of account `user_id` is suspended, holding its row FOR SHARE till commit.

    A decision takes this after its case lock: a suspension (which locks the row FOR UPDATE) then
    either commits first, and the decision sees it, or waits until the decision has committed. Many
    decisions of one AI agent share the lock without waiting for each other. SQLite runs one writer
    at a time, so a plain read is as exact there.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT suspended_at FROM {AiAgent._meta.db_table} WHERE user_id = %s FOR SHARE", [user_id])
            row = cursor.fetchone()
    else:
        row = AiAgent.objects.filter(user_id=user_id).values_list("suspended_at").first()
    return row is None or row[0] is not None
