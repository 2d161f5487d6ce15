"""The estimate's error on the simulators' jobs (bench/estimate_error.py, whose full run docs/events.md
quotes): jobs with uneven step times, polled every minute on a simulated clock. Half-way through every job
has an estimate, and it is off by less than the time that was still left; the provider's own estimate,
which knows the mean step time, is closer than the progress line."""

from __future__ import annotations

import pytest

from bench.estimate_error import measure


@pytest.mark.slow  # two providers' jobs polled through about forty simulated minutes
def test_estimates_half_way_are_closer_than_the_time_left_and_the_provider_is_closest():
    results = {result["case"]: result for result in measure(jobs=8, names=("encoding_com (time_left)", "xvid"))}
    provider = {point["share"]: point for point in results["encoding_com (time_left)"]["points"]}
    progress = {point["share"]: point for point in results["xvid"]["points"]}
    for share in (0.5, 0.75):
        assert provider[share]["with_estimate"] == progress[share]["with_estimate"] == 8
        assert provider[share]["basis"] == ["provider"] and progress[share]["basis"] == ["progress"]
    assert progress[0.5]["median_relative_error"] < 1.0
    assert provider[0.5]["median_relative_error"] < 0.5
    assert provider[0.5]["median_relative_error"] < progress[0.5]["median_relative_error"]
