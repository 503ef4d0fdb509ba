"""The customer's internal notes: the one write (`customer_note_add`) and the read through visibility."""

from __future__ import annotations

import hashlib

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from . import access
from .audit import audit_record
from .audit.refusals import audits_refusals
from .models import Case, Customer, CustomerNote
from .models.customers import NOTE_MAX_LENGTH
from .transactions import service_atomic


def customer_of(kwargs: dict):
    return kwargs.get("customer")


def customer_notes_visible_to(user, customer: Customer) -> QuerySet[CustomerNote]:
    """The customer's notes the user may read: those of cases they may see, and those tied to no case
    when they may see the customer (one query)."""
    return CustomerNote.objects.filter(customer=customer).filter(
        Q(case__in=access.cases_visible_to(user).values("pk"))
        | Q(case__isnull=True, customer__in=access.customers_visible_to(user).values("pk"))
    )


def customer_note_text_validate(text) -> str:
    """Return the note as stored (surrounding blanks dropped), or raise ValidationError."""
    if not isinstance(text, str) or "\x00" in text:
        raise ValidationError({"text": "Write the note as plain text."})
    text = text.strip()
    if not text:
        raise ValidationError({"text": "The note is empty."})
    if len(text) > NOTE_MAX_LENGTH:
        raise ValidationError({"text": f"Keep the note within {NOTE_MAX_LENGTH} characters (it has {len(text)})."})
    return text


@audits_refusals("customer.note_add", object_type="customer", object_from=customer_of)
def customer_note_add(*, actor, customer: Customer, text: str, case: Case | None = None) -> CustomerNote:
    """Add an internal note on a customer, optionally from one of their cases; notes are never changed.

    The audit event keeps a digest of the text, not the text: notes may name people, and the chain
    stores no personal data it does not need (rule 8), yet the digest proves what was written.
    """
    text = customer_note_text_validate(text)
    access.may_add_customer_note(actor, customer).require()
    if case is not None:
        if case.customer_id != customer.pk:
            raise ValidationError({"case": f"{case.reference} is not a case of {customer.name}."})
        access.may_view_case(actor, case).require()
    with service_atomic():
        note = CustomerNote.objects.create(customer=customer, case=case, author=actor, text=text,
                                           created_at=timezone.now())
        audit_record(actor=actor, action="customer.note_added", object_type="customer", object_id=customer.pk,
                     after={"note_id": note.pk, "case_id": case.pk if case is not None else None,
                            "text_sha256": hashlib.sha256(text.encode()).hexdigest()})
    return note
