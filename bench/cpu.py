"""CPU time by phase for `make bench`, per thread (time.thread_time), so that waits never count.

Phases: `provider` (the adapter reading its API and turning answers into snapshots: request building, the
HTTP client, JSON/XML parsing), `dynamodb`, `sns` and `aws_other` (botocore's own work for each call:
serializing, signing, sending, parsing), `simulator` (the provider simulator, which runs in the bench's
process but is no part of the function) and `deciding` (the rest of the process's CPU: the pipeline deciding
each snapshot against its stored item, building items and events, logging, metrics, thread hand-offs).
A phase entered inside another (a DynamoDB call made while the adapter reads) is counted in the inner
phase only. The attribution is by patching: the adapters' reading methods, `read_concurrently`'s workers,
botocore's event hooks and the simulator's request handler.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

PHASES = ("provider", "deciding", "dynamodb", "sns", "aws_other", "simulator")
AWS_PHASES = {"dynamodb": "dynamodb", "sns": "sns"}


class CpuPhases:
    """Thread CPU seconds by phase; `deciding` is what the process spent outside every other phase."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._process_started = time.process_time()

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()
            self._process_started = time.process_time()

    def snapshot(self) -> dict[str, float]:
        """Seconds by phase since the last reset, `deciding` the remainder of the process's CPU time."""
        with self._lock:
            measured = dict(self.seconds)
            process = time.process_time() - self._process_started
        phases = {phase: measured.get(phase, 0.0) for phase in PHASES if phase != "deciding"}
        phases["deciding"] = max(0.0, process - sum(phases.values()))
        phases["process"] = process
        phases["function"] = process - phases["simulator"]
        return phases

    # --- a per-thread stack of open phases -----------------------------------------------------------------
    def _stack(self) -> list[list[Any]]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def enter(self, phase: str) -> None:
        self._stack().append([phase, time.thread_time(), 0.0])

    def leave(self, phase: str | None = None) -> None:
        stack = self._stack()
        if not stack or (phase is not None and all(entry[0] != phase for entry in stack)):
            return
        while phase is not None and stack[-1][0] != phase:
            self.leave()  # a phase an exception left open inside this one
        name, started, inner = stack.pop()
        took = time.thread_time() - started
        with self._lock:
            self.seconds[name] += took - inner
        if stack:
            stack[-1][2] += took

    def run(self, phase: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.enter(phase)
        try:
            return call(*args, **kwargs)
        finally:
            self.leave(phase)

    def iterate(self, phase: str, items: Iterator[Any]) -> Iterator[Any]:
        """`items`, each step of the iterator counted in `phase` (the consumer's work in between is not)."""
        try:
            while True:
                self.enter(phase)
                try:
                    item = next(items)
                except StopIteration:
                    return
                finally:
                    self.leave(phase)
                yield item
        finally:
            close = getattr(items, "close", None)
            if close:
                close()

    # --- hooks -----------------------------------------------------------------------------------------------
    def hook_botocore(self, events: Any) -> None:
        """botocore's own CPU for each call: from building its parameters to its parsed answer."""

        def before(model: Any, **_kwargs: Any) -> None:
            service = model.service_model.service_name
            stack = self._stack()
            if stack and stack[-1][0] in (*AWS_PHASES.values(), "aws_other"):
                self.leave()  # a call whose answer never came (an exception in the send) left its phase open
            self.enter(AWS_PHASES.get(service, "aws_other"))

        def after(event_name: str, **_kwargs: Any) -> None:
            # after-call.<service id>.<operation>; after-call-error carries no model
            self.leave(AWS_PHASES.get(event_name.split(".")[1].lower(), "aws_other"))

        events.register("before-parameter-build", before)
        events.register("after-call", after)
        events.register("after-call-error", after)

    def hook_adapters(self) -> None:
        """Every provider adapter's reads (the poll's and a webhook's) and `read_concurrently`'s workers."""
        import transcode_core.providers as providers_package
        from transcode_core.providers import base

        for name in ("encoding_com", "transparent_edge", "xvid", "vod_station"):
            __import__(f"{providers_package.__name__}.{name}")
        original = base.read_concurrently

        @functools.wraps(original)
        def read_concurrently(read: Callable[[Any], Any], items: Any, concurrency: int, name: str) -> Iterator[Any]:
            return original(functools.partial(self.run, "provider", read), items, concurrency, name)

        for module in list(sys.modules.values()):
            if getattr(module, "read_concurrently", None) is original:
                module.read_concurrently = read_concurrently
        for adapter in _subclasses(base.Adapter):
            for method in ("poll", "read_jobs", "webhook_snapshots"):
                if method in vars(adapter) and not getattr(vars(adapter)[method], "_cpu_phase", False):
                    setattr(adapter, method, self._reading(vars(adapter)[method]))

    def _reading(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def reading(*args: Any, **kwargs: Any) -> Any:
            result = self.run("provider", method, *args, **kwargs)
            return self.iterate("provider", result) if isinstance(result, Iterator) else result

        reading._cpu_phase = True  # type: ignore[attr-defined]
        return reading

    def hook_simulator(self, sim: Any) -> None:
        """The simulator's request threads: each request's handling, from its request line to its answer."""
        handler = sim._server.RequestHandlerClass
        original = handler.handle_one_request

        def handle_one_request(request_handler: Any) -> None:
            self.run("simulator", original, request_handler)

        handler.handle_one_request = handle_one_request


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found
