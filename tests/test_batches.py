"""Testing many connectors at once: batches from the list and the CLI, politeness, lost workers."""

from __future__ import annotations

import json
import threading
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent, TestRun
from connectors.batches import (
    batch_cancel,
    batch_item_claim,
    batch_item_run,
    batch_progress,
    batch_reap,
    batch_start,
)
from connectors.connection_test import TestRateLimited
from connectors.models import Batch, BatchItem, Connector
from tests.conftest import OAUTH2_PASSWORD
from tests.peers.slow_token_server import SlowTokenServer


@pytest.fixture(scope="module")
def token_server():
    with SlowTokenServer(delay=0.05) as server:
        yield server


@pytest.fixture
def fleet(make_connector, token_server, loopback_allowed):
    """Three connectors on the slow token server: two pass, one fails."""

    def make(name: str, path: str) -> Connector:
        return make_connector(
            name, **{**OAUTH2_PASSWORD, "oauth2_token_url": token_server.url(path)}
        )

    return [make("hr_one", "/token"), make("hr_two", "/token"), make("hr_bad", "/fail")]


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def run_all(batch: Batch) -> None:
    """What the workers would do: run every item of the batch."""
    for item in BatchItem.objects.filter(batch=batch):
        batch_item_run(item_id=item.pk)


# --- Starting a batch from the list ----------------------------------------------------------


def test_the_list_offers_test_selected_to_operators_only(fleet, operator, viewer):
    page = client_for(operator).get(reverse("connectors:list"), {"q": "hr"}).content.decode()
    assert 'id="batch-form"' in page and "Test selected" in page
    assert "All 3 matching this filter" in page
    assert f'name="ids" value="{fleet[0].pk}"' in page
    assert '<input type="hidden" name="q" value="hr">' in page
    page = client_for(viewer).get(reverse("connectors:list")).content.decode()
    assert "Test selected" not in page and 'name="ids"' not in page


def test_test_selected_creates_a_batch_and_queues_it(fleet, operator, celery_no_worker):
    response = client_for(operator).post(
        reverse("connectors:batch-start"), {"scope": "selected", "ids": [fleet[0].pk, fleet[2].pk]}
    )
    batch = Batch.objects.get()
    assert response.status_code == 302 and response.url == reverse(
        "connectors:batch", args=[batch.pk]
    )
    assert (batch.created_by, batch.total, batch.source) == (operator, 2, "ui")
    assert batch.filter_description == "2 selected"
    assert sorted(batch.items.values_list("connector_name", flat=True)) == ["hr_bad", "hr_one"]
    # One audit record groups the batch.
    event = AuditEvent.objects.get(action="batch_test")
    assert event.details["batch"] == batch.pk and event.username == "operator"
    # One task message (up to CONNECTORS_BATCH_CHUNK items each) waits in the embedded queue.
    from pathlib import Path

    queue = Path(celery_no_worker.conf.broker_transport_options["data_folder_in"])
    assert len(list(queue.glob("*.msg"))) == 1


def test_a_batch_is_queued_in_chunks_of_items(fleet, operator, celery_no_worker, settings):
    from pathlib import Path

    settings.CONNECTORS_BATCH_CHUNK = 2
    batch = batch_start(user_or_system=operator, connector_ids=[c.pk for c in fleet])
    queue = Path(celery_no_worker.conf.broker_transport_options["data_folder_in"])
    messages = [json.loads(path.read_text()) for path in queue.glob("*.msg")]
    assert len(messages) == 2  # three items: two, then one
    bodies = [json.loads(__import__("base64").b64decode(m["body"])) for m in messages]
    chunks = sorted(len(args[0]) for args, _, _ in bodies)
    assert chunks == [1, 2]
    assert {m["headers"]["task"] for m in messages} == {"connectors.tasks.connector_tests_task"}
    assert sorted(i for args, _, _ in bodies for i in args[0]) == sorted(
        batch.items.values_list("pk", flat=True)
    )


def test_all_matching_this_filter_takes_every_match(fleet, operator, celery_no_worker):
    client_for(operator).post(
        reverse("connectors:batch-start"), {"scope": "all", "q": "hr_", "health": "never"}
    )
    batch = Batch.objects.get()
    assert batch.total == 3
    assert batch.filter_description == "q=hr_, health=never"


def test_a_broker_that_is_down_leaves_nothing_half_created(fleet, operator, celery_broker_down):
    response = client_for(operator).post(
        reverse("connectors:batch-start"), {"scope": "all"}, follow=True
    )
    assert "the background runner is not reachable" in response.content.decode()
    assert not Batch.objects.exists() and not BatchItem.objects.exists()
    assert not AuditEvent.objects.filter(action="batch_test").exists()


