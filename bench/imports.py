"""`make bench-imports`: the cold-start share that is ours, measured on the built artifact (`sam build`).

In an emulation of Lambda's python3.13 runtime, each measurement is a fresh `python3.13 -I -B -S` process
whose sys.path is what Lambda gives a function: the function's built folder, the built layer's `python/`
folder, then the AWS SDK the runtime ships (the versions in layers/transcode_core/lambda-runtime.txt,
installed once by python3.13's pip under .aws-sam/). -I and -S keep the host's site-packages out, -B keeps
the run from writing bytecode (Lambda's /opt and /var/task are read-only). The environment is the one
template.yaml gives the function plus what Lambda sets, so Powertools' Tracer is on and patches as deployed.

Cold `import boto3` alone is the baseline. Each round imports boto3 and then every handler, each in a fresh
process; a handler's ratio is the median over --repeat rounds of its time over the same round's boto3 (a
round the machine runs slowly slows both). Targets (RATIO_TARGETS): the jobs API within 1.5x of `import
boto3`; a provider function within 1.6x, since it must also load requests and Powertools' parameters
(about 0.15x between them), which the jobs API does not. No copy of the runtime's SDK may be in the layer,
and the build must hold the sources as they are (a stale build would time old code). `check()` prints the
figures and writes them to bench/results/imports.md; `--check` (and `python -m bench --check`) exits 1 when
one is missed. Also printed: the built layer's size (unzipped and zipped).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from local.artifact import ArtifactError, find_python, runtime_sdk
from local.template import load_template

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
LAYER_ID = "CoreLayer"
SDK_PACKAGES = ("boto3", "botocore", "s3transfer")
BASELINE = "import boto3"
RESULTS = ROOT / "bench" / "results" / "imports.md"
JOBS_API_RATIO = 1.5
PROVIDER_FUNCTION_RATIO = 1.6
# Logical id -> the most a handler's cold import may take, as a multiple of `import boto3`.
RATIO_TARGETS = {"JobsApiFunction": JOBS_API_RATIO}
# The sources each built folder holds a copy of (the layer's bytecode is compiled from them at build time).
SOURCES = {"CoreLayer/python/transcode_core": ROOT / "layers" / "transcode_core" / "transcode_core"}
# Prints the seconds one import takes; sys.path is set before the clock starts.
TIMER = (
    "import sys, time; sys.path[:0] = {path!r}; t = time.perf_counter(); import {module}; "
    "print(time.perf_counter() - t)"
)


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Logical id -> {"module": handler module, "env": the environment Lambda would give it}."""
    globals_ = template.get("Globals", {}).get("Function", {})
    found = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        handler = properties.get("Handler", globals_.get("Handler"))
        variables = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **properties.get("Environment", {}).get("Variables", {}),
        }
        env = {name: value if isinstance(value, str) else f"bench-{name.lower()}" for name, value in variables.items()}
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": logical_id,
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", globals_.get("MemorySize", 128))),
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
                "LAMBDA_TASK_ROOT": str(BUILD / logical_id),
                "TZ": ":UTC",
                "LANG": "en_US.UTF-8",
            }
        )
        found[logical_id] = {"module": handler.rsplit(".", 1)[0], "env": env}
    return found


def layer_size(layer: Path) -> tuple[float, float, int]:
    """MB unzipped, MB zipped (deflate, as sam package uploads it), number of files."""
    files = [path for path in layer.rglob("*") if path.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(layer))
    return sum(path.stat().st_size for path in files) / 1e6, buffer.tell() / 1e6, len(files)


def cold_import(python: str, path: list[str], module: str, env: dict[str, str]) -> float:
    code = TIMER.format(path=path, module=module)
    out = subprocess.run([python, "-I", "-B", "-S", "-c", code], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"import {module} failed in the runtime emulation:\n{out.stderr}")
    return float(out.stdout.strip().splitlines()[-1])


