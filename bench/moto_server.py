"""moto in server mode for `make bench`: `python -m bench.moto_server <port>`.

Two bench-only changes, so that moto's own speed does not decide the numbers (the bench injects DynamoDB's
latency on the client side instead): moto copies a whole table before every TransactWriteItems (to roll
back on failure), which makes each transaction cost O(table) — here the copy is skipped (the bench's
transactions do not fail: no other writer races them; rollback is tested elsewhere against plain moto);
and DynamoDB requests are served one at a time, because moto's tables are not thread-safe.
"""

from __future__ import annotations

import copy
import sys
import threading


def patch_moto() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    class _NoTableCopy:
        def __getattr__(self, name: str):
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = _NoTableCopy()
    lock = threading.Lock()
    call_action = DynamoHandler.call_action

    def one_at_a_time(self):
        with lock:
            return call_action(self)

    DynamoHandler.call_action = one_at_a_time


def main() -> None:
    patch_moto()
    from moto.server import main as moto_main

    moto_main(["-H", "127.0.0.1", "-p", sys.argv[1]])


if __name__ == "__main__":
    main()
