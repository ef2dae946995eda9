"""Reviewing the log: permissions, filters, keyset pages, the detail pages, exports, history."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.http import StreamingHttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.selectors import AuditFilters, audit_event_page, audit_events_for_connector
from audit.services import audit_record
from tests.test_audit_support import ROLE_GROUPS, make_connector, make_run, make_user, record_change

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("vera", group="Connector viewers"))
    return client


def test_migration_grants_view_to_the_three_roles():
    for name in ROLE_GROUPS:
        codenames = set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))
        assert "view_auditevent" in codenames
        assert not codenames & {"add_auditevent", "change_auditevent", "delete_auditevent"}


@pytest.mark.parametrize("group", ROLE_GROUPS)
def test_every_role_can_read(client, group):
    event = record_change(make_connector())
    client.force_login(make_user("someone", group=group))
    assert client.get(reverse("audit:list")).status_code == 200
    assert client.get(reverse("audit:detail", args=[event.pk])).status_code == 200
    assert client.get(reverse("audit:export") + "?format=csv").status_code == 200


def test_without_the_permission_it_is_403_and_each_refusal_is_logged(client):
    # Issue 8 reversed this test's old expectation: /audit/* refusals are audited like others.
    event = record_change(make_connector())
    client.force_login(make_user("nobody"))
    for url in (
        reverse("audit:list"),
        reverse("audit:detail", args=[event.pk]),
        reverse("audit:export"),
    ):
        assert client.get(url).status_code == 403
    assert AuditEvent.objects.count() == 4
    assert AuditEvent.objects.filter(kind="denial").count() == 3


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("audit:list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_list_newest_first_with_kind_badges(viewer_client):
    connector = make_connector()
    change = record_change(connector)
    run = make_run(connector)
    denial = audit_record(
        kind="denial",
        action="rate_limited",
        connector=connector,
        outcome="rate_limited",
        summary="Too many tests",
    )
    page = viewer_client.get(reverse("audit:list")).context["page"]
    assert [e.pk for e in page.events] == [denial.pk, run.audit_event.pk, change.pk]
    html = viewer_client.get(reverse("audit:list")).content.decode()
    assert "Too many tests" in html and "Test run" in html and "Refused" in html


def test_filters(viewer_client):
    alice, bob = make_user("alice"), make_user("bob")
    crm, erp = make_connector("crm_api"), make_connector("erp_sync")
    a = record_change(crm, user=alice)
    b = make_run(erp, user=bob, outcome="success")
    c = audit_record(kind="denial", action="blocked", connector=erp, user=alice, outcome="blocked")

    def ids(query: str) -> list[int]:
        response = viewer_client.get(reverse("audit:list") + query)
        assert response.status_code == 200
        return [e.pk for e in response.context["page"].events]

    assert ids(f"?connector={crm.pk}") == [a.pk]
    assert ids("?kind=test_run") == [b.audit_event.pk]
    assert ids("?kind=denial") == [c.pk]
    assert ids("?outcome=success") == [b.audit_event.pk]
    assert ids(f"?user={alice.pk}") == [c.pk, a.pk]
    assert ids("?q=erp") == [c.pk, b.audit_event.pk]
    assert ids("?q=ERP_S") == [c.pk, b.audit_event.pk]
    assert ids("?q=nowhere") == []
    today = timezone.localdate()
    assert ids(f"?since={today}&until={today}") == [c.pk, b.audit_event.pk, a.pk]
    assert ids(f"?until={today - dt.timedelta(days=1)}") == []
    # A connector that no longer exists can still be filtered on by id.
    assert ids("?connector=99999") == []
    # An invalid filter is reported and ignored, not a 500.
    response = viewer_client.get(reverse("audit:list") + "?since=not-a-date&kind=test_run")
    assert response.status_code == 200 and response.context["form"].errors
    assert [e.pk for e in response.context["page"].events] == [b.audit_event.pk]


def test_keyset_pages_walk_both_ways():
    connector = make_connector()
    ids = [record_change(connector).pk for _ in range(7)][::-1]  # newest first
    filters = AuditFilters()
    first = audit_event_page(filters=filters, size=3)
    assert [e.pk for e in first.events] == ids[:3]
    assert first.newer_than is None and first.older_than == ids[2]
    second = audit_event_page(filters=filters, before=first.older_than, size=3)
    assert [e.pk for e in second.events] == ids[3:6]
    assert second.newer_than == ids[3] and second.older_than == ids[5]
    last = audit_event_page(filters=filters, before=second.older_than, size=3)
    assert [e.pk for e in last.events] == ids[6:] and last.older_than is None
    back = audit_event_page(filters=filters, after=last.newer_than, size=3)
    assert [e.pk for e in back.events] == ids[3:6]
    top = audit_event_page(filters=filters, after=back.newer_than, size=3)
    assert [e.pk for e in top.events] == ids[:3] and top.newer_than is None


def test_list_page_links_and_no_count_query(viewer_client, django_assert_max_num_queries):
    connector = make_connector()
    for _ in range(55):
        record_change(connector)
    with django_assert_max_num_queries(8) as queries:
        response = viewer_client.get(reverse("audit:list") + "?kind=change")
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
    html = response.content.decode()
    older = response.context["page"].older_than
    assert f"before={older}" in html and "kind=change" in html and "Older" in html
    response = viewer_client.get(reverse("audit:list") + f"?kind=change&before={older}")
    assert len(response.context["page"].events) == 5
    assert "Newer" in response.content.decode()


def test_test_run_detail_shows_the_steps(viewer_client):
    connector = make_connector()
    run = make_run(connector)
    html = viewer_client.get(reverse("audit:detail", args=[run.audit_event.pk])).content.decode()
    assert "Step 1" in html and "Step 2" in html
    # One label table (issue 7): the step headers use the form's own choice labels.
    assert "OAuth 2.0 with Basic Auth Header set to client id and client secret" in html
    assert "OAuth 2.0 with Request Body" in html
    assert "POST https://auth.example.com/oauth/token" in html
    assert "Authorization: Basic ********" in html
    assert "grant_type=client_credentials" in html
    assert "invalid_client" in html and "401" in html and "200 ms" in html
    assert "Copy as curl" in html and "data-audit-copy" in html and "$CLIENT_SECRET" in html
    assert "audit/audit.js" in html


def test_change_detail_shows_a_diff_table(viewer_client):
    event = record_change(make_connector())
    html = viewer_client.get(reverse("audit:detail", args=[event.pk])).content.decode()
    assert "data-audit-diff" in html
    assert "Client ID" in html and ">a</pre>" in html and ">b</pre>" in html
    assert "Client Secret" in html and "changed" in html


def test_denial_detail_and_missing_record(viewer_client):
    event = audit_record(
        kind="denial",
        action="permission_denied",
        summary="vera may not POST /x",
        details={"permission": ["connectors.change_connector"]},
    )
    html = viewer_client.get(reverse("audit:detail", args=[event.pk])).content.decode()
    assert "connectors.change_connector" in html
    assert viewer_client.get(reverse("audit:detail", args=[event.pk + 100])).status_code == 404


def _export(client, query: str) -> tuple[StreamingHttpResponse, str]:
    response = client.get(reverse("audit:export") + query)
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    return response, b"".join(response.streaming_content).decode()


def test_exports_follow_the_filters(viewer_client):
    crm, erp = make_connector("crm_api"), make_connector("erp_sync")
    record_change(crm)
    run = make_run(erp)
    response, body = _export(viewer_client, f"?connector={erp.pk}&format=csv")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [int(r["id"]) for r in rows] == [run.audit_event.pk]
    assert rows[0]["connector_name"] == "erp_sync" and rows[0]["hash"] == run.audit_event.hash
    response, body = _export(viewer_client, "?format=json")
    data = json.loads(body)
    assert [d["connector_name"] for d in data] == ["erp_sync", "crm_api"]
    attempts = data[0]["test_run"]["attempts"]
    assert [a["client_authentication"] for a in attempts] == ["basic_client", "request_body"]
    assert data[1]["details"]["changes"][1]["after"] == "changed"
    assert viewer_client.get(reverse("audit:export") + "?format=xml").status_code == 400


def test_csv_export_defuses_spreadsheet_formulas(viewer_client):
    audit_record(kind="denial", action="blocked", summary='=HYPERLINK("http://evil")')
    _, body = _export(viewer_client, "?format=csv")
    row = next(csv.DictReader(io.StringIO(body)))
    assert row["summary"].startswith("'=")


def test_export_streams_in_chunks():
    from audit import exports

    connector = make_connector()
    for _ in range(5):
        record_change(connector)
    with mock.patch.object(exports, "CHUNK", 2):
        rows = list(exports.export_rows(AuditEvent.objects.order_by("-id"), with_runs=True))
    assert len(rows) == 5


def test_connector_history_helper_and_partial():
    crm, erp = make_connector("crm_api"), make_connector("erp_sync")
    mine = [record_change(crm).pk, make_run(crm).audit_event.pk]
    record_change(erp)
    events = audit_events_for_connector(crm.pk)
    assert [e.pk for e in events] == mine[::-1]
    assert len(audit_events_for_connector(crm.pk, limit=1)) == 1
    html = render_to_string(
        "audit/_connector_history.html", {"audit_events": events, "connector_id": crm.pk}
    )
    assert "data-audit-history" in html and f"?connector={crm.pk}" in html
    assert reverse("audit:detail", args=[mine[0]]) in html
    assert "Nothing has been recorded" in render_to_string(
        "audit/_connector_history.html", {"audit_events": []}
    )


def test_attempt_steps_partial_works_on_its_own():
    run = make_run(make_connector())
    html = render_to_string("audit/_attempt_steps.html", {"attempts": run.attempts.all()})
    assert html.count("data-audit-attempt") == 2 and "Copy as curl" in html


# --- type-ahead filters (issue 9: a list of every connector does not scale) ----------------


def _listed(client, query: str) -> list[int]:
    response = client.get(reverse("audit:list") + query)
    assert response.status_code == 200
    return [e.pk for e in response.context["page"].events]


def test_connector_and_user_filters_take_names_as_well_as_ids(viewer_client):
    alice, bob = make_user("alice"), make_user("bob")
    crm, erp = make_connector("crm_api"), make_connector("erp_sync")
    a = record_change(crm, user=alice)
    b = make_run(erp, user=bob, outcome="success").audit_event
    c = audit_record(kind="denial", action="blocked", connector=erp, user=alice, outcome="blocked")
    assert _listed(viewer_client, "?connector=crm_api") == [a.pk]
    assert _listed(viewer_client, "?connector=erp_sync") == [c.pk, b.pk]
    assert _listed(viewer_client, f"?connector={erp.pk}") == [c.pk, b.pk]
    assert _listed(viewer_client, "?user=alice") == [c.pk, a.pk]
    assert _listed(viewer_client, "?connector=erp_sync&user=alice") == [c.pk]
    # Exact names: a prefix is the type-ahead's job (and the name search's), not the filter's.
    assert _listed(viewer_client, "?connector=erp") == []
    assert _listed(viewer_client, "?user=nobody_here") == []
    response = viewer_client.get(reverse("audit:list") + "?user=nobody_here")
    assert "No record matches these filters." in response.content.decode()


def test_an_id_link_shows_the_name_in_the_input(viewer_client):
    alice = make_user("alice")
    crm = make_connector("crm_api")
    record_change(crm, user=alice)
    html = viewer_client.get(reverse("audit:list") + f"?connector={crm.pk}&user={alice.pk}")
    body = html.content.decode()
    assert 'name="connector"' in body and 'value="crm_api"' in body
    assert 'name="user"' in body and 'value="alice"' in body
    # An id no record names stays as typed, and still filters (to nothing).
    body = viewer_client.get(reverse("audit:list") + "?connector=99999").content.decode()
    assert 'value="99999"' in body


def test_a_deleted_connector_is_found_by_its_name_in_the_log(viewer_client):
    gone = make_connector("gone_api")
    kept = record_change(gone)
    gone_id = gone.pk
    gone.delete()
    assert _listed(viewer_client, "?connector=gone_api") == [kept.pk]
    assert _listed(viewer_client, f"?connector={gone_id}") == [kept.pk]
    body = viewer_client.get(reverse("audit:list") + f"?connector={gone_id}").content.decode()
    assert 'value="gone_api"' in body


def test_the_page_does_not_list_every_connector_or_user(viewer_client):
    for index in range(30):
        make_connector(f"bulk_{index:02d}")
        make_user(f"person_{index:02d}")
    record_change(make_connector("crm_api"))
    body = viewer_client.get(reverse("audit:list")).content.decode()
    assert "bulk_17" not in body and "person_17" not in body
    assert '<select class="form-select form-select-sm" id="id_connector"' not in body
    assert 'list="audit-connector-names"' in body and 'list="audit-usernames"' in body
    assert reverse("audit:suggest", args=["connector"]) in body
    assert "audit/suggest" in body and "suggest.js" in body
    # No inline script: the CSP allows only files from this origin.
    assert "<script>" not in body


def test_suggest_returns_a_few_names_prefix_first(viewer_client):
    for name in ("hr_portal", "hr_payroll", "crm_hr_sync", "erp_sync"):
        make_connector(name)
    for index in range(25):
        make_connector(f"hr_extra_{index:02d}")
    response = viewer_client.get(reverse("audit:suggest", args=["connector"]) + "?q=HR")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) == {"field", "q", "matches"}
    assert data["field"] == "connector" and data["q"] == "HR"
    assert len(data["matches"]) == 20
    assert all(name.startswith("hr_") for name in data["matches"])
    assert data["matches"] == sorted(data["matches"])
    contains = viewer_client.get(reverse("audit:suggest", args=["connector"]) + "?q=sync")
    assert contains.json()["matches"] == ["crm_hr_sync", "erp_sync"]
    prefix_then_contains = viewer_client.get(
        reverse("audit:suggest", args=["connector"]) + "?q=crm"
    )
    assert prefix_then_contains.json()["matches"] == ["crm_hr_sync"]


def test_suggest_users_and_unknown_fields(viewer_client):
    for name in ("alice", "malice", "bob"):
        make_user(name)
    data = viewer_client.get(reverse("audit:suggest", args=["user"]) + "?q=ali").json()
    assert data["matches"] == ["alice", "malice"]
    assert viewer_client.get(reverse("audit:suggest", args=["secret"]) + "?q=a").status_code == 404


def test_suggest_needs_the_view_permission_and_the_refusal_is_recorded(client):
    make_connector("hr_portal")
    client.force_login(make_user("nobody"))
    response = client.get(reverse("audit:suggest", args=["connector"]) + "?q=hr")
    assert response.status_code == 403 and b"hr_portal" not in response.content
    assert AuditEvent.objects.filter(kind="denial", username="nobody").count() == 1
    client.logout()
    anonymous = client.get(reverse("audit:suggest", args=["connector"]) + "?q=hr")
    assert anonymous.status_code == 302


def test_export_filters_by_name_too(viewer_client):
    crm, erp = make_connector("crm_api"), make_connector("erp_sync")
    record_change(crm)
    wanted = record_change(erp)
    response = viewer_client.get(reverse("audit:export") + "?connector=erp_sync&format=json")
    body = b"".join(response.streaming_content).decode()
    assert [row["id"] for row in json.loads(body)] == [wanted.pk]