def test_viewers_may_watch_but_not_start_or_cancel(fleet, operator, viewer, celery_no_worker):
    batch = batch_start(user_or_system=operator, connector_ids=[c.pk for c in fleet])
    watcher = client_for(viewer)
    assert watcher.post(reverse("connectors:batch-start"), {"scope": "all"}).status_code == 403
    assert watcher.post(reverse("connectors:batch-cancel", args=[batch.pk])).status_code == 403
    page = watcher.get(reverse("connectors:batch", args=[batch.pk])).content.decode()
    assert "Batch test #" in page and "Cancel waiting tests" not in page
    assert "0 of 3 done" in page.replace("</span>", "").replace(
        '<span data-cc-batch-field="finished">', ""
    )
    document = watcher.get(reverse("connectors:batch-progress", args=[batch.pk])).json()
    assert document["total"] == 3 and document["state"] == "running"
    assert (
        client_for(operator)
        .get(reverse("connectors:batch", args=[batch.pk]))
        .content.decode()
        .count("Cancel waiting tests")
        == 1
    )


# --- Running it ---------------------------------------------------------------------------


def test_every_test_in_a_batch_is_recorded_and_audited_like_a_single_test(
    fleet, operator, celery_no_worker
):
    batch = batch_start(user_or_system=operator, connector_ids=[c.pk for c in fleet])
    run_all(batch)
    batch.refresh_from_db()
    assert batch.state == "finished" and batch.finished_at is not None
    runs = TestRun.objects.filter(connector_name__startswith="hr_")
    assert runs.count() == 3
    assert {r.username for r in runs} == {"operator"}
    events = AuditEvent.objects.filter(kind="test_run")
    assert events.count() == 3
    assert all(e.details == {"batch": batch.pk} for e in events)
    progress = batch_progress(batch=batch)
    assert (progress.ok, progress.failed, progress.percent) == (2, 1, 100)
    assert progress.by_outcome == {"success": 2, "invalid_grant": 1}
    document = (
        client_for(operator).get(reverse("connectors:batch-progress", args=[batch.pk])).json()
    )
    assert document["finished"] == 3 and {i["connector"] for i in document["items"]} == {
        "hr_one",
        "hr_two",
        "hr_bad",
    }
    # The health rows moved like after any test.
    assert Connector.objects.get(name="hr_bad").health.last_ok is False


def test_an_item_is_claimed_once(fleet, operator, celery_no_worker):
    batch = batch_start(user_or_system=operator, connector_ids=[fleet[0].pk])
    item = batch.items.get()
    assert batch_item_claim(item_id=item.pk) == 1
    assert batch_item_claim(item_id=item.pk) is None
    assert batch_item_run(item_id=item.pk) == "not-claimed"
    assert not TestRun.objects.exists()


def test_cancel_skips_waiting_tests_and_lets_running_ones_finish(fleet, operator, celery_no_worker):
    batch = batch_start(user_or_system=operator, connector_ids=[c.pk for c in fleet])
    first = batch.items.order_by("id").first()
    claim = batch_item_claim(item_id=first.pk)
    assert claim == 1
    response = client_for(operator).post(reverse("connectors:batch-cancel", args=[batch.pk]))
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.state == "cancelled" and batch.cancelled_by_name == "operator"
    states = dict(batch.items.values_list("connector_name", "state"))
    assert sorted(states.values()) == ["running", "skipped", "skipped"]
    assert AuditEvent.objects.filter(action="batch_cancel").count() == 1
    # Skipped items are never run, even if their message is delivered later.
    for item in batch.items.filter(state="skipped"):
        assert batch_item_run(item_id=item.pk) == "not-claimed"
    assert batch_cancel(batch=batch, user=operator) == 0


def test_an_item_whose_worker_died_is_requeued_once_then_lost(
    fleet, operator, celery_no_worker, settings
):
    settings.CONNECTORS_BATCH_LEASE_SECONDS = 0
    batch = batch_start(user_or_system=operator, connector_ids=[fleet[0].pk])
    item = batch.items.get()
    batch_item_claim(item_id=item.pk)  # ... and the worker is killed
    assert batch_reap(batch_id=batch.pk) == [item.pk]
    item.refresh_from_db()
    assert (item.state, item.claims) == ("pending", 1)
    batch_item_claim(item_id=item.pk)  # killed again
    assert batch_reap(batch_id=batch.pk) == []
    item.refresh_from_db()
    batch.refresh_from_db()
    assert item.state == "lost" and batch.state == "finished"
    page = client_for(operator).get(reverse("connectors:batch", args=[batch.pk])).content.decode()
    assert "1 lost" in page


