"""`make bench-imports`: the cold-start share that is ours, measured on the built artifact (`sam build`).

In an emulation of Lambda's python3.13 runtime, each measurement is a fresh `python3.13 -I -B -S` process
whose sys.path is what Lambda gives a function: the function's built folder, the built layer's `python/`
folder, then the AWS SDK the runtime ships (the versions in layers/transcode_core/lambda-runtime.txt,
installed once by python3.13's pip under .aws-sam/). -I and -S keep the host's site-packages out, -B keeps
the run from writing bytecode (Lambda's /opt and /var/task are read-only). The environment is the one
template.yaml gives the function plus what Lambda sets, so Powertools' Tracer is on and patches as deployed.

Cold `import boto3` alone is the baseline; each function's handler module is timed against it (median of
--repeat runs, interleaved). Target: every handler within 1.5x of `import boto3`, and no copy of the runtime's
SDK in the layer; `--check` exits 1 when one is missed (`make bench --check` runs it through `check()`). Also
printed: the built layer's size (unzipped and zipped).
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
TARGET_RATIO = 1.5
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


def check(repeat: int = 9, out: Any = None) -> bool:
    """Measures and prints the cold imports (to `out`, default stdout); True when every handler is within
    TARGET_RATIO of `import boto3` and the layer ships no SDK. Exits with a message when there is no build or
    no python3.13."""
    out = out or sys.stdout
    if not (BUILD / "template.yaml").exists():
        sys.exit("no built artifact: run `make build` first")
    try:
        python = find_python()
        sdk = runtime_sdk(python)
    except ArtifactError as exc:
        sys.exit(str(exc))
    layer = BUILD / LAYER_ID / "python"
    shipped_sdk = [name for name in SDK_PACKAGES if (layer / name).exists()]
    targets = functions(load_template(BUILD / "template.yaml"))
    base_env = {"PATH": os.environ.get("PATH", ""), "AWS_REGION": "us-east-1", "TZ": ":UTC"}
    runs: dict[str, list[float]] = {"import boto3": [], **{logical_id: [] for logical_id in targets}}
    for rep in range(repeat + 1):  # the first round only warms the file cache
        times = {"import boto3": cold_import(python, [str(sdk)], "boto3", base_env)}
        for logical_id, target in targets.items():
            path = [str(BUILD / logical_id), str(layer), str(sdk)]
            times[logical_id] = cold_import(python, path, target["module"], {**base_env, **target["env"]})
        if rep:
            for name, seconds in times.items():
                runs[name].append(seconds)

    unzipped, zipped, count = layer_size(layer)
    print(f"built layer: {unzipped:.1f} MB unzipped, {zipped:.1f} MB zipped, {count} files", file=out)
    shipped = ", ".join(shipped_sdk) or "none"
    print(f"AWS SDK in the layer: {shipped} (the runtime's: {sdk.relative_to(ROOT)})", file=out)
    print(f"cold imports, python3.13 -I -B -S, median of {repeat} fresh processes:", file=out)
    baseline = statistics.median(runs.pop("import boto3"))
    print(f"  {'import boto3':<24} {baseline * 1000:7.0f} ms   1.00x", file=out)
    missed = bool(shipped_sdk)
    for logical_id, samples in runs.items():
        median = statistics.median(samples)
        ratio = median / baseline
        missed |= ratio > TARGET_RATIO
        verdict = "ok" if ratio <= TARGET_RATIO else "MISSED"
        print(f"  {logical_id:<24} {median * 1000:7.0f} ms  {ratio:5.2f}x  {verdict}", file=out)
    print(f"target: each handler within {TARGET_RATIO}x of import boto3, no SDK in the layer: ", end="", file=out)
    print("missed" if missed else "met", file=out)
    return not missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9, help="fresh processes per import (median is reported)")
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 when a handler exceeds {TARGET_RATIO}x or the layer ships the SDK"
    )
    args = parser.parse_args(argv)
    met = check(args.repeat)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
