"""The shared OAuth client-credentials token against the TransparentEdge simulator: what the provider tests do
not already show (renewal of short-lived tokens, the default lifetime, one cache entry per API, what a refusal
repeats)."""

from __future__ import annotations

import pytest

from local.simulators.transparent_edge import TransparentEdgeSimulator
from transcode_core import oauth
from transcode_core.errors import ProviderError
from transcode_core.http import build_session
from transcode_core.urls import join_url

CLIENT, SECRET = "te-client", "te-secret"
TOKEN_PATH = "v1/oauth2/access_token/"


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """The token clock, at a fixed time the test moves: `clock[0] += seconds`."""
    now = [1000.0]
    monkeypatch.setattr(oauth, "_clock", lambda: now[0])
    return now


def simulator(**kwargs) -> TransparentEdgeSimulator:
    return TransparentEdgeSimulator(client_id=CLIENT, client_secret=SECRET, **kwargs)


def access_token(sim) -> oauth.ClientCredentialsToken:
    return oauth.ClientCredentialsToken(
        "transparent_edge", build_session(retries=0), join_url(sim.url, TOKEN_PATH), CLIENT, SECRET
    )


def test_a_short_lived_token_is_renewed_in_the_last_tenth_of_its_life(clock):
    with simulator(token_ttl=100) as sim:
        token = access_token(sim)
        first = token.value()

        clock[0] += 89
        assert token.value() == first and sim.token_calls() == 1

        clock[0] += 2  # 91 s of 100: inside the last tenth
        assert token.value() != first
        assert sim.token_calls() == 2


@pytest.mark.parametrize("expires_in", [None, 0, -5, "soon", "inf"])
def test_without_a_usable_expires_in_a_token_is_kept_for_the_default_hour(clock, expires_in):
    with simulator() as sim:
        answer = {"access_token": "injected", "token_type": "Bearer"}
        sim.answer_next("token", answer if expires_in is None else {**answer, "expires_in": expires_in})
        token = access_token(sim)
        assert token.value() == "injected"

        clock[0] += 3600 - 61
        assert token.value() == "injected" and sim.token_calls() == 1

        clock[0] += 2  # within the last minute of the default hour
        assert token.value() != "injected"
        assert sim.token_calls() == 2


def test_each_api_gets_its_own_token(clock):
    with simulator() as first_api, simulator() as second_api:
        tokens = [access_token(first_api).value(), access_token(second_api).value(), access_token(first_api).value()]

    assert tokens[0] == tokens[2] != tokens[1]
    assert (first_api.token_calls(), second_api.token_calls()) == (1, 1)


def test_a_refusal_repeats_an_oauth_error_code_but_nothing_else_of_the_body(clock):
    with simulator() as sim:
        sim.answer_next("token", {"error": "<b>denied</b> for te-secret"}, 401)

        with pytest.raises(ProviderError) as raised:
            access_token(sim).value()

    assert "token request refused (HTTP 401)" in raised.value.message
    assert "denied" not in raised.value.message and "te-secret" not in raised.value.message


def test_a_refused_get_is_sent_again_once_with_a_new_token_and_keeps_its_headers(clock):
    with simulator(company_id="4711") as sim:
        order = sim.add_order()
        token = access_token(sim)
        token.value()
        sim.expire_tokens()

        response = token.bearer_get(join_url(sim.url, f"v1/media/4711/transcode/{order}"), headers={"X-Trace": "t1"})

    assert response.status_code == 200 and response.json()["status"] == "QUEUED"
    reads = [request for request in sim.requests if request.method == "GET"]
    assert len(reads) == 2 and sim.token_calls() == 2
    assert [request.headers["x-trace"] for request in reads] == ["t1", "t1"]
    assert reads[0].headers["authorization"] != reads[1].headers["authorization"]
