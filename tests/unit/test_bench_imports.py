"""The cold-import check (bench/imports.py) that `python -m bench --check` runs on the built functions: it
refuses to time a build that no longer holds the sources, and it knows every function it holds to a target."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import imports
from local.template import load_template


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with one function and the layer's package, built (copied) as `sam build` would."""
    for source, built in (("functions/jobs_api", "JobsApiFunction"), ("core/transcode_core", "CoreLayer/python/x")):
        (tmp_path / source / "sub").mkdir(parents=True)
        (tmp_path / source / "app.py").write_text("VALUE = 1\n")
        (tmp_path / source / "sub" / "deep.py").write_text("VALUE = 2\n")
        (tmp_path / ".aws-sam" / "build" / built / "sub").mkdir(parents=True)
        for name in ("app.py", "sub/deep.py"):
            (tmp_path / ".aws-sam" / "build" / built / name).write_bytes((tmp_path / source / name).read_bytes())
    monkeypatch.setattr(imports, "ROOT", tmp_path)
    monkeypatch.setattr(imports, "BUILD", tmp_path / ".aws-sam" / "build")
    monkeypatch.setattr(imports, "SOURCES", {"CoreLayer/python/x": tmp_path / "core" / "transcode_core"})
    return tmp_path


TEMPLATE = {
    "Resources": {
        "JobsApiFunction": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "functions/jobs_api/"}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
    }
}


def test_a_build_that_holds_the_sources_is_not_stale(project: Path):
    assert imports.stale_sources(TEMPLATE) == []


def test_a_source_changed_or_added_since_the_build_makes_it_stale(project: Path):
    (project / "core" / "transcode_core" / "sub" / "deep.py").write_text("VALUE = 3\n")
    (project / "functions" / "jobs_api" / "new.py").write_text("")
    assert imports.stale_sources(TEMPLATE) == ["core/transcode_core/sub/deep.py", "functions/jobs_api/new.py"]


def test_a_stale_build_is_not_timed_and_fails_the_check(project: Path, capsys: pytest.CaptureFixture[str]):
    (project / ".aws-sam" / "build" / "template.yaml").write_text("Resources: {}\n")
    (project / "template.yaml").write_text(
        "Resources:\n  JobsApiFunction:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      CodeUri: functions/jobs_api/\n"
    )
    (project / "functions" / "jobs_api" / "app.py").write_text("VALUE = 4\n")
    assert imports.check(repeat=1) is False
    assert "the build is stale (functions/jobs_api/app.py): run `make build` first" in capsys.readouterr().out


def test_every_function_held_to_a_target_is_one_the_template_deploys():
    deployed = imports.functions(load_template(Path(imports.__file__).resolve().parent.parent / "template.yaml"))
    assert set(imports.RATIO_TARGETS) <= set(deployed)
    assert imports.RATIO_TARGETS["JobsApiFunction"] == 1.5
