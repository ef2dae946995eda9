"""The rule for the passphrase an export with secrets is encrypted with (page and command)."""

from __future__ import annotations

MIN_PASSPHRASE_LENGTH = 12


def passphrase_problem(passphrase: str) -> str:
    """Why a passphrase is too weak to seal a file with, or "" when it will do.

    Opening a file takes whatever passphrase sealed it; this applies only when sealing.
    """
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        return f"The passphrase must be at least {MIN_PASSPHRASE_LENGTH} characters long."
    if passphrase.strip() != passphrase:
        # Typed again at import, leading or trailing blanks are the likeliest to be lost.
        return "The passphrase must not start or end with a space."
    return ""