def test_a_requeue_while_the_broker_is_down_is_queued_again_by_a_later_reap(
    fleet, operator, celery_no_worker, settings
):
    """The reaper marks an item waiting, then queues it: a dead broker must not strand it."""
    from unittest import mock

    from config.celery import RunnerUnreachable
    from connectors import batches

    settings.CONNECTORS_BATCH_LEASE_SECONDS = 0
    batch = batch_start(user_or_system=operator, connector_ids=[fleet[0].pk])
    item = batch.items.get()
    batch_item_claim(item_id=item.pk)  # ... and the worker is killed
    settings.CONNECTORS_BATCH_LEASE_SECONDS = 60
    with mock.patch.object(batches, "_send_items", side_effect=RunnerUnreachable("down")):
        with pytest.raises(RunnerUnreachable):
            batch_reap(batch_id=batch.pk)
    item.refresh_from_db()
    assert item.state == "pending"  # waiting, but no message was queued for it
    sent: list[int] = []
    with mock.patch.object(batches, "_send_items", side_effect=sent.extend):
        assert batch_reap(batch_id=batch.pk) == []  # nothing newly requeued ...
        assert sent == [item.pk]  # ... but the stranded item is queued again
        batch_reap(batch_id=batch.pk)
    assert sent == [item.pk]  # once: it waits a lease for a runner before another message
    assert batch_item_run(item_id=item.pk) == "done"
    item.refresh_from_db()
    assert (item.state, item.claims) == ("done", 2)


def test_a_batch_counts_once_against_the_rate_limit(fleet, operator, celery_no_worker, settings):
    settings.CONNECTORS_TEST_RATE_LIMIT = "1/60"
    batch = batch_start(user_or_system=operator, connector_ids=[c.pk for c in fleet])
    run_all(batch)  # three tests, none refused by the limit
    assert TestRun.objects.count() == 3
    with pytest.raises(TestRateLimited):
        batch_start(user_or_system=operator, connector_ids=[fleet[0].pk])
    assert Batch.objects.count() == 1


# --- Politeness -------------------------------------------------------------------------------


def _hammer(url: str, threads: int) -> None:
    import requests

    from connectors.politeness import host_slot

    def one() -> None:
        with host_slot(url):
            requests.post(url, data={"grant_type": "password"}, timeout=10)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_no_more_than_the_per_host_limit_at_once_on_this_machine(settings, tmp_path):
    settings.CONNECTORS_PER_HOST_CONCURRENCY = 3
    settings.CELERY_DATA_DIR = tmp_path
    settings.REDIS_URL = ""
    with SlowTokenServer(delay=0.1) as server:
        _hammer(server.url(), 12)
        stats = server.stats()
    assert stats["requests"] == 12 and stats["max_in_flight"] == 3


def test_no_more_than_the_per_host_limit_at_once_across_workers_with_redis(settings, tmp_path):
    from tests.conftest import REDIS_TEST_URL, _redis_up

    if not _redis_up(REDIS_TEST_URL):
        pytest.skip("Redis is not answering")
    settings.CONNECTORS_PER_HOST_CONCURRENCY = 4
    settings.REDIS_URL = REDIS_TEST_URL
    with SlowTokenServer(delay=0.1) as server:
        _hammer(server.url(), 16)
        stats = server.stats()
    assert stats["requests"] == 16 and stats["max_in_flight"] == 4


def test_a_redis_lease_of_a_dead_holder_expires(settings):
    import time

    from connectors import politeness
    from tests.conftest import REDIS_TEST_URL, _redis_up

    if not _redis_up(REDIS_TEST_URL):
        pytest.skip("Redis is not answering")
    settings.CONNECTORS_PER_HOST_CONCURRENCY = 1
    settings.REDIS_URL = REDIS_TEST_URL
    origin = politeness.origin_of("http://127.0.0.1:1/dead")
    client = politeness._redis()
    key = "connector-host-slots:" + __import__("hashlib").sha256(origin.encode()).hexdigest()[:32]
    client.delete(key)
    client.zadd(key, {"killed-worker": time.time() - 1})  # a lease that has run out
    with politeness.host_slot("http://127.0.0.1:1/dead", wait=1):
        assert client.zcard(key) == 1  # the dead lease was dropped, ours taken
    assert client.zcard(key) == 0


