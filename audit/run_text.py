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
        # Each part: the encoded items of a run of keys, or the name of a late key (a tuple).
        parts: list[str | tuple[str]] = []
        segment: dict[str, Any] = {}
        for key in sorted(set(values) | waiting):
            if key not in waiting:
                segment[key] = values[key]
                continue
            if segment:
                parts.append(canonical_json(segment)[1:-1])
                segment = {}
            parts.append((key,))
        if segment:
            parts.append(canonical_json(segment)[1:-1])
        self._parts = tuple(parts)

    def text(self, late: Mapping[str, str]) -> str:
        """The whole object's canonical JSON; `late` holds each late key's value, encoded."""
        items = [
            part if isinstance(part, str) else f"{canonical_json(part[0])}:{late[part[0]]}"
            for part in self._parts
        ]
        return "{" + ",".join(items) + "}"


@dataclass(frozen=True)
class RunText:
    """A run's and its attempts' rows, encoded but for their ids (and each attempt's run id)."""

    run: Spliced
    attempts: tuple[Spliced, ...]


def run_text(run: models.Model, attempts: Sequence[models.Model]) -> RunText:
    """Encode the rows as they will be written: call it once they are storable, before."""
    return RunText(
        Spliced(row_dict(run), ("id",)),
        tuple(Spliced(row_dict(attempt), ("id", "run_id")) for attempt in attempts),
    )


def payload_text(
    event: AuditEvent, text: RunText, run: models.Model, attempts: Sequence[models.Model]
) -> str:
    """canonical_json(event_payload(event, run, attempts)) once the rows have their ids."""
    run_id = canonical_json(run.pk)
    run_json = text.run.text({"id": run_id})
    attempts_json = ",".join(
        spliced.text({"id": canonical_json(attempt.pk), "run_id": run_id})
        for spliced, attempt in zip(text.attempts, attempts, strict=True)
    )
    fields = {name: getattr(event, name) for name in EVENT_FIELDS}
    return Spliced(fields, ("attempts", "test_run")).text(
        {"attempts": f"[{attempts_json}]", "test_run": run_json}
    )


__all__ = ["RunText", "Spliced", "payload_text", "run_text"]
