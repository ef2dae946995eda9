"""Audit log entry points used by the rest of the app: append a record, prune old ones."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import round_trips, writer
from audit.chain import event_hash
from audit.keys import ChainKeys, current_chain_keys
from audit.lock_timing import time_lock_hold
from audit.models import GENESIS_HASH, AuditChainHead, AuditEvent, TestAttempt, TestRun
from audit.run_text import RunText, payload_text, run_text
from audit.sanitize import (
    NO_SECRETS,
    Secrets,
    connector_secrets,
    details_redact,
    storable_row,
    storable_text,
)

logger = logging.getLogger("audit")

KINDS = frozenset(AuditEvent.Kind.values)

# How the acting user reached the app when it was not a page, e.g. {"channel": "api",
# "api_client": "deploy bot"} (the API token's name): every record written meanwhile says so.
_VIA: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "audit_via", default=None
)


@contextlib.contextmanager
def audit_via(**via: str) -> Iterator[None]:
    """Mark every record written inside the block with how it came: its source and details."""
    reset = _VIA.set(dict(via))
    try:
        yield
    finally:
        _VIA.reset(reset)


def audit_via_note(**more: str) -> None:
    """Add to the channel of the current audit_via block (e.g. once the caller is known)."""
    current = _VIA.get()
    if current is not None:
        current.update(more)


class AuditWriteError(RuntimeError):
    """The audit record could not be written; the action it describes must not pass silently."""

    def __init__(self, message: str = "", *, reason: str = "") -> None:
        self.reason = reason
        super().__init__(
            message
            or "The audit log could not record this action, so it was not completed. "
            "Try again; if it keeps failing, tell an administrator."
        )


def _lock_head() -> AuditChainHead:
    """Lock the chain head for this transaction (every append and prune takes it, one at a time).

    On SQLite the IMMEDIATE transaction mode already serialises writers; on PostgreSQL the row
    lock does. If the row is missing it is created from the newest record, never from scratch,
    so the chain cannot restart in the middle.
    """
    locked = AuditChainHead.objects.select_for_update()
    head = locked.filter(pk=1).first()
    if head is not None:
        return head
    last = AuditEvent.objects.order_by("-id").values("id", "hash").first()
    try:
        with transaction.atomic():
            return AuditChainHead.objects.create(
                pk=1,
                last_event_id=last["id"] if last else None,
                last_hash=last["hash"] if last else GENESIS_HASH,
            )
    except IntegrityError:  # another writer created it first: wait for and lock theirs
        return locked.get(pk=1)


def _load_run(test_run: Any) -> tuple[Any, list[Any]]:
    """The run and its attempts as stored, so the hash covers exactly what the database holds."""
    run = TestRun._default_manager.get(pk=test_run.pk)
    attempts = list(TestAttempt._default_manager.filter(run=run).order_by("position", "id"))
    return run, attempts


def _refuse_unkeyed_after_keyed(last_event_id: int | None) -> None:
    """Once the log is keyed, an unkeyed record would read as a forgery: refuse to write one."""
    if last_event_id is None:
        return
    last_key = AuditEvent.objects.filter(pk=last_event_id).values_list("key_id", flat=True).first()
    if last_key:
        raise AuditWriteError(
            "AUDIT_CHAIN_KEY is not set, but the audit log is signed with a chain key: set the "
            "key again before recording anything.",
            reason="chain_key_missing",
        )


def _sign(
    event: AuditEvent,
    prev_hash: str,
    keys: ChainKeys,
    run: Any,
    attempts: Sequence[Any],
    encoded: RunText | None = None,
) -> None:
    """Link and hash an event; the hash covers the run and attempts exactly as given.

    `encoded`: the run's rows encoded before they were written (audit.run_text), so that the
    chain-head lock is not held while they are encoded.
    """
    event.created_at = timezone.now()
    event.prev_hash = prev_hash
    event.key_id = keys.signing_key_id
    text = None if encoded is None else payload_text(event, encoded, run, attempts)
    event.hash = event_hash(event, run, attempts, keys=keys, payload_text=text)


def _append(event: AuditEvent, *, test_run: Any = None) -> AuditEvent:
    storable_row(event)
    with transaction.atomic():
        audit_group_flush()  # the records of a group's runs come first, in order
        writer.insist_on_durable_commit()  # not a test run: this transaction waits for the disk
        head = _lock_head()
        time_lock_hold()
        run, attempts = _load_run(test_run) if test_run is not None else (None, [])
        keys = current_chain_keys()
        if keys.signing_key is None:
            _refuse_unkeyed_after_keyed(head.last_event_id)
        _sign(event, head.last_hash, keys, run, attempts)
        event.save()
        head.last_event_id = event.pk
        head.last_hash = event.hash
        head.save(update_fields=["last_event_id", "last_hash", "updated_at"])
    return event


def _append_written(
    event: AuditEvent,
    run: TestRun,
    attempts: Sequence[TestAttempt],
    head: tuple[int | None, str] | None,
    encoded: RunText,
    *,
    last: bool = False,
) -> None:
    """Append the record of a run written in this transaction, hashing the rows as written.

    The run and attempts were made storable before they were written, so what they hold here
    is what the database gives back: nothing is read again. `head` is the chain head locked
    after the run's rows were written (None: missing, or no lean SQL here), so the lock is
    held for this append and the commit that follows, never for the exchange or the run.
    `last`: nothing more is written in this transaction (its COMMIT may ride with the append).
    """
    if _GROUP.get():  # in a group without lean writes: the group's waiting records first
        audit_group_flush()
    keys = current_chain_keys()
    if head is None:  # the ORM path locks the head, creating it from the newest record
        locked = _lock_head()
        head = (locked.last_event_id, locked.last_hash)
    time_lock_hold()
    if keys.signing_key is None:
        _refuse_unkeyed_after_keyed(head[0])
    _sign(event, head[1], keys, run, attempts, encoded)
    if writer.lean_writes_supported():
        writer.append_event(event, last=last)
    else:
        event.save()
        writer.move_head(event.pk, event.hash)


# --- a group of recordings in one transaction (connectors.recording) ------------------------

_Waiting = tuple[AuditEvent, TestRun, Sequence[TestAttempt], RunText]
_GROUP: contextvars.ContextVar[list[_Waiting] | None] = contextvars.ContextVar(
    "audit_group", default=None
)


@contextlib.contextmanager
def audit_group() -> Iterator[None]:
    """Within one transaction: test runs recorded here append their records together, at the end.

    Each test_run_record writes its run, attempts and before_append rows as alone, but without a
    savepoint, and its record waits; audit_group_flush() (call it before the commit; any other
    append in the group calls it first) locks the chain head once, signs them in order and
    appends them in one round trip. The caller must roll the whole transaction back on any
    failure (and may then record each run alone): nothing in a group is undone by itself.
    """
    reset = _GROUP.set([])
    try:
        with round_trips.riders():
            yield
    finally:
        _GROUP.reset(reset)


def audit_group_flush() -> None:
    """Append the waiting records of the current group, in order, under one chain-head lock."""
    pending = _GROUP.get()
    if not pending:
        round_trips.flush_riders()
        return
    waiting = list(pending)
    pending.clear()
    keys = current_chain_keys()
    head = writer.lock_head()
    if head is None:  # missing: the ORM path creates it from the newest record
        locked = _lock_head()
        head = (locked.last_event_id, locked.last_hash)
    time_lock_hold()
    if keys.signing_key is None:
        _refuse_unkeyed_after_keyed(head[0])
    previous = head[1]
    for event, run, attempts, encoded in waiting:
        _sign(event, previous, keys, run, attempts, encoded)
        previous = event.hash
    writer.append_events([each[0] for each in waiting])


def _user_fields(user: Any) -> tuple[int | None, str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return None, ""
    return user.pk, user.get_username()


def _fill_from_run(event: AuditEvent, test_run: Any, secrets: Secrets) -> None:
    """Link the run, and take from it whatever the caller left out."""
    if test_run.pk is None:
        raise ValueError("save the test run and its attempts before recording it")
    event.test_run_id = test_run.pk
    if event.connector_id is None:
        event.connector_id = test_run.connector_id
    event.connector_name = event.connector_name or test_run.connector_name
    if event.user_id is None and test_run.user_id is not None:
        event.user_id, event.username = test_run.user_id, test_run.username
    event.source = event.source or test_run.source
    event.outcome = event.outcome or test_run.outcome
    event.summary = event.summary or secrets.text(test_run.message)


def _new_event(
    *,
    kind: str,
    action: str,
    user: Any,
    connector: Any,
    name: str,
    connector_id: int | None,
    source: str,
    outcome: str,
    summary: str,
    details: dict | None,
    secrets: Secrets,
) -> AuditEvent:
    """An unsaved record, redacted; checked for a known kind and an action."""
    if kind not in KINDS:
        raise ValueError(f"unknown audit kind {kind!r}")
    if not action:
        raise ValueError("an audit record needs an action")
    user_id, username = _user_fields(user)
    via = _VIA.get()
    if via:
        source = source or via.get("channel", "")
        details = {**(details or {}), "via": via}
    return AuditEvent(
        kind=kind,
        action=str(action)[:32],
        user_id=user_id,
        username=username,
        connector_id=connector_id if connector_id is not None else getattr(connector, "pk", None),
        connector_name=str(name)[:64],
        source=str(source)[:16],
        outcome=str(outcome or "")[:32],
        summary=secrets.text(summary),
        details=details_redact(details, secrets=secrets),
    )


def _log_not_written(
    kind: str, action: str, name: str, user: Any, exc: Exception, secrets: Secrets
) -> None:
    # The exception text may quote values (SQL parameters, reprs); log only what is safe.
    logger.error(
        "Audit record NOT written: kind=%s action=%s connector=%s user=%s: %s: %s",
        kind,
        action,
        name or "-",
        getattr(user, "pk", None),
        type(exc).__name__,
        secrets.text(str(exc))[:300],
    )


def audit_record(
    *,
    kind: str,
    action: str,
    user: Any = None,
    connector: Any = None,
    connector_name: str = "",
    outcome: str = "",
    summary: str = "",
    details: dict | None = None,
    test_run: Any = None,
    connector_id: int | None = None,
    source: str = "",
) -> AuditEvent:
    """Append one record to the audit log, redacted, chained to the previous one.

    Call it inside the transaction of the action it records. `connector_id` names a connector
    that is already deleted (its pk is gone). For a test run, the run and its attempts must be
    saved first (they are read back for the hash; `test_run_record` writes and hashes in one
    go); missing user/connector/outcome/summary/source are taken from the run.
    Raises AuditWriteError (after logging to the "audit" logger) if the record is not written.
    """
    name = connector_name or getattr(connector, "name", "") or ""
    secrets: Secrets = NO_SECRETS
    try:
        secrets = connector_secrets(connector)
        event = _new_event(
            kind=kind,
            action=action,
            user=user,
            connector=connector,
            name=name,
            connector_id=connector_id,
            source=source,
            outcome=outcome,
            summary=summary,
            details=details,
            secrets=secrets,
        )
        if test_run is not None:
            _fill_from_run(event, test_run, secrets)
        return _append(event, test_run=test_run)
    except Exception as exc:  # every failure must become loud, never silent
        _log_not_written(kind, action, name, user, exc, secrets)
        raise AuditWriteError(reason=type(exc).__name__) from None


# --- recording a test run -------------------------------------------------------------------

RUN_NOT_STORED = (
    "Its details (requests, answers, token facts) could not be stored ({reason}), so only this "
    "summary was recorded; an administrator finds the cause in the error log."
)


class _Record:
    """A run's record and its text (audit.run_text), made once, when first asked for."""

    __slots__ = ("_attempts", "_made", "_make", "_run")

    def __init__(
        self, make: Callable[[], AuditEvent], run: TestRun, attempts: Sequence[TestAttempt]
    ) -> None:
        self._make, self._run, self._attempts = make, run, attempts
        self._made: tuple[AuditEvent, RunText] | None = None

    def __call__(self) -> tuple[AuditEvent, RunText]:
        if self._made is None:
            event = self._make()
            self._made = (event, run_text(event, self._run, self._attempts))
        return self._made


