"""What the edges themselves store: the one-time tokens of submitted web forms."""

from django.conf import settings
from django.db import models


class FormToken(models.Model):
    """A web form's one-time token, claimed by the form's first submission.

    A second submission of the same form (a double click, a second tab, the back button) finds the
    token taken and is shown the first one's result instead of acting again.
    """

    token = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(db_index=True)
    result_url = models.CharField(max_length=2000, blank=True)

    def __str__(self) -> str:
        return f"form token of {self.user_id} at {self.created_at:%Y-%m-%d %H:%M}"
