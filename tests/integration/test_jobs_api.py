"""The jobs API (CONTRACT): PUT starts tracking (201 new, 200 already tracked, 400 unknown provider), GET
returns the job without internal keys (404 unknown), and a PUT on a terminal job watches it again."""

from __future__ import annotations

import pytest

from local.simulators.encoding_com import EncodingComSimulator


def test_put_tracks_once_and_get_returns_the_item_without_internal_keys(stack):
    assert stack.jobs_api("PUT", "xvid", "559cbbec14ea67a7cad6c7d8")[0] == 201
    status, again = stack.jobs_api("PUT", "xvid", "559cbbec14ea67a7cad6c7d8")
    assert status == 200 and again["version"] == 1  # nothing changed
    status, job = stack.jobs_api("GET", "xvid", "559cbbec14ea67a7cad6c7d8")
    assert status == 200
    assert job["status"] == "SUBMITTED" and job["attempt"] == 1 and job["updated_at"].endswith("Z")
    assert not {"pk", "sk", "active_provider", "outbox"} & set(job)
    assert [h["source"] for h in stack.history("xvid", "559cbbec14ea67a7cad6c7d8")] == ["api"]


@pytest.mark.parametrize("method", ["PUT", "GET"])
def test_unknown_provider_is_400_and_nothing_is_written(stack, method):
    status, answer = stack.jobs_api(method, "bitmovin", "1")
    assert status == 400 and "unknown provider" in answer["error"]
    assert stack.jobs() == []


def test_unknown_job_is_404(stack):
    status, answer = stack.jobs_api("GET", "encoding_com", "404404")
    assert (status, answer) == (404, {"error": "job not tracked"})


@pytest.mark.parametrize("path_parameters", [True, False])
def test_vod_station_ids_with_slashes_and_spaces_are_tracked(stack, path_parameters):
    job_id = "10019:input/2026/key note.mp4"
    assert stack.jobs_api("PUT", "vod_station", job_id, path_parameters=path_parameters)[0] == 201
    status, job = stack.jobs_api("GET", "vod_station", job_id, path_parameters=path_parameters)
    assert status == 200 and job["job_id"] == job_id
    assert [job["job_id"] for job in stack.jobs()] == [job_id]


@pytest.mark.parametrize(
    ("provider", "job_id"),
    [
        ("encoding_com", "abc"),  # media ids are positive integers
        ("encoding_com", "0"),
        ("xvid", "../oauth2/token"),
        ("vod_station", "keynote.mp4"),  # no category
        ("vod_station", "10019:" + "가" * 400),  # longer than a table key can be
        ("transparent_edge", ".."),
    ],
)
def test_ids_a_provider_cannot_have_are_refused_so_they_are_never_polled(stack, provider, job_id):
    status, answer = stack.jobs_api("PUT", provider, job_id)
    assert status == 400 and f"not a {provider} job id" in answer["error"]
    assert stack.jobs() == []


def test_a_finished_job_put_again_is_polled_again_and_its_restart_is_a_new_attempt(stack):
    with EncodingComSimulator(user_id="u", user_key="k") as simulator:
        stack.configure("encoding_com", simulator.url, {"user_id": "u", "user_key": "k"})
        media_id = simulator.add_job()
        stack.track("encoding_com", media_id)
        simulator.advance(media_id, 20)
        stack.poll("encoding_com")
        assert stack.job("encoding_com", media_id)["status"] == "COMPLETE"
        simulator.reset_log()
        stack.poll("encoding_com")
        assert simulator.count() == 0  # a finished job is not polled any more
        # The operator restarts the media at encoding.com and puts the job back on the list
        simulator.restart(media_id)
        assert stack.track("encoding_com", media_id) == 200
        for _ in range(20):
            simulator.tick()
            stack.poll("encoding_com")
        job = stack.job("encoding_com", media_id)
        assert (job["status"], job["attempt"]) == ("COMPLETE", 2)
        assert stack.event_ids() == [
            f"encoding_com#{media_id}#1#COMPLETE",
            f"encoding_com#{media_id}#2#COMPLETE",
        ]


def test_a_provider_the_stack_does_not_deploy_is_refused_so_no_job_waits_forever(stack):
    # Given the jobs API's environment as the template sets it for EnabledProviders=encoding_com,xvid
    from local.artifact import resolve
    from local.template import resource

    variables = resource(stack.template, "JobsApiFunction")["Properties"]["Environment"]["Variables"]
    enabled = resolve(variables["ENABLED_PROVIDERS"], stack.template, {"EnabledProviders": "encoding_com, xvid"})
    stack.function_env["jobs_api"] = {
        "TABLE_NAME": stack.table_name,
        "TOPIC_ARN": stack.topic_arn,
        "ENABLED_PROVIDERS": enabled,
    }
    # When a job of a provider left out is PUT, Then it is refused and nothing is written
    status, answer = stack.jobs_api("PUT", "vod_station", "10019:keynote.mp4")
    assert status == 400 and "vod_station is not deployed in this stack" in answer["error"]
    assert stack.jobs() == []
    # while the deployed providers' jobs are tracked, and reading a job stays possible for every provider
    assert stack.jobs_api("PUT", "xvid", "559cbbec14ea67a7cad6c7d8")[0] == 201
    assert stack.jobs_api("GET", "vod_station", "10019:keynote.mp4")[0] == 404


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
@pytest.mark.parametrize(
    ("provider", "job_id"),
    [
        ("vod_station", "1:x\nStatus: COMPLETE"),
        ("vod_station", "1:movie\x00.mp4"),
        ("vod_station", "1:movie\r.mp4"),
        ("vod_station", "1:movie\u2028.mp4"),
        ("vod_station", "1:movie\x85.mp4"),
        ("encoding_com", "42\n"),
        ("transparent_edge", "7\x00"),
        ("xvid", "abc\n"),
    ],
)
def test_job_ids_with_control_characters_are_a_clear_400_for_every_method(stack, method, provider, job_id):
    status, answer = stack.jobs_api(method, provider, job_id)
    assert status == 400 and "control character" in answer["error"], answer
    assert stack.jobs() == []
