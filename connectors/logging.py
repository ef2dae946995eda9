"""A logging filter that masks secrets that reach a log record by accident."""

from __future__ import annotations

import logging

from connectors.redaction import redact_text


class RedactSecretsFilter(logging.Filter):
    """Masks token-like values in every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not drop the record
            return True
        redacted = redact_text(message, secrets=())
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
