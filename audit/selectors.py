"""Read side of the audit log: filtering and keyset pages (no COUNT, so millions stay fast)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from audit import providers
from audit.chain import EVENT_FIELDS
from audit.models import AuditEvent

PAGE_SIZE = 50

# The list page reads neither the hashes nor the details.
LIST_COLUMNS: tuple[str, ...] = ("id", *(name for name in EVENT_FIELDS if name != "details"))


SUGGESTIONS = 20  # type-ahead matches per request: the page never lists every connector


@dataclass(frozen=True)
class AuditFilters:
    connector_id: int | None = None
    kind: str = ""
    outcome: str = ""
    user_id: int | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    q: str = ""
    # Exact names, as typed or picked from the type-ahead (ids above are the older links' form).
    connector_name: str = ""
    username: str = ""

    @property
    def active(self) -> bool:
        return any(
            v not in (None, "")
            for v in (
                self.connector_id,
                self.kind,
                self.outcome,
                self.user_id,
                self.since,
                self.until,
                self.q,
                self.connector_name,
                self.username,
            )
        )


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def audit_events_filtered(filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Records matching the filters, newest first (each filter has an index ending in id)."""
    qs = AuditEvent.objects.order_by("-id")
    if filters.connector_id is not None:
        qs = qs.filter(connector_id=filters.connector_id)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.outcome:
        qs = qs.filter(outcome=filters.outcome)
    if filters.connector_name:
        qs = _by_connector_name(qs, filters.connector_name)
    if filters.user_id is not None:
        qs = qs.filter(user_id=filters.user_id)
    if filters.username:
        user_id = user_id_by_name(filters.username)
        qs = qs.filter(user_id=user_id) if user_id is not None else qs.none()
    if filters.since is not None:
        qs = qs.filter(created_at__gte=_day_start(filters.since))
    if filters.until is not None:
        qs = qs.filter(created_at__lt=_day_start(filters.until + dt.timedelta(days=1)))
    if filters.q:
        # Substring search over millions of rows cannot use an index, and a rare name would
        # scan them all; the distinct names are few, so match those and filter on exact names.
        needle = filters.q.casefold()
        names = [name for name in audit_connector_names() if needle in name.casefold()]
        qs = qs.filter(connector_name__in=names)
    return qs


def connector_id_by_name(name: str) -> int | None:
    """The id of the connector the newest record under this exact name is about (one probe).

    Read from the log rather than the connectors table: it also knows deleted connectors, and
    filtering by the id keeps a connector's records together as the old id links did.
    """
    return (
        AuditEvent.objects.filter(connector_name=name)
        .order_by("-id")
        .values_list("connector_id", flat=True)
        .first()
    )


def connector_name_by_id(connector_id: int) -> str:
    """The name the newest record about this connector gives it ("" when none does)."""
    name = (
        AuditEvent.objects.filter(connector_id=connector_id)
        .order_by("-id")
        .values_list("connector_name", flat=True)
        .first()
    )
    return name or ""


def _by_connector_name(qs: QuerySet[AuditEvent], name: str) -> QuerySet[AuditEvent]:
    connector_id = connector_id_by_name(name)
    if connector_id is not None:
        return qs.filter(connector_id=connector_id)
    # No record under that name names a saved connector (none at all, or unsaved-form tests).
    return qs.filter(connector_name=name)


def user_id_by_name(username: str) -> int | None:
    """The id of the user with this exact username (records of deleted users: by ?user=ID)."""
    return get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()


def username_by_id(user_id: int) -> str:
    name = get_user_model().objects.filter(pk=user_id).values_list("username", flat=True).first()
    return str(name) if name else ""


def audit_connector_suggestions(text: str, *, limit: int = SUGGESTIONS) -> list[str]:
    """Names of connectors for the type-ahead: prefix matches first, then ones containing it."""
    return providers.get().connector_names_matching(text.strip(), limit=limit)


def audit_user_suggestions(text: str, *, limit: int = SUGGESTIONS) -> list[str]:
    """Usernames for the type-ahead: prefix matches first, then ones containing the text."""
    text = text.strip()
    names = get_user_model().objects.order_by("username").values_list("username", flat=True)
    by_prefix = [str(n) for n in names.filter(username__istartswith=text)[:limit]]
    if len(by_prefix) >= limit:
        return by_prefix
    others = names.filter(username__icontains=text).exclude(username__istartswith=text)
    return [*by_prefix, *(str(n) for n in others[: limit - len(by_prefix)])]


LOOSE_INDEX_SCAN = (
    "WITH RECURSIVE names(name) AS ("
    " SELECT (SELECT MIN({column}) FROM {table})"
    " UNION ALL"
    " SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > names.name)"
    " FROM names WHERE names.name IS NOT NULL"
    ") SELECT name FROM names WHERE name IS NOT NULL"
)


def audit_connector_names() -> list[str]:
    """Every distinct connector name in the log, by a loose index scan (one probe per name)."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    column = connection.ops.quote_name(AuditEvent._meta.get_field("connector_name").column)
    # Only the model's own table and column names (quoted) are interpolated: no user input.
    sql = LOOSE_INDEX_SCAN.format(table=table, column=column)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    newer_than: int | None  # link "Newer" as ?after=<id> when set
    older_than: int | None  # link "Older" as ?before=<id> when set


def audit_event_page(
    *,
    filters: AuditFilters,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> AuditPage:
    """One page by keyset: `before` = older than that id, `after` = newer; neither = newest."""
    base = audit_events_filtered(filters).only(*LIST_COLUMNS)
    if after is not None and before is None:
        rows = list(base.filter(id__gt=after).order_by("id")[: size + 1])
        more_newer = len(rows) > size
        events = rows[:size][::-1]
        more_older = bool(events) and base.filter(id__lt=events[-1].pk).exists()
        if not events:  # ran off the new end: show the newest page instead
            return audit_event_page(filters=filters, size=size)
    else:
        qs = base if before is None else base.filter(id__lt=before)
        rows = list(qs[: size + 1])
        more_older = len(rows) > size
        events = rows[:size]
        more_newer = before is not None and (
            base.filter(id__gt=events[0].pk).exists() if events else base.exists()
        )
    return AuditPage(
        events=events,
        newer_than=(events[0].pk if events else (before or 1) - 1) if more_newer else None,
        older_than=events[-1].pk if more_older and events else None,
    )


def audit_events_for_connector(connector_id: int, limit: int = 50) -> list[AuditEvent]:
    """The newest records about one connector, for its History tab."""
    return list(
        AuditEvent.objects.filter(connector_id=connector_id)
        .order_by("-id")
        .only(*LIST_COLUMNS)[:limit]
    )
