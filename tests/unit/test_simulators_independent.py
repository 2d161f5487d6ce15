"""The simulators are written from the providers' documents alone: a bug in the code they check (signing,
parsing, status maps) must be able to fail a test, so they never import it:
a simulator that echoed the code would pass whatever the code does."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from local.simulators import vod_station

SIMULATORS = sorted((Path(__file__).resolve().parents[2] / "local" / "simulators").glob("*.py"))


@pytest.mark.parametrize("path", SIMULATORS, ids=lambda path: path.name)
def test_a_simulator_imports_nothing_of_the_code_it_checks(path):
    tree = ast.parse(path.read_text())
    imported = [
        name
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    ]
    assert not [name for name in imported if name.startswith("transcode_core")]


def test_the_vod_station_simulator_signs_as_naver_documents_it():
    # The message PROVIDERS.md shows ("GET /api/v2/status?pageNo=1&pageSizeNo=20\n1755590820000\nACCESSKEY"),
    # HMAC-SHA256 with the secret key, base64: the same value the adapter's unit test expects, computed apart.
    signature = vod_station._signature_v2(
        "GET", "/api/v2/status?pageNo=1&pageSizeNo=20", "1755590820000", "ACCESSKEY", "SECRETKEY"
    )
    assert signature == "V7TfeI1kKBT4XGbtwTRj3RhiQ37+yzUUsqh5lcVyFVM="
