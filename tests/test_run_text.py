"""A test run's rows encoded before they are written (audit.run_text) give the record's exact
canonical JSON once their ids are known: the hash the verifier computes from the stored rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.chain import canonical_json, chain_verify, event_hash
from audit.models import AuditEvent, TestAttempt, TestRun
from audit.run_text import Marked, Spliced
from audit.services import test_run_record
from tests.test_audit_support import make_connector

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN, infinities and exponents included: the same encoder writes them
    | st.text()
    | st.datetimes(timezones=st.just(dt.UTC))
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(st.text(max_size=8), values, max_size=10)


@settings(max_examples=500, deadline=None)
@given(objects, st.data())
def test_an_object_encoded_around_its_late_keys_is_the_object_encoded_whole(whole, data):
    keys = sorted(whole)
    late = data.draw(st.lists(st.sampled_from(keys), unique=True) if keys else st.just([]))
    extra = data.draw(st.lists(st.text(max_size=8), max_size=2))  # late keys not in `values`
    for key in extra:
        whole.setdefault(key, data.draw(values))
    late = [*late, *(key for key in extra if key not in late)]
    early = {key: value for key, value in whole.items() if key not in late}
    spliced = Spliced(early, late)
    assert spliced.text({key: canonical_json(whole[key]) for key in late}) == canonical_json(whole)


@pytest.mark.django_db
def test_a_recorded_runs_hash_is_the_hash_of_its_stored_rows():
    connector = make_connector("encoded_before")
    run = TestRun(
        connector_id=connector.pk, connector_name=connector.name, source="saved",
        started_at=timezone.now(), duration_ms=5, ok=False, outcome="invalid_client",
        message="Refused: \u2028 \"quoted\" \\ and ✓", hint="",
        token={"expires_in": 1e-05, "big": 10**20, "scope": ["a", "b"]},
        config={"oauth2_client_secret": "set", "nested": {"z": 1, "a": [1.5, None]}},
    )  # fmt: skip
    attempts = [
        TestAttempt(
            position=position,
            method="POST",
            url="http://127.0.0.1:9/token",
            request_headers=[["Accept", "application/json"]],
            request_body=[["a", "b"]],
            status_code=401,
            response_headers=[],
            response_excerpt="{}",
            duration_ms=3,
            outcome="invalid_client",
            message=f"attempt {position}",
        )  # fmt: skip
        for position in (1, 2)
    ]
    stored = test_run_record(run=run, attempts=attempts, connector=connector)
    event = AuditEvent.objects.get(test_run_id=stored.pk)
    # The hash the verifier computes from the rows as the database gives them back.
    again = TestRun.objects.get(pk=stored.pk)
    rows = list(TestAttempt.objects.filter(run=again).order_by("position", "id"))
    assert [row.pk for row in rows] == [attempt.pk for attempt in attempts]
    assert event.hash == event_hash(event, again, rows)
    assert list(chain_verify())[-1].ok


@settings(max_examples=500, deadline=None)
@given(objects, st.data())
def test_an_object_with_marks_for_its_late_values_is_the_object_encoded_whole(whole, data):
    keys = sorted(whole)
    late = data.draw(st.lists(st.sampled_from(keys), unique=True) if keys else st.just([]))
    early = {key: value for key, value in whole.items() if key not in late}
    marked = Marked(early, late)
    assert marked.text({key: canonical_json(whole[key]) for key in late}) == canonical_json(whole)


def test_data_that_holds_a_marks_text_is_encoded_exactly_all_the_same():
    mark = "\x00late:id\x00"  # what Marked puts in place of "id": here also in the data
    whole = {"id": 7, "message": mark, "z": [mark, {"id": mark}]}
    marked = Marked({key: value for key, value in whole.items() if key != "id"}, ["id"])
    assert marked.text({"id": "7"}) == canonical_json(whole)
    # A late value whose text holds another mark's text is put in as it is.
    both = {"a": mark, "id": 7}
    marked = Marked({}, ["a", "id"])
    assert marked.text({"a": canonical_json(mark), "id": "7"}) == canonical_json(both)
