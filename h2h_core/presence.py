"""Who else has a case open: the case page's heartbeat, and who it reports.

Presence is not audited, on purpose: a heartbeat decides nothing and changes no case, and an
audit event every 3 seconds per open page would bury the decisions the chain exists to prove.
It is a hint for people, never a lock; what protects a case from a stale submit is
`h2h_core.access.may_act_on_view`, checked under the case's row lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from .models import Case, CasePresence

# The page beats every 3 s; a person missing for 15 s (five beats) has left the page.
PRESENCE_TTL = timedelta(seconds=15)

# The forms of the case page a person can be seen editing, and how the others read it.
EDITING = {
    "decision": "a decision",
    "request": "an authority request",
    "resolve": "the resolution",
    "handover": "a hand-over",
    "reopen": "a reopening",
}


@dataclass(frozen=True)
class Presence:
    username: str
    editing: str
    since: datetime

    @property
    def text(self) -> str:
        if self.editing in EDITING:
            return f"{self.username} is editing {EDITING[self.editing]}"
        return f"{self.username} is viewing this case"

    def as_dict(self) -> dict:
        return {"username": self.username, "editing": self.editing, "since": self.since.isoformat(),
                "text": self.text}


def case_presence_beat(*, actor, case: Case, editing: str = "", now: datetime | None = None) -> list[Presence]:
    """Record that `actor` has `case` open (editing one of its forms, EDITING, or not); return who else has.

    One upsert and one small SELECT. The upsert keeps `since` while the person stays, and starts
    it again when they come back after having left (a row older than PRESENCE_TTL).
    """
    now = now or timezone.now()
    editing = editing if editing in EDITING else ""
    table = connection.ops.quote_name(CasePresence._meta.db_table)
    at = connection.ops.adapt_datetimefield_value  # stored as the ORM stores it, so comparisons hold
    with connection.cursor() as cursor:
        # ON CONFLICT … DO UPDATE: one statement on PostgreSQL and SQLite alike, so two app servers
        # beating for the same person at once never collide on the unique (case, user) pair.
        cursor.execute(
            f"INSERT INTO {table} (case_id, user_id, since, last_seen, editing) VALUES (%s, %s, %s, %s, %s) "
            f"ON CONFLICT (case_id, user_id) DO UPDATE SET "
            f"since = CASE WHEN {table}.last_seen < %s THEN excluded.since ELSE {table}.since END, "
            f"last_seen = excluded.last_seen, editing = excluded.editing",
            [case.pk, actor.pk, at(now), at(now), editing, at(now - PRESENCE_TTL)],
        )
    return case_presence_others(case=case, user=actor, now=now)


def case_presence_others(*, case: Case, user, now: datetime | None = None) -> list[Presence]:
    """Return the people other than `user` seen on `case` within PRESENCE_TTL, longest-present first."""
    now = now or timezone.now()
    rows = (CasePresence.objects.filter(case_id=case.pk, last_seen__gte=now - PRESENCE_TTL)
            .exclude(user_id=user.pk).order_by("since", "user__username")
            .values_list("user__username", "editing", "since"))
    return [Presence(username=name, editing=editing, since=since) for name, editing, since in rows]


def case_presence_purge(*, now: datetime | None = None) -> dict:
    """Delete presence rows nobody has refreshed for a minute; return how many (a periodic sweep).

    Reads already ignore rows older than PRESENCE_TTL; this only keeps the table small. Run twice,
    or on two workers at once, it deletes each row once.
    """
    now = now or timezone.now()
    deleted, _ = CasePresence.objects.filter(last_seen__lt=now - timedelta(minutes=1)).delete()
    return {"deleted": deleted}
