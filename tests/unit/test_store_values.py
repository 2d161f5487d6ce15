"""The jobs table's value conversions: items in, AttributeValues out and back, exactly as boto3's own
TypeSerializer / TypeDeserializer (which the store used before converting the plain types itself)."""

from __future__ import annotations

import math
import os
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from transcode_core import store as store_module
from transcode_core.errors import DependencyUnavailable
from transcode_core.store import JobStore, _from_dynamo, _to_dynamo, job_key


def boto3_to_dynamo(item):
    def decimals(value):
        if isinstance(value, float):
            return Decimal(str(value))
        if isinstance(value, dict):
            return {key: decimals(inner) for key, inner in value.items() if inner is not None}
        if isinstance(value, (list, tuple)):
            return [decimals(inner) for inner in value]
        return value

    return {key: TypeSerializer().serialize(decimals(value)) for key, value in item.items() if value is not None}


def boto3_from_dynamo(raw):
    def plain(value):
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, dict):
            return {key: plain(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [plain(inner) for inner in value]
        if isinstance(value, set):
            return sorted(plain(inner) for inner in value)
        return value

    return {key: plain(TypeDeserializer().deserialize(value)) for key, value in raw.items()}


leaves = (
    st.text(max_size=20)
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False)
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
items = st.dictionaries(st.text(min_size=1, max_size=8), values, max_size=8)


def outcome(convert, value):
    try:
        return convert(value)
    except Exception as exc:  # both must refuse the same values (a number past 38 digits)
        return type(exc)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")), deadline=None)
@given(items)
def test_items_convert_to_attribute_values_as_boto3_converts_them(item):
    assert outcome(_to_dynamo, item) == outcome(boto3_to_dynamo, item)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")), deadline=None)
@given(items)
def test_attribute_values_convert_back_as_boto3_converts_them(item):
    raw = outcome(boto3_to_dynamo, item)
    assume(isinstance(raw, dict))  # a value DynamoDB cannot hold is never stored
    assert _from_dynamo(raw) == boto3_from_dynamo(raw)


def test_sets_and_decimals_go_through_boto3():
    item = {"words": {"b", "a"}, "sizes": {Decimal(2), Decimal("1.5")}, "exact": Decimal("0.1")}
    raw = _to_dynamo(item)
    assert raw == boto3_to_dynamo(item)
    assert _from_dynamo(raw) == {"words": ["a", "b"], "sizes": [1.5, 2], "exact": 0.1}


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_float_dynamodb_cannot_hold_is_refused_as_before(value):
    with pytest.raises(TypeError):
        _to_dynamo({"progress": value})


def test_a_query_reads_the_items_it_wrote_back_unchanged_and_its_errors_stay_errors(stack):
    # The ActiveJobs Query hands on its items unparsed by botocore and converts them itself
    store = JobStore(stack.table_name)
    item = {
        **job_key("xvid", "job-1"),
        "provider": "xvid",
        "job_id": "job-1",
        "status": "PROCESSING",
        "progress": 42.5,
        "attempt": 1,
        "version": 1,
        "updated_at": "2026-12-03T17:00:00Z",
        "active_provider": "xvid",
        "outputs": [{"id": "a", "progress": 0, "destinations": [{"url": "s3://b/k", "ok": True, "note": None}]}],
        "details": {"tags": ["x", None], "empty": {}, "count": 12345678901234567890},
        "ids": {"SS-1", "SS-2"},
    }
    store.commit(item, None, "poll")

    [read] = store.active_jobs("xvid")

    # (a None inside a map is left out, as it always was; sets come back sorted lists)
    expected_outputs = [{"id": "a", "progress": 0, "destinations": [{"url": "s3://b/k", "ok": True}]}]
    assert read == {**item, "listed_provider": "xvid", "ids": ["SS-1", "SS-2"], "outputs": expected_outputs}
    with pytest.raises(DependencyUnavailable):
        JobStore("no-such-table").active_jobs("xvid")


def test_the_active_index_is_read_a_bounded_page_at_a_time(stack, monkeypatch):
    # Given 12 active jobs and pages of at most 5 (500 in production: a page's parse is what costs memory)
    monkeypatch.setattr(store_module, "ACTIVE_PAGE_ITEMS", 5)
    store = JobStore(stack.table_name)
    for n in range(12):
        store.register("xvid", f"job-{n:02}", rewatch_minutes=60)
    queries = []
    store.client.meta.events.register(
        "before-parameter-build.dynamodb.Query", lambda params, **_: queries.append(dict(params))
    )

    jobs = store.active_jobs("xvid")

    # Then every job is read, in three Queries of at most 5 items
    assert sorted(job["job_id"] for job in jobs) == [f"job-{n:02}" for n in range(12)]
    assert [query["Limit"] for query in queries] == [5, 5, 5]
