"""Issue 10: a batch's recordings committed in groups (connectors.recording, audit_group).

Each run of a group is stored and audited exactly as alone; the group pays one chain-head lock
and one commit; any fault rolls the group back and each run is recorded alone.
"""

from __future__ import annotations

import functools
from concurrent.futures import Future

import pytest
from django.utils import timezone

from audit.chain import chain_verify
from audit.lock_timing import chain_lock_timing
from audit.models import AuditEvent, TestRun
from audit.services import AuditWriteError
from connectors import recording
from connectors.connection_test import _Collected, _record
from connectors.health import health_state
from connectors.models import ConnectorHealth

pytestmark = pytest.mark.django_db


def job(connector, *, ok: bool = True, on_recorded=None):
    """What connector_test hands to recording.record once its exchange is over."""
    collected = _Collected(
        ok=ok, outcome="success" if ok else "invalid_client", message="done", attempts=[]
    )
    return functools.partial(
        _record, connector=connector, actor=None, source=TestRun.Source.BACKGROUND, rows=[],
        started_at=timezone.now(), duration_ms=7, collected=collected, details={"batch": 1},
        on_recorded=on_recorded,
    )  # fmt: skip


def record_as_one_group(jobs):
    recorder = recording._GroupRecorder(group_max=16, recorders=0)  # run here, not in a thread
    group = [(each, Future()) for each in jobs]
    recorder._record(group)
    return [done for _, done in group]


def test_a_group_records_each_run_as_alone_with_one_lock_and_one_commit(
    make_connector, django_capture_on_commit_callbacks
):
    connectors = [make_connector(f"grouped_{n}") for n in range(3)]
    before = AuditEvent.objects.count()
    with chain_lock_timing() as holds, django_capture_on_commit_callbacks(execute=True):
        results = record_as_one_group(
            [job(connectors[0]), job(connectors[1], ok=False), job(connectors[2])]
        )
    runs = [done.result()[0] for done in results]
    assert [run.connector_name for run in runs] == ["grouped_0", "grouped_1", "grouped_2"]
    assert len(holds) == 1  # one chain-head lock for the three records
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert [event.test_run_id for event in events] == [run.pk for run in runs]
    assert [event.details for event in events] == [{"batch": 1}] * 3
    # Linked in id order, as the verifier walks them, and each hash covers its run.
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert list(chain_verify())[-1].ok
    states = {h.pk: health_state(h) for h in ConnectorHealth.objects.all()}
    assert states == {connectors[0].pk: "passing", connectors[1].pk: "failing",
                      connectors[2].pk: "passing"}  # fmt: skip


def test_a_fault_in_a_group_records_every_other_run_alone(
    make_connector, django_capture_on_commit_callbacks
):
    connectors = [make_connector(f"grouped_{n}") for n in range(3)]

    def stale(run):  # e.g. the item's lease ran out: this recording must not stay
        raise RuntimeError("not ours any more")

    with django_capture_on_commit_callbacks(execute=True):
        results = record_as_one_group(
            [job(connectors[0]), job(connectors[1], on_recorded=stale), job(connectors[2])]
        )
    assert results[0].result()[0].pk and results[2].result()[0].pk
    with pytest.raises(AuditWriteError):
        results[1].result()
    assert sorted(TestRun.objects.values_list("connector_name", flat=True)) == [
        "grouped_0",
        "grouped_2",
    ]
    assert AuditEvent.objects.filter(kind="test_run").count() == 2
    assert list(chain_verify())[-1].ok


def test_outside_a_group_a_batch_test_is_recorded_at_once():
    assert recording.record(lambda: "recorded", batch=True) == "recorded"
    with recording.grouped_recording(recorders=1):
        assert recording.record(lambda: "in the recorder", batch=True) == "in the recorder"
        assert recording.record(lambda: "a single test", batch=False) == "a single test"