def _write_run(
    run: TestRun,
    attempts: Sequence[TestAttempt],
    make_event: Callable[[], AuditEvent],
    then: Callable[[TestRun], Any] | None,
    before_append: Callable[[TestRun], Any] | None = None,
) -> AuditEvent:
    """One transaction: the run, its attempts, its record; the head lock is taken last.

    `before_append(run)` writes what belongs with the run but not to the chain (the health
    row, a batch item) before the head is locked, so concurrent recorders wait only for
    appends. In a transaction of its own (round_trips.own_transaction, the usual case) that is two
    round trips: BEGIN, the run's rows, the before_append rows and the lock in one; the record,
    the head's move and COMMIT in the other. The record (`make_event()`) and its text (about
    0.2 ms of Python) are made while the server writes the run's rows, before the lock is sent;
    elsewhere before any statement of the transaction; never under the lock. Returns the record.
    """
    group = _GROUP.get()
    connection = transaction.get_connection()
    # Alone: no transaction of anyone else's is open (an atomic block, or autocommit turned off).
    alone = group is None and not connection.in_atomic_block and connection.get_autocommit()
    record = _Record(make_event, run, attempts)
    if not (alone and round_trips.several_statements_per_trip(connection)):
        # Before the transaction: on SQLite its BEGIN takes the database's write lock.
        record()
    # In a group (audit_group) a failure rolls the whole group back, so no savepoint is needed.
    # The before_append rows ride with the head lock (or in a group, the next run's INSERT).
    riding = round_trips.riders() if group is None else contextlib.nullcontext()
    with (
        transaction.atomic(savepoint=group is None),
        riding,
        round_trips.own_transaction(alone) as own,
    ):
        if not own:
            record()  # no statement of this transaction has gone yet: nothing is locked
        if group is not None and writer.lean_writes_supported():
            # The record waits for the group's one append (audit_group_flush).
            writer.insert_run(run, attempts)
            if before_append is not None:
                before_append(run)
            event, encoded = record()
            event.test_run_id = run.pk
            group.append((event, run, attempts, encoded))
            if then is not None:
                then(run)
            return event
        head = _write_rows(run, attempts, before_append, record if own else None)
        event, encoded = record()
        event.test_run_id = run.pk
        _append_written(event, run, attempts, head, encoded, last=then is None)
        if then is not None:
            then(run)
        return event


