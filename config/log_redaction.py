"""Log redaction for outgoing request lines: every query value masked, whatever its name.

urllib3 logs each request at DEBUG as `host:port "GET /path?query HTTP/1.1" status length`. An
Api Key sent as a query parameter can have any name the remote API chose (`k`, `sig`, `x`), so
masking by name (connectors.logging) cannot catch it: on HTTP client loggers every query value
is masked and the names are kept.
"""

from __future__ import annotations

import logging
import re

MASK = "********"
# Loggers whose messages carry the URLs of outgoing requests.
HTTP_CLIENT_LOGGERS = ("urllib3", "requests", "http.client")

# A query string: from "?" up to a space, a quote or a fragment.
_QUERY = re.compile(r"\?([^\s\"'<>#]*)")
_SEPARATOR = re.compile(r"([&;])")


def _mask_item(item: str) -> str:
    if item in {"", "&", ";"}:
        return item
    name, equals, _value = item.partition("=")
    # A bare item (`?abc123`) may itself be the key: it is masked whole.
    return f"{name}={MASK}" if equals else MASK


def mask_query_values(text: str) -> str:
    """`/p?apikey=abc&x=1` becomes `/p?apikey=********&x=********`."""
    return _QUERY.sub(
        lambda match: "?" + "".join(_mask_item(item) for item in _SEPARATOR.split(match.group(1))),
        text,
    )


def _is_http_client(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in HTTP_CLIENT_LOGGERS)


class RedactQueryValuesFilter(logging.Filter):
    """On HTTP client loggers, masks every query value in the message (handler filter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _is_http_client(record.name):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not drop the record
            return True
        masked = mask_query_values(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
