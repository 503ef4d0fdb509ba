"""Create the Ed25519 key that signs audit checkpoints, and write and print its public half."""

from django.core.management.base import BaseCommand, CommandError

from h2h_core.audit.checkpoint import (
    SigningKeyError,
    generate_signing_key,
    key_fingerprint,
    load_signing_key,
    public_key_path,
    public_key_pem,
    signing_key_path,
    write_public_key,
)


class Command(BaseCommand):
    help = (
        "Write a new Ed25519 private key to H2H_AUDIT_SIGNING_KEY (mode 0600) for the signer (workers), and its "
        "public key to H2H_AUDIT_PUBLIC_KEY when that names a file, else next to the private key "
        "(*.pub.pem), for the web servers; print the public key. Refuses to replace an existing key unless "
        "--force is given."
    )

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--if-missing", action="store_true",
                           help="Keep an existing key (writing its public key file if that is missing).")
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
            self._keep(path, verbose=options["verbosity"] >= 1)
            return
        try:
            key = generate_signing_key(path, overwrite=force)
            public_path = write_public_key(key)
        except OSError as error:
            raise CommandError(f"Cannot write the audit key files next to {path}: {error}") from error
        self.stdout.write(f"Audit signing key written to {path} (readable by its owner only).")
        self.stdout.write(f"Key fingerprint: {key_fingerprint(key.public_key())}")
        self.stdout.write(f"Public key written to {public_path}: give it to the web servers "
                          "(H2H_AUDIT_PUBLIC_KEY) and to whoever checks checkpoints:")
        self.stdout.write(public_key_pem(key), ending="")

    def _keep(self, path, *, verbose: bool) -> None:
        try:
            key = load_signing_key(path)
        except SigningKeyError as error:
            raise CommandError(str(error)) from error
        fingerprint = key_fingerprint(key.public_key())
        public_path = public_key_path()
        if public_path.exists():
            if verbose:
                self.stdout.write(f"Audit signing key already present (fingerprint {fingerprint}); nothing to do.")
            return
        try:
            write_public_key(key, public_path)
        except OSError as error:
            raise CommandError(f"Cannot write the audit public key to {public_path}: {error}") from error
        if verbose:
            self.stdout.write(f"Audit signing key already present (fingerprint {fingerprint}); "
                              f"its public key was written to {public_path}.")
