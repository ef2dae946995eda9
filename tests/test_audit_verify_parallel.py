"""audit_verify in parallel stretches, and its fast encoder: the same verdict as one walk."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.chain import (
    canonical_json,
    chain_hash,
    chain_verify,
    fast_canonical_json,
    fast_chain_hash,
)
from audit.chain_parallel import STRETCHES_PER_WORKER, stretches
from audit.models import AuditEvent
from tests.test_audit_support import make_connector, make_run, postgres_only, raw_sql, record_change

WORKERS = 2


def _log(count: int = 30) -> list[AuditEvent]:
    connector = make_connector()
    return [
        make_run(connector).audit_event if i % 3 == 1 else record_change(connector)
        for i in range(count)
    ]


def _both() -> tuple:
    one = list(chain_verify(chunk_size=4))[-1]
    many = list(chain_verify(chunk_size=4, workers=WORKERS))[-1]
    return one, many


def _seams(events: list[AuditEvent]) -> list[int]:
    """The last record id of each stretch but the last."""
    ranges = stretches(events[0].pk, events[-1].pk, WORKERS * STRETCHES_PER_WORKER)
    return [r.up_to for r in ranges[:-1]]


def test_stretches_cover_every_id_once():
    for first, last, count in ((1, 30, 8), (5, 5, 8), (10, 1_000_000, 16), (1, 3, 2)):
        ranges = stretches(first, last, count)
        assert ranges[0].after is None and ranges[-1].up_to == last
        assert all(a.up_to == b.after for a, b in zip(ranges, ranges[1:], strict=False))
        assert all(r.up_to > (r.after if r.after is not None else first - 1) for r in ranges)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_parallel_verify_passes_an_untouched_log_like_one_walk():
    events = _log()
    one, many = _both()
    assert one.ok and many.ok
    assert (many.checked, many.first_id, many.last_id) == (30, events[0].pk, events[-1].pk)
    assert (one.checked, one.first_id, one.last_id) == (many.checked, many.first_id, many.last_id)


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", ["middle", "last_of_stretch", "first_of_stretch", "attempt"])
def test_a_tamper_in_a_middle_stretch_or_at_a_seam_is_found_as_one_walk_finds_it(where):
    events = _log()
    seam = _seams(events)[3]  # the end of the fourth stretch, in the middle of the log
    target = {"middle": seam - 2, "last_of_stretch": seam, "first_of_stretch": seam + 1}.get(where)
    if where == "attempt":
        run_event = next(e for e in events if e.test_run_id and e.pk > seam - 3)
        target = run_event.pk
        raw_sql(
            "UPDATE connectors_testattempt SET url = 'https://elsewhere.example' WHERE run_id = %s",
            [run_event.test_run_id],
        )
    else:
        raw_sql("UPDATE audit_auditevent SET summary = 'rewritten' WHERE id = %s", [target])
    one, many = _both()
    assert not many.ok and many.bad_id == target
    assert (one.ok, one.bad_id, one.problem, one.checked) == (
        many.ok,
        many.bad_id,
        many.problem,
        many.checked,
    )


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_record_removed_at_a_seam_breaks_the_link_across_it():
    events = _log()
    seam = _seams(events)[2]
    raw_sql("DELETE FROM audit_auditevent WHERE id = %s", [seam])
    one, many = _both()
    assert not many.ok and many.bad_id == seam + 1
    assert "does not follow record" in many.problem
    assert (one.bad_id, one.problem) == (many.bad_id, many.problem)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_stretch_rehashed_without_the_key_is_still_found():
    """A forger rewrites a record and every later hash with plain SHA-256 (no key)."""
    events = _log()
    start = _seams(events)[1] + 1
    prev = AuditEvent.objects.get(pk=start - 1).hash
    for event in AuditEvent.objects.filter(pk__gte=start).order_by("id"):
        raw_sql(
            "UPDATE audit_auditevent SET prev_hash = %s, key_id = '' WHERE id = %s",
            [prev, event.pk],
        )
        prev = event.hash
    one, many = _both()
    assert not many.ok and many.bad_id == start
    assert (one.bad_id, one.problem) == (many.bad_id, many.problem)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_records_cut_from_the_end_are_found_by_the_head_check():
    events = _log()
    raw_sql("DELETE FROM audit_auditevent WHERE id = %s", [events[-1].pk])
    one, many = _both()
    assert not many.ok and "chain head" in many.problem
    assert (one.bad_id, one.problem) == (many.bad_id, many.problem)


# The fast encoder: byte-identical to canonical_json where it claims a match, and the hash it
# gives is always chain_hash's (a difference falls back to the standard encoder).
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
datetimes = st.datetimes(
    min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=st.just(dt.UTC)
)
payloads = st.dictionaries(st.text(max_size=12), json_values | datetimes, max_size=8)
KEY = b"k" * 32
PREV = "0" * 64


@settings(max_examples=400, deadline=None)
@given(payloads)
def test_the_fast_hash_is_always_the_chain_hash(payload):
    stored = chain_hash(PREV, payload, KEY)
    assert fast_chain_hash(PREV, payload, KEY, stored) == stored
    assert fast_chain_hash(PREV, payload, None, chain_hash(PREV, payload)) == chain_hash(
        PREV, payload
    )
    # A record changed after it was written: the fast path never claims a match.
    assert fast_chain_hash(PREV, payload, KEY, "f" * 64) == stored != "f" * 64


@settings(max_examples=400, deadline=None)
@given(payloads)
def test_the_fast_bytes_equal_the_canonical_bytes_but_for_the_known_differences(payload):
    try:
        fast = fast_canonical_json(payload)
    except TypeError:  # a lone surrogate, an int beyond 64 bits: the standard encoder does it
        return
    canonical = canonical_json(payload).encode("utf-8")
    if fast != canonical:
        # Only floats with small exponents (1e-05 against 0.00001) and whole-second datetimes.
        text = canonical.decode("utf-8")
        assert "e-" in text or ".000000+00:00" in text, (fast, canonical)


def test_the_known_differences_still_hash_alike():
    payload = {"f": 1e-05, "t": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "n": 2**70}
    stored = chain_hash(PREV, payload, KEY)
    assert fast_chain_hash(PREV, payload, KEY, stored) == stored


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": [1.5, -0.0, 1e-05, 0.1, 12345678901234567890123], "c": null}',
        '{"deep": ' + "[" * 50 + "1" + "]" * 50 + "}",
        '{"k\\u00e9y": "caf\\u00e9 \\ud83d\\ude00 \\u2028", "n": 9223372036854775808}',
        '"a string"',
        "123.456e-7",
        "1" + "0" * 400,
    ],
)
def test_the_verifier_parses_stored_json_to_exactly_what_json_loads_gives(text):
    from audit.chain_stream import _json_value

    parsed, expected = _json_value(text.encode()), json.loads(text)
    assert parsed == expected
    assert json.dumps(parsed, sort_keys=True) == json.dumps(expected, sort_keys=True)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_any_json_value_parses_as_json_loads_parses_it(value):
    from audit.chain_stream import _json_value

    text = json.dumps(value, ensure_ascii=False)
    assert json.dumps(_json_value(text.encode()), sort_keys=True) == json.dumps(
        json.loads(text), sort_keys=True
    )
