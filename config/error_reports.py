"""Error reports that never carry a secret, with DEBUG on or off.

Django's SafeExceptionReporterFilter only cleanses when DEBUG is off, and then only the POST
fields a view listed with @sensitive_post_parameters. This filter is always active and cleanses
by default: every posted value (only formset counters stay readable), every frame variable whose
name looks like a credential, credential-looking text inside frame values, and any long text or
bytes (an uploaded import file read into a variable, a response body). It applies to the DEBUG
technical 500 page and to the error e-mails alike (DEFAULT_EXCEPTION_REPORTER_FILTER).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest
from django.utils.datastructures import MultiValueDict
from django.views.debug import SafeExceptionReporterFilter

from connectors.oauth_http.redaction import redact_text

# Names (settings, META, cookies, frame variables, dict keys) whose values are never shown.
_HIDDEN = re.compile(
    r"API|AUTH|TOKEN|KEY|SECRET|PASS|PWD|SIGNATURE|COOKIE|CSRF|SESSION|CREDENTIAL|PRIVATE"
    r"|ASSERTION|LOCATION|REDIS_URL|DATABASE_URL|DSN",
    re.IGNORECASE,
)
# Posted fields that are safe to show: the formset management counters.
_READABLE_POST = re.compile(r"-(TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS$")
# Longer text is a file body, a response body or a whole export: shown by its length only.
LONG_VALUE = 256
# Deeper or larger containers are summarised rather than walked (an import may nest 100k deep).
_MAX_DEPTH = 6
_MAX_ITEMS = 500


class CleansingExceptionReporterFilter(SafeExceptionReporterFilter):
    """A SafeExceptionReporterFilter that is always on and cleanses by default."""

    hidden_settings = _HIDDEN

    def is_active(self, request: HttpRequest | None) -> bool:
        """Always: a DEBUG page on a server with real connectors shows real secrets."""
        return True

    def get_post_parameters(self, request: HttpRequest | None) -> Any:
        """Every posted value cleansed; keys stay, so the report still says what was sent."""
        if request is None:
            return {}
        return self._cleansed_query(request.POST)

    def get_cleansed_multivaluedict(self, request: HttpRequest | None, multivaluedict: Any) -> Any:
        """A QueryDict or MultiValueDict found in a frame (form.data, request.POST) likewise."""
        return self._cleansed_query(multivaluedict)

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        """Django's own cleansing (sensitive_variables), then ours on whatever it left."""
        return [
            (name, self.cleanse_value(name, value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def _cleansed_query(self, query: Any) -> Any:
        if not isinstance(query, MultiValueDict):
            return query
        cleansed = query.copy()
        for key in cleansed:
            if not _READABLE_POST.search(str(key)):
                cleansed.setlist(key, [self.cleansed_substitute] * len(query.getlist(key)))
        return cleansed

    def cleanse_value(self, name: Any, value: Any, depth: int = 0) -> Any:
        """One value, cleansed by its name, its size and (for text) its content."""
        if value is self.cleansed_substitute:
            return value
        if isinstance(name, str) and name and _HIDDEN.search(name):
            return self.cleansed_substitute
        if isinstance(value, MultiValueDict):
            return self._cleansed_query(value)
        if isinstance(value, str | bytes | bytearray):
            return self._cleanse_text(value)
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            return self._cleanse_container(value, depth)
        return value

    def _cleanse_text(self, value: str | bytes | bytearray) -> Any:
        if len(value) > LONG_VALUE:
            kind = "characters" if isinstance(value, str) else "bytes"
            return f"{self.cleansed_substitute} ({len(value)} {kind})"
        if isinstance(value, str):
            return redact_text(value, secrets=())
        return value

    def _cleanse_container(self, value: Any, depth: int) -> Any:
        if depth >= _MAX_DEPTH or len(value) > _MAX_ITEMS:
            return f"{self.cleansed_substitute} ({type(value).__name__} of {len(value)} items)"
        if isinstance(value, Mapping):
            # A header or token-request row hides its value when marked sensitive or when its
            # key looks like a credential (the import's rule for an omitted "sensitive").
            hide_value = value.get("sensitive") is True or bool(
                _HIDDEN.search(str(value.get("key", "")))
            )
            return {
                key: self.cleansed_substitute
                if hide_value and key == "value"
                else self.cleanse_value(key, item, depth + 1)
                for key, item in value.items()
            }
        items = [self.cleanse_value("", item, depth + 1) for item in value]
        return tuple(items) if isinstance(value, tuple) else items
