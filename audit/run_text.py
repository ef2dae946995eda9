"""A test run's part of its record's canonical JSON, encoded before the run is written.

A test run's record hashes the run and its attempts, ids included (audit.chain.event_payload),
and those ids exist only once the rows are inserted: in the recording's transaction, with the
chain head locked. Encoding the rows there cost about 0.1 ms of the lock's hold per record (more
in a group, whose records are all signed under one lock). Here the rows are encoded before the
transaction opens, around the values that come later, and the record's JSON is put together
from the pieces once they are known.

Exact by construction, not by testing alone. Each object is encoded once, by the same encoder
(audit.chain.canonical_json), with a mark in place of each value that comes later: a string
holding NUL characters, which the encoder writes as "\\u0000" escapes. Such a string's text can
only be that string (a quote there can only open it, and a data string's backslash would be
written doubled), so a mark found exactly once is the one put there, and the value's text
replaces it. Where the data holds a mark's text itself (counted), the object is encoded in
ranges of its keys instead (Spliced): compact sorted-key JSON is "{", the items in key order
joined by ",", then "}", and an item's text does not depend on the items around it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models

from audit.chain import EVENT_FIELDS, canonical_json, row_dict
from audit.models import AuditEvent


class Spliced:
    """An object's canonical JSON, encoded without the values of its `late` keys."""

    __slots__ = ("_parts",)

    def __init__(self, values: Mapping[str, Any], late: Iterable[str]) -> None:
        waiting = frozenset(late)
        # Each part: the encoded items of a run of keys, or a late key's name and encoded name.
        parts: list[str | tuple[str, str]] = []
        segment: dict[str, Any] = {}
        for key in sorted(set(values) | waiting):
            if key not in waiting:
                segment[key] = values[key]
                continue
            if segment:
                parts.append(canonical_json(segment)[1:-1])
                segment = {}
            parts.append((key, canonical_json(key) + ":"))
        if segment:
            parts.append(canonical_json(segment)[1:-1])
        self._parts = tuple(parts)

    def text(self, late: Mapping[str, str]) -> str:
        """The whole object's canonical JSON; `late` holds each late key's value, encoded."""
        items = [part if isinstance(part, str) else part[1] + late[part[0]] for part in self._parts]
        return "{" + ",".join(items) + "}"


# What only the recording's transaction knows: the rows' ids, and the record's time and run.
_EVENT_LATE = ("attempts", "created_at", "test_run", "test_run_id")


def _mark(key: str) -> str:
    return f"\x00late:{key}\x00"


@functools.cache
def _mark_text(key: str) -> str:
    """The mark's JSON text, as it appears in the object's (the same for every object)."""
    return canonical_json(_mark(key))


class Marked:
    """An object's canonical JSON with a mark for each `late` key's value, filled in later."""

    __slots__ = ("_fallback", "_keys", "_pieces")

    def __init__(self, values: Mapping[str, Any], late: Iterable[str]) -> None:
        waiting = tuple(late)
        marked = {**values, **{key: _mark(key) for key in waiting}}
        text = canonical_json(marked)
        marks = {key: _mark_text(key) for key in waiting}
        self._fallback: Spliced | None = None
        self._keys: tuple[str, ...] = ()
        self._pieces: tuple[str, ...] = ()
        if not all(text.count(mark) == 1 for mark in marks.values()):
            self._fallback = Spliced(values, waiting)  # the data holds a mark's text
            return
        # The text around the marks, cut once: a value put in is never searched for a mark.
        found = sorted((text.index(mark), key, len(mark)) for key, mark in marks.items())
        pieces, at = [], 0
        for position, _, length in found:
            pieces.append(text[at:position])
            at = position + length
        pieces.append(text[at:])
        self._keys = tuple(key for _, key, _ in found)
        self._pieces = tuple(pieces)

    def text(self, late: Mapping[str, str]) -> str:
        """The whole object's canonical JSON; `late` holds each late key's value, encoded."""
        if self._fallback is not None:
            return self._fallback.text(late)
        parts = [self._pieces[0]]
        for key, piece in zip(self._keys, self._pieces[1:], strict=True):
            parts += (late[key], piece)
        return "".join(parts)


@dataclass(frozen=True)
class RunText:
    """A test run's record, run and attempts, encoded but for what _EVENT_LATE names."""

    event: Marked
    run: Marked
    attempts: tuple[Marked, ...]


def run_text(event: AuditEvent, run: models.Model, attempts: Sequence[models.Model]) -> RunText:
    """Encode the record and rows as they will be written: once they are storable, before."""
    return RunText(
        Marked({name: getattr(event, name) for name in EVENT_FIELDS}, _EVENT_LATE),
        Marked(row_dict(run), ("id",)),
        tuple(Marked(row_dict(attempt), ("id", "run_id")) for attempt in attempts),
    )


def payload_text(
    event: AuditEvent, text: RunText, run: models.Model, attempts: Sequence[models.Model]
) -> str:
    """canonical_json(event_payload(event, run, attempts)) once the rows have their ids and
    the record its time; the record's other fields as they were when `text` was made."""
    run_id = canonical_json(run.pk)
    attempts_json = ",".join(
        marked.text({"id": canonical_json(attempt.pk), "run_id": run_id})
        for marked, attempt in zip(text.attempts, attempts, strict=True)
    )
    return text.event.text(
        {
            "attempts": f"[{attempts_json}]",
            "created_at": canonical_json(event.created_at),
            "test_run": text.run.text({"id": run_id}),
            "test_run_id": canonical_json(event.test_run_id),
        }
    )


__all__ = ["Marked", "RunText", "Spliced", "payload_text", "run_text"]