def _write_rows(
    run: TestRun,
    attempts: Sequence[TestAttempt],
    before_append: Callable[[TestRun], Any] | None,
    meanwhile: Callable[[], object] | None,
) -> tuple[int | None, str] | None:
    """Write the run, its attempts and the before_append rows, then lock the chain head; the
    head, or None (missing, or the ORM's path: the append locks it). `meanwhile`: in a
    transaction of our own (own_transaction), run during the first round trip."""
    if meanwhile is not None:
        return _write_run_riding(run, attempts, before_append, meanwhile)
    if writer.lean_writes_supported():
        with writer.before_head_lock(before_append):
            return writer.insert_run_and_lock_head(run, attempts)
    run.save()
    for attempt in attempts:
        attempt.run = run
    TestAttempt.objects.bulk_create(attempts)
    if before_append is not None:
        before_append(run)
    return None


def _write_run_riding(
    run: TestRun,
    attempts: Sequence[TestAttempt],
    before_append: Callable[[TestRun], Any] | None,
    meanwhile: Callable[[], object],
) -> tuple[int | None, str] | None:
    """In a transaction of its own: BEGIN, the run's INSERT and the before_append rows ride
    with the head lock, in one round trip; the head as writer.lock_head() gives it.
    `meanwhile()` runs while the server writes the rows, before the lock is asked for.

    run.pk reads round_trips.NEW_RUN_ID until the INSERT is back.
    """
    writer.insert_run_riding(run, attempts)
    try:
        if before_append is not None:
            with round_trips.riders_before_every_statement():
                before_append(run)
        return writer.lock_head(meanwhile=meanwhile)
    except BaseException:
        if run.pk is round_trips.NEW_RUN_ID:  # never written: no id
            run.pk = None
        raise


