"""audit_export from the command line (audit_verify and audit_prune are in test_audit_chain)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tests.test_audit_support import make_connector, make_run, record_change

pytestmark = pytest.mark.django_db


def test_export_command_filters_by_connector_and_date(capsys):
    crm, erp = make_connector("crm_api"), make_connector("erp_sync")
    with mock.patch(
        "audit.services.timezone.now", return_value=timezone.now() - dt.timedelta(days=10)
    ):
        record_change(crm)
    recent = record_change(crm)
    make_run(erp)
    since = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    call_command("audit_export", "--format", "csv", "--connector", "crm_api", "--since", since)
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [int(r["id"]) for r in rows] == [recent.pk]
    call_command("audit_export", "--format", "json")
    data = json.loads(capsys.readouterr().out)
    assert [d["connector_name"] for d in data] == ["erp_sync", "crm_api", "crm_api"]
    assert len(data[0]["test_run"]["attempts"]) == 2


def test_export_command_rejects_a_bad_date():
    with pytest.raises(CommandError):
        call_command("audit_export", "--since", "yesterday")
