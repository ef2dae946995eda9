"""Read side of the audit log: filtering and keyset pages (no COUNT, so millions stay fast)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import QuerySet
from django.db.models.fields.json import KT
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


# The few keys of `details` the list needs, read in SQL instead of the whole (large) details:
# the batch or import a record belongs to (grouped into one entry), and where a refused request
# went (named in words by audit.wording).
LIST_DETAILS = {
    "group_batch": KT("details__batch"),
    "group_import": KT("details__import"),
    "refusal_url_name": KT("details__url_name"),
    "refusal_method": KT("details__method"),
    "refusal_path": KT("details__path"),
}

# A page holds PAGE_SIZE entries; a grouped entry holds many records, so a page may read up to
# this many times as many records (a 1,000-test batch takes 5 pages, not 20).
GROUP_READ = 4


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    newer_than: int | None  # link "Newer" as ?after=<id> when set
    older_than: int | None  # link "Older" as ?before=<id> when set

    @property
    def entries(self) -> list[AuditEntry]:
        return audit_entries(self.events)


def _list_rows(qs: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
    return qs.only(*LIST_COLUMNS).annotate(**LIST_DETAILS)


def _entries_prefix(rows: list[AuditEvent], size: int) -> int:
    """How many of `rows` (in page order) make up at most `size` entries."""
    seen: set[tuple[str, str]] = set()
    entries = 0
    for index, event in enumerate(rows):
        key = group_key(event)
        if key is None or key not in seen:
            if entries == size:
                return index
            entries += 1
            if key is not None:
                seen.add(key)
    return len(rows)


def _page_rows(
    qs: QuerySet[AuditEvent], size: int, *, newer: bool
) -> tuple[list[AuditEvent], bool]:
    """The rows (in page order) of the page's `size` entries, and whether more follow.

    One read of size + 1 rows, unless grouped records make fewer entries than that; then the
    rows after them, a page at a time, up to GROUP_READ pages of rows (a longer group goes on
    on the next page).
    """
    limit = size * GROUP_READ
    rows = list(qs[: size + 1])
    exhausted = len(rows) <= size
    while not exhausted and len(rows) <= limit and _entries_prefix(rows, size) == len(rows):
        last = rows[-1].pk
        more = qs.filter(id__gt=last) if newer else qs.filter(id__lt=last)
        want = min(size + 1, limit + 1 - len(rows))
        batch = list(more[:want])
        rows += batch
        exhausted = len(batch) < want
    kept = min(_entries_prefix(rows, size), limit)
    return rows[:kept], kept < len(rows)


def audit_event_page(
    *,
    filters: AuditFilters,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> AuditPage:
    """One page of `size` entries by keyset: `before` = older than that id, `after` = newer;
    neither = newest. Records of one batch or import on the page count as one entry."""
    base = _list_rows(audit_events_filtered(filters))
    if after is not None and before is None:
        rows, more_newer = _page_rows(base.filter(id__gt=after).order_by("id"), size, newer=True)
        events = rows[::-1]
        more_older = bool(events) and base.filter(id__lt=events[-1].pk).exists()
        if not events:  # ran off the new end: show the newest page instead
            return audit_event_page(filters=filters, size=size)
    else:
        qs = base if before is None else base.filter(id__lt=before)
        events, more_older = _page_rows(qs, size, newer=False)
        more_newer = before is not None and (
            base.filter(id__gt=events[0].pk).exists() if events else base.exists()
        )
    return AuditPage(
        events=events,
        newer_than=(events[0].pk if events else (before or 1) - 1) if more_newer else None,
        older_than=events[-1].pk if more_older and events else None,
    )


def group_key(event: AuditEvent) -> tuple[str, str] | None:
    """("batch", id) or ("import", id) for a record of a batch test or an import, else None."""
    for kind in ("batch", "import"):
        value = getattr(event, f"group_{kind}", None)
        if value not in (None, ""):
            return kind, str(value)
    return None


@dataclass
class AuditEntry:
    """One line of the list: a record, or the records of one batch or import on the page."""

    events: list[AuditEvent]  # newest first
    key: tuple[str, str] | None = None

    @property
    def event(self) -> AuditEvent:
        return self.events[0]

    @property
    def grouped(self) -> bool:
        return len(self.events) > 1


def audit_entries(events: list[AuditEvent]) -> list[AuditEntry]:
    """The page's records as entries: each batch's or import's records gathered at its newest.

    Presentation only: the records, their order and the chain are untouched.
    """
    entries: list[AuditEntry] = []
    groups: dict[tuple[str, str], AuditEntry] = {}
    for event in events:
        key = group_key(event)
        if key is None:
            entries.append(AuditEntry([event]))
        elif key in groups:
            groups[key].events.append(event)
        else:
            groups[key] = AuditEntry([event], key)
            entries.append(groups[key])
    return entries


def audit_events_for_connector(connector_id: int, limit: int = 50) -> list[AuditEvent]:
    """The newest records about one connector, for its History tab."""
    return list(
        _list_rows(AuditEvent.objects.filter(connector_id=connector_id).order_by("-id"))[:limit]
    )
