"""Create the Ed25519 key that signs audit checkpoints and print its public half."""

from django.core.management.base import BaseCommand, CommandError

from h2h_core.audit.checkpoint import (
    SigningKeyError,
    generate_signing_key,
    key_fingerprint,
    load_signing_key,
    public_key_pem,
    signing_key_path,
)


class Command(BaseCommand):
    help = (
        "Write a new Ed25519 private key to H2H_AUDIT_SIGNING_KEY (mode 0600) and print the public key. "
        "Refuses to replace an existing key unless --force is given."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--if-missing", action="store_true", help="Do nothing when the key file exists.")
        group.add_argument(
            "--force",
            action="store_true",
            help="Replace an existing key; checkpoints signed by the old key will verify with a warning.",
        )

    def handle(self, *args, if_missing: bool = False, force: bool = False, **options):
        path = signing_key_path()
        if path.exists() and not force:
            if not if_missing:
                raise CommandError(f"An audit signing key already exists at {path}; use --force to replace it.")
            try:
                fingerprint = key_fingerprint(load_signing_key(path).public_key())
            except SigningKeyError as error:
                raise CommandError(str(error)) from error
            if options["verbosity"] >= 1:
                self.stdout.write(f"Audit signing key already present (fingerprint {fingerprint}); nothing to do.")
            return
        try:
            key = generate_signing_key(path, overwrite=force)
        except OSError as error:
            raise CommandError(f"Cannot write the audit signing key to {path}: {error}") from error
        self.stdout.write(f"Audit signing key written to {path} (readable by its owner only).")
        self.stdout.write(f"Key fingerprint: {key_fingerprint(key.public_key())}")
        self.stdout.write("Public key (publish it to whoever checks checkpoints):")
        self.stdout.write(public_key_pem(key), ending="")
