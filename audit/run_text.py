"""A test run's part of its record's canonical JSON, encoded before the run is written.

A test run's record hashes the run and its attempts, ids included (audit.chain.event_payload),
and those ids exist only once the rows are inserted: in the recording's transaction, with the
chain head locked. Encoding the rows there cost about 0.1 ms of the lock's hold per record (more
in a group, whose records are all signed under one lock). Here the rows are encoded before the
transaction opens, around the values that come later, and the record's JSON is put together
from the pieces once they are known.

Exact by construction, not by testing alone: compact sorted-key JSON of an object is "{", its
items in key order joined by ",", then "}", and an item's text does not depend on the items
around it. So an object encoded as consecutive ranges of its keys, the pieces joined in order,
is the object encoded whole, by the same encoder (audit.chain.canonical_json).
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class RunText:
    """A test run's record, run and attempts, encoded but for what _EVENT_LATE names."""

    event: Spliced
    run: Spliced
    attempts: tuple[Spliced, ...]


def run_text(event: AuditEvent, run: models.Model, attempts: Sequence[models.Model]) -> RunText:
    """Encode the record and rows as they will be written: once they are storable, before."""
    return RunText(
        Spliced({name: getattr(event, name) for name in EVENT_FIELDS}, _EVENT_LATE),
        Spliced(row_dict(run), ("id",)),
        tuple(Spliced(row_dict(attempt), ("id", "run_id")) for attempt in attempts),
    )


def payload_text(
    event: AuditEvent, text: RunText, run: models.Model, attempts: Sequence[models.Model]
) -> str:
    """canonical_json(event_payload(event, run, attempts)) once the rows have their ids and
    the record its time; the record's other fields as they were when `text` was made."""
    run_id = canonical_json(run.pk)
    attempts_json = ",".join(
        spliced.text({"id": canonical_json(attempt.pk), "run_id": run_id})
        for spliced, attempt in zip(text.attempts, attempts, strict=True)
    )
    return text.event.text(
        {
            "attempts": f"[{attempts_json}]",
            "created_at": canonical_json(event.created_at),
            "test_run": text.run.text({"id": run_id}),
            "test_run_id": canonical_json(event.test_run_id),
        }
    )


__all__ = ["RunText", "Spliced", "payload_text", "run_text"]
