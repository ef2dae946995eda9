"""POST /api/v1/batches/ and GET /api/v1/batches/{id}/: connectors_test_all's filter, the page's
progress document, the same refusals; nothing half-created when the runner is unreachable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from connectors.api.tokens import api_token_create
from connectors.batches import batch_item_run, batch_start
from connectors.models import Batch, BatchItem, Connector
from tests.conftest import OAUTH2_PASSWORD
from tests.peers.slow_token_server import SlowTokenServer

URL = "/api/v1/batches/"


@pytest.fixture(scope="module")
def token_server():
    with SlowTokenServer(delay=0.01) as server:
        yield server


@pytest.fixture
def fleet(make_connector, token_server, loopback_allowed) -> list[Connector]:
    """Three connectors on a loopback token server: two pass, one fails."""

    def make(name: str, path: str) -> Connector:
        return make_connector(
            name, **{**OAUTH2_PASSWORD, "oauth2_token_url": token_server.url(path)}
        )

    return [make("hr_one", "/token"), make("hr_two", "/token"), make("hr_bad", "/fail")]


def api(user: Any, name: str = "ci") -> Client:
    token = api_token_create(user=user, name=name, expires_days=1)
    return Client(HTTP_AUTHORIZATION=f"Token {token}")


def start(client: Client, data: Any) -> Any:
    return client.post(URL, data=json.dumps(data), content_type="application/json")


def nothing_created() -> bool:
    return not (
        Batch.objects.exists()
        or BatchItem.objects.exists()
        or AuditEvent.objects.filter(action="batch_test").exists()
    )


def test_an_operator_starts_a_batch_of_every_connector(fleet, operator, celery_no_worker):
    response = start(api(operator), {})
    assert response.status_code == 201, response.content
    batch = Batch.objects.get()
    assert response["Location"] == f"/api/v1/batches/{batch.pk}/"
    document = response.json()
    assert (document["batch"], document["total"], document["state"]) == (batch.pk, 3, "running")
    assert [item["state"] for item in document["items"]] == ["pending"] * 3
    assert (batch.created_by, batch.source, batch.runner) == (operator, "api", "workers")
    assert batch.filter_description == "all connectors"
    event = AuditEvent.objects.get(action="batch_test")
    assert event.username == "operator" and event.details["via"]["api_client"] == "ci"
    queue = Path(celery_no_worker.conf.broker_transport_options["data_folder_in"])
    assert len(list(queue.glob("*.msg"))) == 1  # the three items in one task message


def test_the_filter_is_connectors_test_alls(fleet, operator, celery_no_worker):
    body = {"connector": ["hr_one", "hr_bad"], "health": "never", "search": "hr"}
    response = start(api(operator), body)
    assert response.status_code == 201, response.content
    batch = Batch.objects.get()
    assert batch.filter_description == "connector=hr_one, connector=hr_bad, health=never, q=hr"
    assert sorted(batch.items.values_list("connector_name", flat=True)) == ["hr_bad", "hr_one"]
    assert start(api(operator), {"search": "hr_t", "health": None}).json()["total"] == 1


def cli_message(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("connectors_test_all", *args)
    assert caught.value.returncode == 2
    return str(caught.value)


def test_the_same_refusals_and_messages_as_the_cli(fleet, operator, celery_no_worker):
    client = api(operator)
    ghost = start(client, {"connector": ["ghost", "hr_one", "also_not"]})
    assert ghost.status_code == 400 and ghost["Content-Type"] == "application/problem+json"
    assert ghost.json()["errors"] == [
        {
            "field": "connector",
            "label": "Connector",
            "message": cli_message("--connector", "ghost", "--connector", "also_not"),
        }
    ]
    assert ghost.json()["errors"][0]["message"] == "No connector named also_not, ghost."
    none = start(client, {"search": "zzz-nothing"})
    assert none.status_code == 400
    assert none.json()["errors"][0]["message"] == cli_message("--search", "zzz-nothing")
    assert nothing_created()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "request"),
        ("all", "request"),
        ({"connector": "hr_one"}, "connector"),
        ({"connector": [1]}, "connector"),
        ({"connector": ["a\x00b"]}, "connector"),
        ({"health": "sick"}, "health"),
        ({"health": 3}, "health"),
        ({"search": ["x"]}, "search"),
        ({"concurrency": 4}, "concurrency"),
    ],
)
def test_badly_typed_bodies_are_refused_field_by_field(fleet, operator, body, field):
    response = start(api(operator), body)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert nothing_created()


def test_an_unreachable_runner_is_a_503_and_nothing_is_created(fleet, operator, celery_broker_down):
    response = start(api(operator), {})
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert "the background runner is not reachable" in problem["detail"]
    assert "hunter2" not in response.content.decode()
    assert nothing_created()


def test_a_batch_counts_against_the_test_rate_limit(fleet, operator, celery_no_worker, settings):
    settings.CONNECTORS_TEST_RATE_LIMIT = "1/60"
    client = api(operator)
    assert start(client, {}).status_code == 201
    limited = start(client, {})
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert Batch.objects.count() == 1


def test_viewers_watch_the_pages_progress_document(fleet, operator, viewer, celery_no_worker):
    batch = batch_start(user_or_system=operator, connector_ids=[c.pk for c in fleet])
    for item in BatchItem.objects.filter(batch=batch):
        batch_item_run(item_id=item.pk)
    watcher = api(viewer)
    response = watcher.get(f"{URL}{batch.pk}/")
    assert response.status_code == 200, response.content
    document = response.json()
    page = Client()
    page.force_login(viewer)
    assert document == page.get(reverse("connectors:batch-progress", args=[batch.pk])).json()
    assert (document["state"], document["ok"], document["failed"]) == ("finished", 2, 1)
    assert {item["connector"]: item["ok"] for item in document["items"]} == {
        "hr_one": True,
        "hr_two": True,
        "hr_bad": False,
    }
    # Viewers watch, they do not start; the refusal is audited.
    assert start(watcher, {}).status_code == 403
    assert AuditEvent.objects.filter(kind="denial", username="viewer").count() == 1


@pytest.mark.parametrize("pk", ["999999", "abc", "³", "1" * 30, "-1"])
def test_an_unknown_or_malformed_batch_id_is_a_404_problem(viewer, pk):
    response = api(viewer).get(f"{URL}{pk}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_the_schema_names_each_state_choice_set_after_its_source(settings):
    from connectors.health import HealthState

    names = settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]
    assert names["StateEnum"] == [state.value for state in HealthState]
    assert names["BatchStateEnum"] == Batch.State.values
    assert names["BatchItemStateEnum"] == BatchItem.State.values
