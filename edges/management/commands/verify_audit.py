"""Prove the audit chain intact (exit 0) or name its first bad entry (exit 1)."""

from django.core.management.base import BaseCommand, CommandError

from h2h_core.audit.seal_lag import seal_lag
from h2h_core.audit.verification import trusted_checkpoint
from h2h_core.audit.verify import verify_chain


class Command(BaseCommand):
    help = (
        "Recompute every audit event's hash, check the chain links, the head and every signed "
        "checkpoint (and the chain's record of each). Exits 0 when intact, 1 (with the first bad "
        "sequence number on stderr) when not."
    )

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="Print nothing unless the check fails.")
        parser.add_argument("--chunk-size", type=int, default=2000, help="Events fetched per round trip.")
        parser.add_argument(
            "--processes", type=int, default=None,
            help="Processes that may share a long walk (PostgreSQL, from 200,000 entries on): "
            "by default one per core, up to four; 1 walks in this process only.",
        )
        parser.add_argument(
            "--incremental",
            action="store_true",
            help="Start after the newest checkpoint the last chain verification job proved (when it passed) "
            "instead of at entry 1. Entries before that checkpoint are not read again: the default, a full "
            "run, is the independent proof.",
        )

    def handle(self, *args, quiet: bool = False, chunk_size: int = 2000, incremental: bool = False,
               processes: int | None = None, **options):
        if processes is not None and processes < 1:
            raise CommandError("--processes must be 1 or more.")
        report = verify_chain(chunk_size=chunk_size, since=trusted_checkpoint() if incremental else None,
                              processes=processes)
        if not report.ok:
            self.stderr.write(report.summary())
            self.stderr.write(f"First bad sequence number: {report.first_bad_seq}")
            if report.chain_intact:
                self.stderr.write(f"All {report.total} entries hash and link correctly, but a signed checkpoint "
                                  "does not agree with them (below).")
            elif report.anchor is not None:
                self.stderr.write(f"{report.count} entries after the checkpoint at entry {report.anchor.seq} "
                                  "verified before it.")
            else:
                self.stderr.write(f"{report.count} of {report.total} entries verified before it.")
            for result in report.checkpoints:
                if not result.ok:
                    self.stderr.write(f"FAILED {result.message}")
        if not quiet:
            if report.ok:
                self.stdout.write(report.summary())
                if report.processes > 1:
                    self.stdout.write(f"Walked by {report.processes} processes side by side.")
            self.stdout.write(f"Sealing: {seal_lag().summary()}")
            for result in report.checkpoints:
                if result.ok:
                    self.stdout.write(f"OK {result.message}")
            for warning in report.warnings:
                self.stdout.write(f"Warning: {warning}")
        if not report.ok:
            raise SystemExit(1)