def stale_sources(template: dict[str, Any]) -> list[str]:
    """The source files (relative to the project) whose built copy differs or is missing: `make build` is due."""
    pairs = dict(SOURCES)
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            pairs[logical_id] = ROOT / resource["Properties"]["CodeUri"]
    stale = []
    for built, source in pairs.items():
        for path in sorted(source.rglob("*.py")):
            copy = BUILD / built / path.relative_to(source)
            if not copy.is_file() or copy.read_bytes() != path.read_bytes():
                stale.append(str(path.relative_to(ROOT)))
    return stale


def check(repeat: int = 9, out: Any = None) -> bool:
    """Measures and prints the cold imports (to `out`, default stdout) and writes them to RESULTS; True when
    every handler is within its target and the layer ships no SDK. False, with the reason, when there is no
    build, the build is stale or there is no python3.13 to run it."""
    out = out or sys.stdout
    if not (BUILD / "template.yaml").exists():
        print("cold imports: not measured, no built artifact: run `make build` first", file=out)
        return False
    stale = stale_sources(load_template(ROOT / "template.yaml"))
    if stale:
        shown = ", ".join(stale[:3]) + (f" and {len(stale) - 3} more" if len(stale) > 3 else "")
        print(f"cold imports: not measured, the build is stale ({shown}): run `make build` first", file=out)
        return False
    try:
        python = find_python()
        sdk = runtime_sdk(python)
    except ArtifactError as exc:
        print(f"cold imports: not measured: {exc}", file=out)
        return False
    layer = BUILD / LAYER_ID / "python"
    shipped_sdk = [name for name in SDK_PACKAGES if (layer / name).exists()]
    targets = functions(load_template(BUILD / "template.yaml"))
    base_env = {"PATH": os.environ.get("PATH", ""), "AWS_REGION": "us-east-1", "TZ": ":UTC"}
    rounds = []  # each round: import boto3, then every handler, each in a fresh process
    for _ in range(repeat + 1):
        times = {BASELINE: cold_import(python, [str(sdk)], "boto3", base_env)}
        for logical_id, target in targets.items():
            path = [str(BUILD / logical_id), str(layer), str(sdk)]
            times[logical_id] = cold_import(python, path, target["module"], {**base_env, **target["env"]})
        rounds.append(times)
    rounds = rounds[1:]  # the first round only warms the file cache

    unzipped, zipped, count = layer_size(layer)
    lines = [
        f"built layer: {unzipped:.1f} MB unzipped, {zipped:.1f} MB zipped, {count} files",
        f"AWS SDK in the layer: {', '.join(shipped_sdk) or 'none'} (the runtime's: {sdk.relative_to(ROOT)})",
        f"cold imports, python3.13 -I -B -S, {repeat} rounds of fresh processes (medians; ratio: of each round's "
        "pair):",
        f"  {BASELINE:<24} {statistics.median(times[BASELINE] for times in rounds) * 1000:7.0f} ms   1.00x",
    ]
    missed = bool(shipped_sdk)
    for logical_id in targets:
        ratio = statistics.median(times[logical_id] / times[BASELINE] for times in rounds)
        target = RATIO_TARGETS.get(logical_id, PROVIDER_FUNCTION_RATIO)
        missed |= ratio > target
        verdict = "ok" if ratio <= target else "MISSED"
        median_ms = statistics.median(times[logical_id] for times in rounds) * 1000
        lines.append(f"  {logical_id:<24} {median_ms:7.0f} ms  {ratio:5.2f}x  (target {target}x) {verdict}")
    lines.append(f"targets: {'missed' if missed else 'met'} (and no SDK in the layer)")
    text = "\n".join(lines)
    print(text, file=out)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(f"# Cold imports of the built functions (`make bench-imports`)\n\n```\n{text}\n```\n")
    return not missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9, help="fresh processes per import (median is reported)")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a handler exceeds its target or the layer ships the SDK"
    )
    args = parser.parse_args(argv)
    met = check(args.repeat)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
