"""Who has a case open right now: one row per (case, person), refreshed by the case page's heartbeat."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class CasePresence(models.Model):
    """The last heartbeat of a person on a case page; older than `h2h_core.presence.PRESENCE_TTL` means gone.

    It lives in the database, not in a process's memory, so every app server sees every heartbeat.
    """

    case = models.ForeignKey("h2h_core.Case", on_delete=models.CASCADE, related_name="presence")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField()
    last_seen = models.DateTimeField()
    # What the person is editing on the page ("decision", "handover", …; h2h_core.presence.EDITING), or "".
    editing = models.CharField(max_length=12, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "user"], name="case_presence_once_per_user")]
        indexes = [models.Index(fields=["case", "last_seen"], name="case_presence_recent")]

    def __str__(self) -> str:
        return f"{self.user_id} on case {self.case_id}"
