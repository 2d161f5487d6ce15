"""Property-based tests of every provider's readers: whatever a provider answers (arbitrary bytes, JSON,
XML, or a real answer with parts dropped or replaced) and whatever a webhook carries, an adapter either
normalizes it or raises the project's typed errors, nothing else. Bounded runs (max_examples) keep it fast."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.poll_contexts import poll_context
from tests.unit.test_encoding_com import EXTENDED_XML
from tests.unit.test_transparent_edge import LISTED, SEED_DETAIL
from tests.unit.test_xvid import SEED_JOB
from transcode_core.config import Settings
from transcode_core.errors import BadRequest, ProviderError
from transcode_core.model import Snapshot
from transcode_core.providers import get_spec
from transcode_core.providers.base import PollFailure
from transcode_core.providers.encoding_com import normalize_job
from transcode_core.providers.transparent_edge import normalize_order
from transcode_core.providers.xvid import page_jobs, single_job, to_snapshot
from transcode_core.webhook import WebhookBody
from transcode_core.xmlsafe import parse_xml, to_plain

# FUZZ_EXAMPLES=2000 for a longer hunt; the suite's default stays quick.
BOUNDED = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
VOD_ITEM = {
    "categoryId": 10019,
    "categoryName": "films",
    "fileId": 77,
    "filePath": "movie.mp4",
    "outputType": "sd",
    "status": "RUNNING",
    "percent": 50,
    "outputTotalSize": 1024,
    "link": "https://cdn.example.com/movie_sd.mp4",
    "lastWorkTime": "2026-03-01T20:00:00+0900",
}
ENCODING_COM_PLAIN = to_plain(parse_xml(EXTENDED_XML))
# Active jobs the polls read; ids each provider can have.
ACTIVE = {
    "encoding_com": "1001",
    "transparent_edge": "1631092552-1237",
    "xvid": "559cbbec14ea67a7cad6c7d8",
    "vod_station": "10019:movie.mp4",
}
CREDENTIALS = {
    "encoding_com": {"user_id": "42", "user_key": "k"},
    "transparent_edge": {"company_id": "1234", "client_id": "c", "client_secret": "s"},
    "xvid": {"client_id": "c", "client_secret": "s"},
    "vod_station": {"access_key": "AK", "secret_key": "SK"},
}

# --- strategies ----------------------------------------------------------------------------------------
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)


@st.composite
def mutated(draw, sample: Any) -> Any:
    """`sample` with parts dropped, replaced by any JSON value, or kept: answers that are nearly right."""
    if isinstance(sample, dict):
        result = {}
        for key, value in sample.items():
            choice = draw(st.integers(0, 7))
            if choice == 0:
                continue
            result[key] = draw(json_values) if choice == 1 else draw(mutated(value))
        return result
    if isinstance(sample, list):
        items = [draw(mutated(value)) for value in sample]
        return items[: draw(st.integers(0, len(items)))] if draw(st.booleans()) else items
    return draw(json_values) if draw(st.integers(0, 3)) == 0 else sample


def to_xml(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(to_xml(str(key) or "x", item) for key, item in value.items() if str(key).isidentifier())
    elif isinstance(value, list):
        return "".join(to_xml(tag, item) for item in value)
    else:
        inner = escape("" if value is None else str(value))
    return f"<{tag}>{inner}</{tag}>"


def answers(sample: Any, *, xml: bool = False) -> st.SearchStrategy[bytes]:
    """Provider answer bodies: garbage bytes, any JSON or XML-looking text, or a mutated real answer."""
    real = mutated(sample).map(lambda doc: (to_xml("response", doc) if xml else json.dumps(doc)).encode())
    return st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda doc: json.dumps(doc).encode()),
        st.text(max_size=200).map(lambda text: f"<response>{text}</response>".encode()),
        real,
        real,
    )


webhook_texts = st.one_of(
    st.text(max_size=300),
    json_values.map(json.dumps),
    st.dictionaries(st.sampled_from(["id", "job_id", "order_id", "mediaid", "job", "status"]), json_values).map(
        json.dumps
    ),
    mutated(VOD_ITEM).map(json.dumps),
    st.text(max_size=100).map(lambda text: f"xml=<result><mediaid>{text}</mediaid></result>"),
    st.text(max_size=100).map(lambda text: f"<result><mediaid>{escape(text)}</mediaid><status>x</status></result>"),
)
content_types = st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/xml", ""])


# --- a session that answers whatever the test says --------------------------------------------------------
class CannedSession(requests.Session):
    """Answers token requests with a token, and every other request with `body` (and `status`)."""

    def __init__(self, body: bytes, status: int = 200) -> None:
        super().__init__()
        self.body, self.status = body, status

    def request(self, method, url, **kwargs):  # type: ignore[override]
        response = requests.Response()
        response.url, response.encoding = url, "utf-8"
        if "oauth2" in url:
            response.status_code = 200
            response._content = json.dumps({"access_token": "t", "token_type": "bearer", "expires_in": 3600}).encode()
        else:
            response.status_code, response._content = self.status, self.body
        return response


def adapter_for(provider: str, session: requests.Session):
    spec = get_spec(provider)
    options = Settings(table_name="t", topic_arn="arn", provider_api_url=None, provider_secret_id=None)
    return spec.adapter(
        api_url=spec.default_api_url, credentials=CREDENTIALS[provider], session=session, settings=options
    )


def stored(provider: str) -> dict[str, Any]:
    return {
        "provider": provider,
        "job_id": ACTIVE[provider],
        "status": "PROCESSING",
        "attempt": 1,
        "version": 1,
        "updated_at": "2026-03-01T11:00:00Z",
        "created_at": "2026-03-01T10:00:00Z",
        "started_at": "2026-03-01T10:00:00Z",
    }


SAMPLES = {
    "encoding_com": answers(ENCODING_COM_PLAIN, xml=True),
    "transparent_edge": st.one_of(answers([LISTED]), answers(SEED_DETAIL)),
    "xvid": st.one_of(answers({"jobs": [SEED_JOB]}), answers(SEED_JOB)),
    "vod_station": answers({"content": [VOD_ITEM], "total": 1}),
}


# --- properties ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", sorted(ACTIVE))
def test_a_poll_normalizes_any_answer_or_reports_a_provider_error(provider):
    @BOUNDED
    @given(body=SAMPLES[provider], status=st.sampled_from([200, 200, 200, 400, 401, 404]))
    def poll_with(body, status):
        adapter = adapter_for(provider, CannedSession(body, status))
        context = poll_context([stored(provider)], now=NOW, settings=adapter.settings)
        try:
            results = list(adapter.poll(context))
        except ProviderError:
            return  # the whole poll failed, reported: the pipeline logs it and the jobs stay as they were
        assert all(isinstance(result, (Snapshot, PollFailure)) for result in results)

    poll_with()


@pytest.mark.parametrize("provider", sorted(ACTIVE))
def test_a_webhook_is_applied_or_refused_with_a_typed_error(provider):
    @BOUNDED
    @given(text=webhook_texts, content_type=content_types, answer=SAMPLES[provider])
    def webhook_with(text, content_type, answer):
        adapter = adapter_for(provider, CannedSession(answer))
        try:
            snapshots = adapter.webhook_snapshots(WebhookBody(text, content_type), lambda ids: {})
        except (BadRequest, ProviderError):
            return  # 400, or 502/503 so that the provider sends it again
        assert all(isinstance(snapshot, Snapshot) and snapshot.provider == provider for snapshot in snapshots)

    webhook_with()


@BOUNDED
@given(job=mutated(SEED_JOB), listing=json_values)
@example(job={**SEED_JOB, "outputs": [{"thumbnails": 1}]}, listing=None)  # found by this test: thumbnails not a list
def test_xvid_readers_take_any_document(job, listing):
    for read in (lambda: to_snapshot(job), lambda: page_jobs(listing), lambda: single_job(listing)):
        with contextlib.suppress(ProviderError):
            read()


@BOUNDED
@given(detail=mutated(SEED_DETAIL), listed=mutated(LISTED))
def test_transparent_edge_normalizer_takes_any_detail(detail, listed):
    with contextlib.suppress(ProviderError):
        assert normalize_order("1631092552-1237", detail, listed).job_id == "1631092552-1237"


@BOUNDED
@given(job=mutated(ENCODING_COM_PLAIN["job"][0]))
def test_encoding_com_normalizer_takes_any_job(job):
    with contextlib.suppress(ProviderError):
        assert normalize_job(job, media_id="1001", assume=UTC).job_id == "1001"
