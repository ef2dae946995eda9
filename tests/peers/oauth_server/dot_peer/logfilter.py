"""Logging filter that drops DOT's per-request RFC 9700 password-grant nag."""

from __future__ import annotations

import logging


class DropRfc9700Nag(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "RFC 9700" not in record.getMessage()
