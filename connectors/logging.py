"""Logging that masks secrets which reach a log record by accident, tracebacks included."""

from __future__ import annotations

import logging

from connectors.oauth_http.redaction import redact_text


class RedactSecretsFilter(logging.Filter):
    """Masks token-like values in every record's message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not drop the record
            return True
        redacted = redact_text(message, secrets=())
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RedactingFormatter(logging.Formatter):
    """Masks token-like values in the whole formatted line, including exception tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record), secrets=())
