"""The audit log for people: kinds as words, refusals named in words, imports and batches as one
expandable entry, and a connector's recent tests linked to their stored attempts."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from audit.selectors import AuditFilters, audit_entries, audit_event_page
from audit.services import audit_record
from audit.wording import REFUSED_ACTIONS, action_words, refused_action
from connectors.transfer import connectors_import
from tests.test_audit_support import make_connector, make_run, make_user, record_change

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("vera", group="Connector viewers"))
    return client


def _entry(name: str, **extra) -> dict:
    return {
        "name": name,
        "base_url": "https://api.example.com",
        "auth_config": "basic",
        "basic": {"username": "u", "password": "p"},
        **extra,
    }


# Kinds and actions as words -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "action", "words"),
    [
        ("test_run", "test", "Test run"),
        ("change", "edit", "Edit"),
        ("change", "create", "Create"),
        ("change", "import", "Import"),
        ("denial", "permission_denied", "Refused"),
        ("denial", "rate_limited", "Refused"),
        ("system", "batch_test", "Batch test"),
        ("system", "something_new", "Something new"),
    ],
)
def test_every_kind_and_action_reads_as_words(kind, action, words):
    assert action_words(kind, action) == words


def test_list_history_and_detail_show_words_and_exports_keep_the_codes(viewer_client):
    connector = make_connector("hr_portal")
    change = record_change(connector)
    html = viewer_client.get(reverse("audit:list")).content.decode()
    assert ">Edit</span>" in html and ">Change</span>" not in html
    detail = viewer_client.get(reverse("audit:detail", args=[change.pk])).content.decode()
    assert re.search(r"<h1[^>]*>\s*Edit: hr_portal\s*</h1>", detail)
    assert "change/edit" in detail  # the codes, as exports name them, beside the words
    options = viewer_client.get(reverse("audit:list")).content.decode()
    assert '<option value="denial">Refused</option>' in options
    exported = b"".join(viewer_client.get(reverse("audit:export") + "?format=csv")).decode()
    assert ",change,edit," in exported and "Edit," not in exported


# Refusals named in words ----------------------------------------------------------------------


def test_a_refused_page_is_named_in_words_on_the_list_and_the_detail(client):
    make_connector("hr_portal")
    viewer = make_user("vic", group="Connector viewers")
    client.force_login(viewer)
    assert client.get("/connectors/hr_portal/edit/").status_code == 403
    refusal = AuditEvent.objects.filter(kind="denial").latest("id")
    assert refusal.details["url_name"] == "connectors:edit"
    assert refusal.details["method"] == "GET"
    listed = client.get(reverse("audit:list")).content.decode()
    assert "vic may not open the edit form of hr_portal" in listed
    assert "may not GET /connectors/hr_portal/edit/" not in listed
    detail = client.get(reverse("audit:detail", args=[refusal.pk])).content.decode()
    assert re.search(r"<h1[^>]*>\s*Refused: open the edit form of hr_portal\s*</h1>", detail)
    # The request itself is still there, below, for whoever needs it.
    assert "GET /connectors/hr_portal/edit/" in detail


def test_a_refused_post_names_its_action_and_an_old_record_is_read_from_its_summary(client):
    make_connector("hr_portal")
    viewer = make_user("vic", group="Connector viewers")
    client.force_login(viewer)
    client.post("/connectors/hr_portal/delete/")
    refusal = AuditEvent.objects.filter(kind="denial").latest("id")
    assert "vic may not delete hr_portal" in client.get(reverse("audit:list")).content.decode()
    # Written before the URL name was recorded: only the summary holds the method and path.
    old = audit_record(
        kind="denial",
        action="permission_denied",
        user=viewer,
        connector_name="hr_portal",
        summary="vic may not POST /connectors/hr_portal/test/",
        details={"permission": ["connectors.test_connector"]},
    )
    assert refusal.pk != old.pk
    page = client.get(reverse("audit:list")).content.decode()
    assert "vic may not run a connection test of hr_portal" in page


def test_the_refusal_table_names_only_pages_that_exist():
    from django.urls import NoReverseMatch
    from django.urls import reverse as url_of

    for name in REFUSED_ACTIONS:
        for args in ((), ("x",), (1,)):
            try:
                url_of(name, args=args)
                break
            except NoReverseMatch:
                continue
        else:
            pytest.fail(f"{name} is not a URL name of the console")


def test_refusals_that_are_not_pages_have_their_own_words():
    assert refused_action(action="rate_limited", details={}, connector_name="crm").startswith(
        "run a connection test of crm"
    )
    assert refused_action(action="login_failed", details={}) == (
        "sign in (wrong user name or password)"
    )
    assert refused_action(action="permission_denied", details={"path": "/nowhere/x/y/z"}) == ""


# One entry per import and per batch --------------------------------------------------------


def test_an_import_is_one_entry_that_expands(viewer_client):
    admin = make_user("ada", superuser=True)
    result = connectors_import(
        payload={"connectors": [_entry("imp_a"), _entry("imp_b"), _entry("imp_c")]}, user=admin
    )
    assert not result.errors
    records = list(AuditEvent.objects.filter(action="import"))
    assert len(records) == 3 and len({r.details["import"] for r in records}) == 1
    record_change(make_connector("after_it"))
    page = audit_event_page(filters=AuditFilters())
    entries = page.entries
    assert [len(e.events) for e in entries] == [1, 3]  # the change, then the import
    html = viewer_client.get(reverse("audit:list")).content.decode()
    assert html.count("<details") == 1
    group = html[html.index('data-audit-group="import:') :]
    group = group[: group.index("</details>")]
    assert "3 connectors: imp_a, imp_b, imp_c" in group and group.count("<tr><td") == 3


def test_a_second_import_is_a_second_entry():
    admin = make_user("ada", superuser=True)
    connectors_import(payload={"connectors": [_entry("one"), _entry("two")]}, user=admin)
    connectors_import(
        payload={"connectors": [_entry("one", base_url="https://x.example.com")]}, user=admin
    )
    entries = audit_event_page(filters=AuditFilters()).entries
    assert [len(e.events) for e in entries] == [1, 2]


def test_a_batch_groups_its_start_and_its_tests_even_when_interleaved():
    connector = make_connector()
    start = audit_record(kind="system", action="batch_test", details={"batch": 7, "total": 2})
    first = make_run(connector).audit_event
    other = record_change(connector)
    # A batch's tests name it in their records (connectors.connection_test), between others.
    tagged = [
        audit_record(
            kind="test_run",
            action="test",
            test_run=make_run_untracked(connector),
            connector=connector,
            details={"batch": 7},
        )
        for _ in range(2)
    ]
    entries = audit_entries(audit_event_page(filters=AuditFilters()).events)
    batch = next(e for e in entries if e.key == ("batch", "7"))
    assert [e.pk for e in batch.events] == [tagged[1].pk, tagged[0].pk, start.pk]
    assert [e.event.pk for e in entries] == [tagged[1].pk, other.pk, first.pk]


def make_run_untracked(connector):
    """A stored run not yet recorded (the batch's record is written with its batch id)."""
    from django.utils import timezone

    from audit.models import TestRun

    return TestRun.objects.create(
        connector_id=connector.pk,
        connector_name=connector.name,
        source="batch" if "batch" in TestRun.Source.values else "saved",
        started_at=timezone.now(),
        ok=True,
        outcome="success",
    )


def test_a_page_holds_fifty_entries_however_many_records_a_batch_has():
    make_connector()
    for _ in range(3):
        audit_record(kind="system", action="noise")
    for _ in range(120):
        audit_record(kind="system", action="batch_cancel", details={"batch": 9})
    for _ in range(60):
        audit_record(kind="system", action="noise")
    page = audit_event_page(filters=AuditFilters(), size=50)
    assert len(page.entries) == 50 and all(len(e.events) == 1 for e in page.entries)
    second = audit_event_page(filters=AuditFilters(), before=page.older_than, size=50)
    lengths = [len(e.events) for e in second.entries]
    assert lengths[:10] == [1] * 10 and lengths[10] == 120 and len(lengths) == 14
    # Back: the newer page from the second is the first again.
    back = audit_event_page(filters=AuditFilters(), after=second.newer_than, size=50)
    assert [e.pk for e in back.events] == [e.pk for e in page.events]


# Recent tests link to their stored attempts -----------------------------------------------


def test_recent_tests_link_to_attempts_request_and_curl_with_the_time_zone(admin_client):
    connector = make_connector("hr_portal")
    run = make_run(connector)
    html = admin_client.get(reverse("connectors:detail", args=["hr_portal"])).content.decode()
    table = html[html.index("data-recent-runs") :]
    table = table[: table.index("</table>")]
    record = reverse("audit:detail", args=[run.audit_event.pk])
    last = run.attempts.order_by("position").last()
    assert f'href="{record}#attempts">2 attempts</a>' in table
    assert f'href="{record}#audit-curl-{last.pk}"' in table
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", table)
    detail = admin_client.get(record).content.decode()
    assert 'id="attempts"' in detail and f'id="audit-curl-{last.pk}"' in detail


def test_a_batch_longer_than_a_page_goes_on_on_the_next_and_reads_few_rows(
    django_assert_max_num_queries,
):
    for _ in range(260):
        audit_record(kind="system", action="batch_cancel", details={"batch": 5})
    first = audit_event_page(filters=AuditFilters(), size=50)
    assert len(first.events) == 200 and len(first.entries) == 1 and first.older_than
    second = audit_event_page(filters=AuditFilters(), before=first.older_than, size=50)
    assert len(second.events) == 60 and second.older_than is None and second.newer_than
    # Without groups a page reads its 51 rows in one query, as before.
    for _ in range(120):
        audit_record(kind="system", action="noise")
    with django_assert_max_num_queries(1):
        page = audit_event_page(filters=AuditFilters(), size=50)
    assert len(page.events) == 50 and page.older_than


def test_an_api_refusal_is_named_in_words():
    from django.test import Client

    from connectors.api.tokens import api_token_create

    make_connector("hr_portal")
    token = api_token_create(user=make_user("nobody"), name="x", expires_days=1)
    Client(HTTP_AUTHORIZATION=f"Token {token}").get("/api/v1/connectors/hr_portal/")
    refusal = AuditEvent.objects.filter(kind="denial").latest("id")
    assert refusal.details["url_name"] == "api-connector"
    assert refused_action(
        action=refusal.action, details=refusal.details, connector_name=refusal.connector_name
    ) == ("read hr_portal through the API")
