"""Sign the audit chain's current head with the configured Ed25519 key."""

from django.core.management.base import BaseCommand, CommandError

from h2h_core.audit.checkpoint import SigningKeyError, audit_checkpoint_create
from h2h_core.audit.verify import format_utc


class Command(BaseCommand):
    help = (
        "Store a signed checkpoint of the audit chain's head. Needs the private key (H2H_AUDIT_SIGNING_KEY): "
        "run it where the workers run; the audit_checkpoint_sign job does the same on a schedule."
    )

    def add_arguments(self, parser):
        parser.add_argument("--if-moved", action="store_true",
                            help="Sign nothing when no event was recorded since the last checkpoint.")

    def handle(self, *args, if_moved: bool = False, **options):
        try:
            checkpoint = audit_checkpoint_create(actor=None, only_if_moved=if_moved)
        except SigningKeyError as error:
            raise CommandError(str(error)) from error
        if checkpoint is None:
            self.stdout.write("Nothing to sign: no event since the last checkpoint.")
            return
        self.stdout.write(f"Checkpoint signed at entry {checkpoint.seq}")
        self.stdout.write(f"  hash:            {checkpoint.hash}")
        self.stdout.write(f"  signed at:       {format_utc(checkpoint.signed_at)}")
        self.stdout.write(f"  key fingerprint: {checkpoint.key_fingerprint}")
