"""The command's own batch runner: one connection per thread, one process per CPU on PostgreSQL."""

from __future__ import annotations

import json
import threading
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.db.backends.signals import connection_created

from audit.chain import chain_verify
from audit.models import AuditEvent, TestRun
from connectors import batch_local
from connectors.batch_local import BatchProcessFailed, batch_processes, batch_run_local
from connectors.batches import batch_start
from connectors.models import Batch, BatchItem
from tests.conftest import OAUTH2_PASSWORD
from tests.peers.slow_token_server import SlowTokenServer
from tests.test_audit_support import postgres_only


@pytest.fixture(scope="module")
def token_server():
    with SlowTokenServer(delay=0.02) as server:
        yield server


@pytest.fixture
def fleet(make_connector, token_server, loopback_allowed):
    url = token_server.url("/token")
    return [
        make_connector(f"fleet_{n}", **{**OAUTH2_PASSWORD, "oauth2_token_url": url})
        for n in range(8)
    ]


def _local_batch(fleet) -> Batch:
    return batch_start(
        user_or_system=None, connector_ids=[c.pk for c in fleet], filter_description="test",
        source=Batch.Source.CLI, dispatch=False,
    )  # fmt: skip


def _each_recorded_once(fleet) -> None:
    runs = list(TestRun.objects.values_list("connector_name", flat=True))
    assert sorted(runs) == sorted(c.name for c in fleet)
    assert AuditEvent.objects.filter(kind="test_run").count() == len(fleet)
    assert set(BatchItem.objects.values_list("state", flat=True)) == {"done"}
    result = list(chain_verify())[-1]
    assert result.ok, result.problem


def test_on_sqlite_or_where_it_cannot_fork_the_batch_stays_in_one_process(settings):
    settings.CONNECTORS_BATCH_PROCESSES = 4
    with mock.patch.object(batch_local.lean_sql, "vendor", return_value="sqlite"):
        assert batch_processes(items=100, concurrency=8) == 1
    with (
        mock.patch.object(batch_local.lean_sql, "vendor", return_value="postgresql"),
        mock.patch.object(
            batch_local.multiprocessing, "get_all_start_methods", return_value=["spawn"]
        ),
    ):
        assert batch_processes(items=100, concurrency=8) == 1
    with mock.patch.object(batch_local.lean_sql, "vendor", return_value="postgresql"):
        assert batch_processes(items=100, concurrency=8) == 4
        assert batch_processes(items=3, concurrency=8) == 3  # never more processes than items
        assert batch_processes(items=100, concurrency=2) == 2  # ... or than tests at once
        settings.CONNECTORS_BATCH_PROCESSES = 0  # one per CPU
        with mock.patch.object(batch_local.os, "cpu_count", return_value=6):
            assert batch_processes(items=100, concurrency=8) == 6


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_each_thread_opens_one_database_connection_for_all_its_items(fleet):
    opened: list[str] = []

    def count(sender, connection, **kwargs):
        opened.append(threading.current_thread().name)

    batch = _local_batch(fleet)
    connection_created.connect(count)
    try:
        batch_run_local(batch=batch, concurrency=2, processes=1)
    finally:
        connection_created.disconnect(count)
    # Two threads, eight items: before, each item opened (and closed) a connection of its own.
    runner_threads = [name for name in opened if name != threading.current_thread().name]
    assert len(runner_threads) <= 2 + 4  # the two item threads, and at most the recorder threads
    assert len([n for n in runner_threads if "recorder" not in n]) == 2
    _each_recorded_once(fleet)


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_command_spreads_a_batch_over_processes_on_postgresql(
    fleet, settings, celery_no_worker
):
    settings.CONNECTORS_BATCH_PROCESSES = 2
    out, err = StringIO(), StringIO()
    call_command("connectors_test_all", "--json", "--concurrency", "4", stdout=out, stderr=err)
    assert "in 2 processes of this command (no background worker is reachable), 4 at once" in (
        err.getvalue()
    )
    document = json.loads(out.getvalue())
    assert (document["total"], document["ok"], document["failed"]) == (8, 8, 0)
    _each_recorded_once(fleet)
    batch = Batch.objects.get(pk=document["batch"])
    assert batch.state == "finished" and batch.runner == "local"


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_runner_process_that_fails_is_reported_and_its_items_left_to_the_reaper(fleet):
    batch = _local_batch(fleet)
    with mock.patch.object(batch_local, "batch_item_run", side_effect=RuntimeError("boom")):
        with pytest.raises(BatchProcessFailed, match="batch-runner-1, batch-runner-2"):
            batch_run_local(batch=batch, concurrency=2, processes=2)
    assert not TestRun.objects.exists()
    assert set(BatchItem.objects.values_list("state", flat=True)) == {"pending"}
