"""Where connectors_export and connectors_import get an export file's passphrase.

From a file (--passphrase-file FILE, its first line) or typed at the terminal. Not from an
environment variable or an argument: those are inherited by child processes and shown by `ps`
and process listings.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from django.core.management.base import CommandError


def passphrase_read(path: str) -> str:
    """The first line of the file at `path`, its line ending dropped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"Cannot read the passphrase file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"The passphrase file {path} is not UTF-8 text.") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise CommandError(f"The passphrase file {path} has no passphrase on its first line.")
    return lines[0]


def terminal() -> bool:
    """Whether someone at a terminal can be asked (standard input is one)."""
    return sys.stdin is not None and sys.stdin.isatty()


def passphrase_prompt(*, confirm: bool) -> str:
    """Ask at the terminal without echo; twice when `confirm`, as a typo would lock the file."""
    passphrase = getpass.getpass("Passphrase: ")
    if confirm and getpass.getpass("Passphrase again: ") != passphrase:
        raise CommandError("The two passphrases differ; nothing was exported.")
    return passphrase
