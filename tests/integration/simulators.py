"""The fixtures every test module that drives one provider's simulator uses: one simulator a module (started
once, on 127.0.0.1), reset before each test so that no test sees another's jobs or faults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


def simulator_fixtures(simulator_class: type, **credentials: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """`running_sim, sim = simulator_fixtures(XvidSimulator, client_id=..., client_secret=...)` at a module's
    top: `running_sim` is the module's simulator, `sim` the same one reset for a test."""

    @pytest.fixture(scope="module")
    def running_sim() -> Iterator[Any]:
        with simulator_class(**credentials) as simulator:
            yield simulator

    @pytest.fixture
    def sim(running_sim: Any) -> Any:
        running_sim.reset()
        return running_sim

    return running_sim, sim