# --- The command line -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_cli_runs_in_its_own_process_without_a_worker(
    make_connector, token_server, loopback_allowed, celery_no_worker
):
    for name, path in (("cli_a", "/token"), ("cli_b", "/token"), ("cli_c", "/fail")):
        make_connector(name, **{**OAUTH2_PASSWORD, "oauth2_token_url": token_server.url(path)})
    # One thread: SQLite's shared in-memory test database refuses concurrent writers outright
    # (no busy wait); the worker test below runs many at once on a file database.
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("connectors_test_all", "--json", "--concurrency", "1", stdout=out, stderr=err)
    assert exited.value.code == 1
    assert "in this process (no background worker is reachable), 1 at once" in err.getvalue()
    document = json.loads(out.getvalue())
    assert set(document) == {
        "batch",
        "total",
        "ok",
        "failed",
        "by_outcome",
        "duration_ms",
        "results",
    }
    assert (document["total"], document["ok"], document["failed"]) == (3, 2, 1)
    assert document["by_outcome"] == {"success": 2, "invalid_grant": 1}
    assert {r["connector"]: r["ok"] for r in document["results"]} == {
        "cli_a": True,
        "cli_b": True,
        "cli_c": False,
    }
    assert set(document["results"][0]) == {"connector", "ok", "outcome", "duration_ms"}
    assert Batch.objects.get(pk=document["batch"]).runner == "local"
    assert TestRun.objects.count() == 3

    out = StringIO()
    call_command(
        "connectors_test_all",
        "--connector",
        "cli_a",
        "--connector",
        "cli_b",
        "--concurrency",
        "1",
        stdout=out,
    )
    assert "2 of 2 passed" in out.getvalue()  # and exit 0: no SystemExit


@pytest.mark.django_db
def test_the_cli_refuses_bad_usage(make_connector):
    make_connector("only_one")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as caught:
        call_command("connectors_test_all", "--connector", "no_such")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError) as caught:
        call_command("connectors_test_all", "--concurrency", "0")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError) as caught:
        call_command("connectors_test_all", "--search", "zzz-nothing")
    assert caught.value.returncode == 2


def test_a_test_that_outlived_its_lease_is_not_recorded_twice(
    fleet, operator, celery_no_worker, settings, caplog
):
    """A slow runner whose item was requeued meanwhile: its recording is rolled back."""
    from connectors import batches

    batch = batch_start(user_or_system=operator, connector_ids=[fleet[0].pk])
    item = batch.items.get()
    real_claim = batches._claim_and_load

    def claim_then_lose_the_lease(item_id):
        claimed = real_claim(item_id)
        # Meanwhile the lease expired, the reaper requeued it and another runner claimed it.
        BatchItem.objects.filter(pk=item.pk).update(state="pending")
        assert batch_item_claim(item_id=item.pk) == claimed.claim + 1
        return claimed

    from unittest import mock

    with mock.patch.object(batches, "_claim_and_load", claim_then_lose_the_lease):
        assert batch_item_run(item_id=item.pk) == "stale"
    assert not TestRun.objects.exists()
    item.refresh_from_db()
    assert (item.state, item.claims) == ("running", 2)


def test_the_periodic_reaper_finishes_batches_nobody_watches(
    fleet, operator, celery_no_worker, settings
):
    from connectors.tasks import batches_reap

    settings.CONNECTORS_BATCH_LEASE_SECONDS = 0
    batch = batch_start(user_or_system=operator, connector_ids=[fleet[0].pk])
    item = batch.items.get()
    batch_item_claim(item_id=item.pk)  # and its worker dies
    assert batches_reap() == 1
    batch_item_claim(item_id=item.pk)  # dies again
    assert batches_reap() == 0
    batch.refresh_from_db()
    assert batch.state == "finished" and batch.items.get().state == "lost"


def test_items_whose_message_was_lost_before_any_claim_are_queued_again(
    fleet, operator, celery_no_worker
):
    """A worker took a chunk's message and was killed before claiming its items."""
    from pathlib import Path

    from django.utils import timezone

    batch = batch_start(user_or_system=operator, connector_ids=[c.pk for c in fleet])
    queue = Path(celery_no_worker.conf.broker_transport_options["data_folder_in"])
    for message in queue.glob("*.msg"):
        message.unlink()  # taken by the killed worker
    assert all(item.lease_until > timezone.now() for item in batch.items.all())
    assert batch_reap(batch_id=batch.pk) == []
    assert not list(queue.glob("*.msg"))  # not yet: the claim deadline has not passed
    batch.items.update(lease_until=timezone.now() - __import__("datetime").timedelta(seconds=1))
    batch_reap(batch_id=batch.pk)
    assert len(list(queue.glob("*.msg"))) == 1  # the three items again, in one message
    assert all(item.lease_until > timezone.now() for item in batch.items.all())
    assert set(batch.items.values_list("state", flat=True)) == {"pending"}
