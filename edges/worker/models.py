"""What the worker stores: one row per run of a periodic job."""

from django.db import models


class PeriodicRun(models.Model):
    """One run of a periodic job, for one slot of its period.

    The (name, slot) constraint is how several workers on several machines agree that a slot's run
    is enqueued once: every scheduler tries to insert it, one insert wins. The row then records
    what the run did, which the health endpoint and the metrics read.
    """

    class Outcome(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        SKIPPED = "skipped"  # the previous run of the same job was still going

    name = models.CharField(max_length=60)
    slot = models.DateTimeField(help_text="Start of the period this run belongs to.")
    enqueued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.QUEUED)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "slot"], name="periodic_run_once_per_slot")]
        indexes = [models.Index(fields=["name", "-finished_at"], name="periodic_run_latest")]

    def __str__(self) -> str:
        return f"{self.name} @ {self.slot:%Y-%m-%d %H:%M:%S}: {self.outcome}"


class PeriodicLease(models.Model):
    """Who is running a periodic job now: one row per job name, taken with a conditional UPDATE.

    Two runs of the same job never overlap (a sweep longer than its period, two machines): the run
    that cannot take the lease is recorded as skipped. A lease that is never given back (its worker
    was killed) expires by itself.
    """

    name = models.CharField(max_length=60, primary_key=True)
    held_until = models.DateTimeField(null=True, blank=True)
    holder = models.CharField(max_length=80, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.holder or 'free'}"
