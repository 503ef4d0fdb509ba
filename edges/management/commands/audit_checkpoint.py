"""Sign the audit chain's current head with the configured Ed25519 key."""

from django.core.management.base import BaseCommand, CommandError

from h2h_core.audit.checkpoint import SigningKeyError, audit_checkpoint_create
from h2h_core.audit.verify import format_utc


class Command(BaseCommand):
    help = "Store a signed checkpoint of the audit chain's head (run it on a schedule, e.g. daily)."

    def handle(self, *args, **options):
        try:
            checkpoint = audit_checkpoint_create(actor=None)
        except SigningKeyError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Checkpoint signed at entry {checkpoint.seq}")
        self.stdout.write(f"  hash:            {checkpoint.hash}")
        self.stdout.write(f"  signed at:       {format_utc(checkpoint.signed_at)}")
        self.stdout.write(f"  key fingerprint: {checkpoint.key_fingerprint}")
