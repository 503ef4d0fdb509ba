"""The audit jobs: signing checkpoints and verifying the chain, on the "audit" queue.

Each is safe to run twice: signing skips a head that has not moved, and a verification runs only
while its row is still queued. Recommended schedule (docs/audit.md): `audit_checkpoint_sign`
hourly; `chain_verification_scheduled` incremental hourly, just after the signing, and full daily.
"""

from __future__ import annotations

from h2h_core.jobs import enqueue, task

from .checkpoint import audit_checkpoint_create
from .tree import decision_receipt


@task(queue_name="audit")
def audit_checkpoint_sign() -> int | None:
    """Sign the chain's head when it moved since the last checkpoint; return the signed entry.

    Only workers hold the private key (H2H_AUDIT_SIGNING_KEY): without it the job fails with the
    reason, and nothing is written.
    """
    checkpoint = audit_checkpoint_create(actor=None, only_if_moved=True)
    return checkpoint.seq if checkpoint is not None else None


@task(queue_name="audit")
def chain_verification_run(verification_id: int) -> str:
    """Run one requested chain verification; return its status."""
    # Imported here: the request service enqueues this job, so its module imports this one.
    from .verification import chain_verification_execute

    return chain_verification_execute(verification_id=verification_id)


@task(queue_name="audit")
def chain_verification_scheduled(full: bool = False) -> int:
    """Request a verification as the system (the periodic schedule); return its id."""
    from .verification import chain_verification_schedule

    verification, _created = chain_verification_schedule(full=full)
    return verification.pk


def decision_receipt_or_signing(*, decision_id: int) -> dict | None:
    """Return the decision's receipt; None while no signed tree includes it, after queueing a signing.

    Asking again costs nothing: the signing job signs only when the chain moved since the last checkpoint.
    """
    receipt = decision_receipt(decision_id=decision_id)
    if receipt is None:
        enqueue(audit_checkpoint_sign)
    return receipt
