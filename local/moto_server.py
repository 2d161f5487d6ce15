"""moto in server mode on 127.0.0.1 for the local stack (`make demo`, `make invoke`, the artifact tests).

moto's backends are not thread-safe, while a provider function polls through a pool of threads: two
requests at once can break moto itself (e.g. "dictionary changed size during iteration" while SNS
delivers to SQS during a table write). Real AWS serves them concurrently; moto here serves them one at a
time, which gives the same answers. SQS long polls are let through, or a `transcode-status events tail`
waiting for a message would hold every other request up.
"""

from __future__ import annotations

import threading
from typing import Any

LONG_POLL_TARGET = "AmazonSQS.ReceiveMessage"  # the SQS JSON protocol's operation header


class MotoServer:
    """A moto server on 127.0.0.1 (a free port) in a thread of this process. Use as a context manager, or
    start()/stop(); `url` is what AWS_ENDPOINT_URL takes."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> MotoServer:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        dispatch = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def one_at_a_time(environ: dict[str, Any], start_response: Any) -> Any:
            if environ.get("HTTP_X_AMZ_TARGET") == LONG_POLL_TARGET:
                return dispatch(environ, start_response)
            with lock:
                return list(dispatch(environ, start_response))  # the body is built under the lock too

        self._server = make_server(
            self._host, self._port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
