"""Usage counters: what has been consumed of a cap, one row per bucket, so checks never sum history."""

from django.conf import settings
from django.db import models

from h2h_core.amounts import AmountField

from .grants import AMOUNT, AuthorityKind, Period


class UsageCounter(models.Model):
    """Consumed amount for one agent's period bucket, one case, or one one-off grant.

    `key` identifies the bucket (see authority.usage.counter_key_*); decisions raise `used` with a
    conditional UPDATE (`used + amount <= cap`), which makes caps exact under concurrency.
    """

    class Scope(models.TextChoices):
        PERIOD = "period", "Agent period"
        CASE = "case", "Case"
        ONE_OFF = "one_off", "One-off grant"

    key = models.CharField(max_length=120, unique=True)
    scope = models.CharField(max_length=8, choices=Scope.choices)
    kind = models.ForeignKey(AuthorityKind, on_delete=models.PROTECT)
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    case = models.ForeignKey("h2h_core.Case", null=True, blank=True, on_delete=models.PROTECT)
    grant = models.ForeignKey("authority.Grant", null=True, blank=True, on_delete=models.PROTECT)
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.NONE)
    bucket_start = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    used = AmountField(**AMOUNT, default=0)

    def __str__(self) -> str:
        return f"{self.key} = {self.used}"
