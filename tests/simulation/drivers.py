"""What the simulation does to a provider, through its simulator's public controls only: start a job, move
it, finish it, run it again, and the webhooks the provider would send. Also the provider's truth the
checker compares the table with: the canonical status of a job that ended, told from the simulator's own
words (not through the adapter's mapping, which is what is being checked)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from local.simulators.base import Simulator

COMPLETE, ERROR = "COMPLETE", "ERROR"

# A webhook as the provider would POST it: (body, content type).
Webhook = tuple[str, str]


@dataclass
class Driver:
    """One provider's simulator as the simulation drives it. Job ids are the provider's."""

    provider: str
    credentials: dict[str, str]
    discovers: bool = False  # whether a poll's listing finds jobs nobody tracked through the jobs API
    sim: Any = None
    webhooks: list[tuple[str, Webhook]] = field(default_factory=list)  # (job id, webhook) sent, not yet taken

    def start(self, clock: Any) -> Simulator:
        raise NotImplementedError

    def create(self, index: int, fail: bool) -> str:
        raise NotImplementedError

    def advance(self, job_id: str, steps: int) -> None:
        raise NotImplementedError

    def finish(self, job_id: str) -> None:
        self.advance(job_id, 10)

    def rerun(self, job_id: str, fail: bool) -> None:
        """Runs an ended job again (a new attempt); `fail` where the simulator offers a failing rerun."""
        raise NotImplementedError

    def ended(self, job_id: str) -> str | None:
        """COMPLETE or ERROR when the provider shows the job ended; None while it runs."""
        raise NotImplementedError

    def moved(self, job_id: str) -> None:
        """After any move: the webhooks the provider sends for it (hint providers notify when a job ends)."""
        if self.ended(job_id):
            self.webhooks.append((job_id, self.notification(job_id)))

    def notification(self, job_id: str) -> Webhook:
        raise NotImplementedError

    def clock_passed(self, seconds: float) -> None:
        """The simulation's clock moved on (simulators with a clock of their own follow it)."""

    def take_webhooks(self) -> list[tuple[str, Webhook]]:
        taken, self.webhooks = self.webhooks, []
        return taken


class EncodingCom(Driver):
    def __init__(self) -> None:
        super().__init__("encoding_com", {"user_id": "sim-user-id", "user_key": "sim-user-key-8c1f"})

    def start(self, clock: Any) -> Simulator:
        from local.simulators.encoding_com import EncodingComSimulator

        self.sim = EncodingComSimulator(**self.credentials).start()
        return self.sim

    def create(self, index: int, fail: bool) -> str:
        return self.sim.add_job(fail=fail)

    def advance(self, job_id: str, steps: int) -> None:
        self.sim.advance(job_id, steps)
        self.moved(job_id)

    def rerun(self, job_id: str, fail: bool) -> None:
        self.sim.restart(job_id, fail=fail)

    def ended(self, job_id: str) -> str | None:
        return {"Finished": COMPLETE, "Error": ERROR}.get(self.sim.status_of(job_id))

    def notification(self, job_id: str) -> Webhook:
        return self.sim.notification(job_id, kind="xml")


class TransparentEdge(Driver):
    def __init__(self) -> None:
        super().__init__(
            "transparent_edge",
            {"company_id": "4711", "client_id": "sim-te-client", "client_secret": "sim-te-secret-3b7d"},
            discovers=True,
        )

    def start(self, clock: Any) -> Simulator:
        from local.simulators.transparent_edge import TransparentEdgeSimulator

        self.sim = TransparentEdgeSimulator(**self.credentials).start()
        return self.sim

    def create(self, index: int, fail: bool) -> str:
        return self.sim.add_order(fail=fail)

    def advance(self, job_id: str, steps: int) -> None:
        self.sim.advance(job_id, steps)
        self.moved(job_id)

    def rerun(self, job_id: str, fail: bool) -> None:
        self.sim.requeue(job_id, fail=fail)

    def ended(self, job_id: str) -> str | None:
        return {"FINISHED": COMPLETE, "ERROR": ERROR}.get(self.sim.orders[job_id].status)

    def notification(self, job_id: str) -> Webhook:
        return json.dumps({"order_id": job_id}), "application/json"


class Xvid(Driver):
    def __init__(self) -> None:
        super().__init__(
            "xvid", {"client_id": "sim-xvid-client", "client_secret": "sim-xvid-secret-5e2a"}, discovers=True
        )

    def start(self, clock: Any) -> Simulator:
        from local.simulators.xvid import XvidSimulator

        self.sim = XvidSimulator(**self.credentials).start()
        return self.sim

    def create(self, index: int, fail: bool) -> str:
        return self.sim.add_job(fail=fail)

    def advance(self, job_id: str, steps: int) -> None:
        self.sim.advance_clock(seconds=1)  # every change at a time of its own, as on a real clock
        self.sim.advance(job_id, steps)
        self.moved(job_id)

    def rerun(self, job_id: str, fail: bool) -> None:
        self.sim.advance_clock(seconds=1)
        self.sim.restart(job_id)  # the simulator runs a job again along its first lifecycle (`fail` not offered)

    def ended(self, job_id: str) -> str | None:
        return {"SUCCESS": COMPLETE, "FAILED": ERROR}.get(self.sim.jobs[job_id].status)

    def notification(self, job_id: str) -> Webhook:
        return json.dumps({"job": {"id": job_id}}), "application/json"

    def clock_passed(self, seconds: float) -> None:
        self.sim.advance_clock(seconds=seconds)


class VodStation(Driver):
    """One output per job, so that the job's status is its output's. Callbacks carry the state itself (the
    API cannot read one job): every callback the simulator sends is a webhook, in the order sent."""

    OUTPUT = "AVC_SD_1Pass_30fps"

    def __init__(self) -> None:
        super().__init__(
            "vod_station", {"access_key": "sim-vod-access-9d4e", "secret_key": "sim-vod-secret-1a6c"}, discovers=True
        )

    def start(self, clock: Any) -> Simulator:
        from local.simulators.vod_station import VodStationSimulator

        self.sim = VodStationSimulator(**self.credentials).start()
        self.sim.job_clock = clock.epoch_ms  # work is stamped on the simulation's clock, as the listing's window
        return self.sim

    def create(self, index: int, fail: bool) -> str:
        job_id = self.sim.add_job(10019, f"sim/movie-{index}.mp4", (self.OUTPUT,), fail=fail)
        self.moved(job_id)
        return job_id

    def advance(self, job_id: str, steps: int) -> None:
        self.sim.advance(job_id, steps)
        self.moved(job_id)

    def rerun(self, job_id: str, fail: bool) -> None:
        self.sim.reencode(job_id)  # a re-encode runs the normal lifecycle (`fail` not offered)
        self.moved(job_id)

    def ended(self, job_id: str) -> str | None:
        return {"COMPLETE": COMPLETE, "FAILURE": ERROR}.get(self.sim.status_of(job_id)[self.OUTPUT])

    def moved(self, job_id: str) -> None:
        # Every move is followed by this call, so the callbacks sent since are this job's.
        for payload in self.sim.take_callbacks():
            self.webhooks.append((job_id, (json.dumps(payload), "application/json")))


# Every provider of the registry (transcode_core.providers.PROVIDER_IDS) has one; a test checks it.
DRIVERS: dict[str, type[Driver]] = {
    "encoding_com": EncodingCom,
    "transparent_edge": TransparentEdge,
    "xvid": Xvid,
    "vod_station": VodStation,
}