def _minimal_run(run: TestRun, reason: str) -> TestRun:
    """The run with its outcome and who/when, without anything the remote server sent."""
    note = RUN_NOT_STORED.format(reason=reason)
    minimal = TestRun(
        connector_id=run.connector_id,
        connector_name=run.connector_name,
        user_id=run.user_id,
        username=run.username,
        source=run.source,
        started_at=run.started_at,
        duration_ms=run.duration_ms,
        ok=run.ok,
        outcome=run.outcome,
        message=f"The test finished with the outcome {run.outcome!r}. {note}",
        hint="",
        client_authentication_used="",
        token=None,
        config={},
    )
    storable_row(minimal)
    return minimal


def test_run_record(
    *,
    run: TestRun,
    attempts: Sequence[TestAttempt],
    user: Any = None,
    connector: Any = None,
    then: Callable[[TestRun], Any] | None = None,
    details: dict | None = None,
    before_append: Callable[[TestRun], Any] | None = None,
) -> TestRun:
    """Store a test run, its attempts and its audit record; return the stored run.

    Whatever the remote server sent, it is made storable first (audit.sanitize), so the run and
    its record are stored. If writing still fails, a minimal run (outcome, who, when, no
    attempts) and its record are stored instead, with a message that says so, and the failure
    goes to the error log. Only if that fails too is AuditWriteError raised. `then(run)` runs
    in the same transaction (e.g. a denial that names the run). The record's hash is computed
    from the values written, not read back. Call it outside any transaction: the head lock is
    held from the append to the commit.
    """
    name = run.connector_name
    secrets: Secrets = NO_SECRETS
    try:
        secrets = connector_secrets(connector)
        for row in (run, *attempts):
            storable_row(row)
        run.audit_event = _write_run(
            run,
            attempts,
            functools.partial(_run_event, run, user, connector, secrets, details),
            then,
            before_append,
        )
        return run
    except AuditWriteError as exc:
        if exc.reason == "chain_key_missing":  # a minimal record would be refused alike
            _log_not_written("test_run", "test", name, user, exc, secrets)
            raise
        failure: Exception = exc
    except Exception as exc:  # noqa: BLE001 - the exchange happened: record at least this much
        failure = exc
    logger.error(
        "Test run of %s NOT stored in full, storing a minimal record: %s: %s",
        name or "-",
        type(failure).__name__,
        secrets.text(str(failure))[:300],
    )
    minimal = _minimal_run(run, type(failure).__name__)
    try:
        event = _write_run(
            minimal,
            [],
            functools.partial(_run_event, minimal, user, connector, secrets, details),
            then,
            before_append,
        )
    except Exception as exc:  # every failure must become loud, never silent
        _log_not_written("test_run", "test", name, user, exc, secrets)
        if isinstance(exc, AuditWriteError):
            raise
        raise AuditWriteError(reason=type(exc).__name__) from None
    minimal.audit_event = event
    return minimal


test_run_record.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _run_event(
    run: TestRun, user: Any, connector: Any, secrets: Secrets, details: dict | None = None
) -> AuditEvent:
    event = _new_event(
        kind=AuditEvent.Kind.TEST_RUN,
        action="test",
        user=user,
        connector=connector,
        name=run.connector_name,
        connector_id=None if connector is not None else run.connector_id,
        source=run.source,
        outcome=run.outcome,
        summary=storable_text(run.message[:500]),
        # E.g. {"batch": id}: which batch of tests this run belongs to.
        details=details,
        secrets=secrets,
    )
    storable_row(event)
    return event
