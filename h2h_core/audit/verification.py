"""Chain verification as a job: requested by an auditor (or the schedule), run by a worker.

`chain_verification_request` records the request and enqueues `chain_verification_run` in the same
transaction; at most one verification is queued or running at a time (a unique constraint), and a
second request gets that one. The job claims its row (queued -> running) with one conditional
UPDATE, so a job delivered twice runs once; it verifies outside any transaction (verify_chain
takes its own read-only snapshot) and records the outcome, audited, in one short transaction.

An incremental run starts after the newest checkpoint the last finished run proved, provided that
run passed; after a failed run the next one verifies the whole chain (the alarm stays up until a
full run passes). See h2h_core/audit/verify.py for what incremental runs cannot see.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from h2h_core.access import may_use_auditor_console
from h2h_core.jobs import enqueue
from h2h_core.models import ChainVerification
from h2h_core.models.audit import Outcome
from h2h_core.transactions import service_atomic

from .jobs import chain_verification_run
from .record import audit_record
from .refusals import audits_refusals
from .sealer import audit_seal
from .verify import ChainReport, TrustedCheckpoint, verify_chain

Status, Mode = ChainVerification.Status, ChainVerification.Mode


def verification_snapshot(verification: ChainVerification) -> dict:
    return {
        "id": verification.pk,
        "mode": verification.mode,
        "status": verification.status,
        "anchor_checkpoint_id": verification.anchor_checkpoint_id,
        "from_seq": verification.from_seq,
        "to_seq": verification.to_seq,
        "events_checked": verification.events_checked,
        "first_bad_seq": verification.first_bad_seq,
    }


@audits_refusals("audit.verification_request", object_type="chain_verification")
def chain_verification_request(*, actor, full: bool = False) -> tuple[ChainVerification, bool]:
    """Queue a verification of the chain (incremental unless `full`); return it and whether it is new.

    While one is queued or running, that one is returned instead (False), and nothing is recorded.
    """
    may_use_auditor_console(actor).require()
    return _request(actor=actor, full=full)


def chain_verification_schedule(*, full: bool = False) -> tuple[ChainVerification, bool]:
    """Queue a verification as the system: the periodic schedule (jobs.chain_verification_scheduled)."""
    return _request(actor=None, full=full)


def _request(*, actor, full: bool) -> tuple[ChainVerification, bool]:
    now = timezone.now()
    mode = Mode.FULL if full else Mode.INCREMENTAL
    with service_atomic():
        abandoned = _abandon_stale(now)
        active = ChainVerification.objects.filter(status__in=ChainVerification.ACTIVE).first()
        if active is not None:
            return active, False
        try:
            with transaction.atomic():  # a concurrent request may take the one active slot first
                verification = ChainVerification.objects.create(requested_by=actor, requested_at=now, mode=mode)
        except IntegrityError:
            return ChainVerification.objects.get(status__in=ChainVerification.ACTIVE), False
        audit_record(actor=actor, action="audit.verification_requested", object_type="chain_verification",
                     object_id=verification.pk, after={"mode": mode, "abandoned": abandoned})
        enqueue(chain_verification_run, verification.pk)
    return verification, True


def _abandon_stale(now) -> list[int]:
    """Mark runs whose worker stopped mid-run (running for too long) as not completed; return their ids."""
    cutoff = now - timedelta(hours=settings.H2H_AUDIT_VERIFICATION_STALE_HOURS)
    stale = list(ChainVerification.objects.filter(status=Status.RUNNING, started_at__lt=cutoff)
                 .values_list("pk", flat=True))
    if stale:
        ChainVerification.objects.filter(pk__in=stale, status=Status.RUNNING).update(
            status=Status.ERROR, finished_at=now,
            summary=f"Abandoned: still running {settings.H2H_AUDIT_VERIFICATION_STALE_HOURS:g} hours after it "
                    "started (its worker stopped).",
        )
    return stale


def trusted_checkpoint() -> TrustedCheckpoint | None:
    """The newest checkpoint the last finished verification proved, if that verification passed."""
    finished = ChainVerification.objects.filter(status__in=ChainVerification.FINISHED)
    last = finished.order_by("-finished_at", "-pk").first()
    if last is None or last.status != Status.PASSED:
        return None
    proven = [result for result in last.checkpoint_results if result.get("ok") and result.get("id") is not None]
    if not proven:
        return None
    newest = max(proven, key=lambda result: (result["seq"], result["id"]))
    return TrustedCheckpoint(id=newest["id"], seq=newest["seq"], hash=newest["hash"])


def chain_verification_execute(*, verification_id: int) -> str:
    """Run a queued verification and record its outcome; return its status ("skipped": not queued)."""
    claimed = ChainVerification.objects.filter(pk=verification_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now())
    if not claimed:  # already run, running elsewhere, or gone
        return "skipped"
    verification = ChainVerification.objects.get(pk=verification_id)
    audit_seal()  # verify the chain up to the events committed by now, its own request's included
    since = trusted_checkpoint() if verification.mode == Mode.INCREMENTAL else None
    try:
        report = verify_chain(since=since)
    except Exception as error:
        _finish(verification, status=Status.ERROR, summary=f"The verification could not complete: {error}")
        raise
    if verification.mode == Mode.INCREMENTAL and since is None:
        report.warnings.insert(0, "No checkpoint proven by a passed verification to start from: "
                                  "the whole chain was verified.")
    _finish(verification, report=report)
    return verification.status


def _finish(verification: ChainVerification, *, report: ChainReport | None = None, status: str = "",
            summary: str = "") -> None:
    verification.finished_at = timezone.now()
    if report is not None:
        verification.status = Status.PASSED if report.ok else Status.FAILED
        verification.anchor_checkpoint_id = report.anchor.id if report.anchor else None
        verification.from_seq = report.from_seq
        verification.to_seq = report.last_seq
        verification.events_checked = report.count
        verification.first_bad_seq = report.first_bad_seq
        verification.summary = report.summary()
        verification.checkpoint_results = [result.as_dict() for result in report.checkpoints]
        verification.warnings = list(report.warnings)
    else:
        verification.status, verification.summary = status, summary
    outcome = Outcome.SUCCESS if verification.status == Status.PASSED else Outcome.ERROR
    with service_atomic():
        verification.save()
        audit_record(actor=None, action="audit.chain_verified", object_type="chain_verification",
                     object_id=verification.pk, outcome=outcome, after=verification_snapshot(verification),
                     reason=verification.summary[:1000])
