"""python manage.py connectors_export [--include-secrets [--passphrase-file FILE | --plaintext]].

Every connector as JSON on standard output. With secrets, the output is the encrypted envelope
(README, "Import and export"), unless --plaintext asks for secrets in plain text.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

# Through the module, so a test can stand in for the terminal.
from connectors.management import passphrase as source
from connectors.rules.passphrase import passphrase_problem
from connectors.transfer import ExportRefused, connectors_export

NO_PASSPHRASE_MESSAGE = (
    "--include-secrets writes an encrypted file: give --passphrase-file FILE, or run the "
    "command in a terminal to type a passphrase, or add --plaintext to write the secrets in "
    "plain text."
)


class Command(BaseCommand):
    help = (
        "Write every connector as JSON to standard output. Secrets are left empty unless asked, "
        "and are written encrypted with a passphrase unless --plaintext is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--include-secrets",
            action="store_true",
            help="Include secrets (for moving connectors to another installation). The output "
            "is encrypted with a passphrase from --passphrase-file or typed at the terminal.",
        )
        parser.add_argument(
            "--passphrase-file",
            metavar="FILE",
            help="With --include-secrets: encrypt with the passphrase on the first line of FILE "
            "(at least 12 characters).",
        )
        parser.add_argument(
            "--plaintext",
            action="store_true",
            help="With --include-secrets: write the secrets in plain text, unencrypted.",
        )

    def handle(
        self,
        *args: Any,
        include_secrets: bool,
        passphrase_file: str | None,
        plaintext: bool,
        **options: Any,
    ) -> None:
        passphrase = self._passphrase(include_secrets, passphrase_file, plaintext)
        try:
            payload = connectors_export(
                include_secrets=include_secrets,
                user=None,
                passphrase=passphrase,
                plaintext=plaintext,
            )
        except ExportRefused as exc:
            raise CommandError(str(exc)) from None
        if plaintext:
            self.stderr.write("Secrets written in plain text: keep the file as safe as they are.")
        self.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False))

    def _passphrase(
        self, include_secrets: bool, passphrase_file: str | None, plaintext: bool
    ) -> str | None:
        """The passphrase to encrypt with; None for an export that is not encrypted."""
        if not include_secrets:
            if plaintext or passphrase_file:
                raise CommandError(
                    "--plaintext and --passphrase-file go with --include-secrets (an export "
                    "without secrets is plain JSON)."
                )
            return None
        if plaintext:
            if passphrase_file:
                raise CommandError("Give either --plaintext or --passphrase-file, not both.")
            return None
        if passphrase_file:
            passphrase = source.passphrase_read(passphrase_file)
        elif source.terminal():
            passphrase = source.passphrase_prompt(confirm=True)
        else:
            raise CommandError(NO_PASSPHRASE_MESSAGE)
        problem = passphrase_problem(passphrase)
        if problem:
            raise CommandError(problem)
        return passphrase
