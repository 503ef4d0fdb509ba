"""Internal notes on a customer: what colleagues should know before they answer them."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from .cases import Case, Customer

NOTE_MAX_LENGTH = 2000


class CustomerNote(models.Model):
    """One internal note, never shown to the customer. Notes form an append-only log: a correction
    is a new note, so what a colleague read when they acted stays on record."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="notes")
    # The case the note was written from, if any: a note tied to a case is read only by those who
    # may see that case (another team's notes stay with their cases).
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.PROTECT, related_name="customer_notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(max_length=NOTE_MAX_LENGTH)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["customer", "created_at"])]
        constraints = [models.CheckConstraint(name="customer_note_not_empty", condition=~models.Q(text=""))]

    def __str__(self) -> str:
        return f"Note on customer {self.customer_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValidationError("Customer notes are never changed: add a new note instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Customer notes are never deleted.")
