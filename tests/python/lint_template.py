#!/usr/bin/env python3
"""Lints the AWS SAM template, offline.

    python tests/python/lint_template.py [template.yaml]

1. `cfn-lint` on the template as written.
2. `sam validate --lint` (no credentials needed; region us-east-1).
3. The SAM transform, run offline with `samtranslator` (a managed-policy
   loader that returns nothing, so no IAM call; every local CodeUri replaced
   by a dummy S3 location), and `cfn-lint` on the plain CloudFormation it
   produces: cfn-lint does not expand the transform, so a bad !GetAtt or
   !Ref, an invalid runtime or an out-of-range property inside a serverless
   resource is only caught there.
4. Every event file a `sam local invoke --event` would take (`events/**/*.json`)
   is valid JSON.

Exits non-zero on any finding (warnings included). Run it with the project's
virtual environment (`.venv/bin/python`), which has cfn-lint and the SAM CLI.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
DUMMY_CODE_URI = "s3://dredge-lint-dummy-bucket/code.zip"


def tool(name: str) -> str:
    """The console script installed next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: run with the project's .venv/bin/python")
    return found


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SAM_CLI_TELEMETRY="0",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def run(step: str, command: list[str]) -> bool:
    print(f"--- {step}: {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=ROOT, env=environment(), capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if output:
        print(output)
    if result.returncode != 0:
        print(f"FAIL {step} (exit {result.returncode})")
        return False
    print(f"ok   {step}")
    return True


def load_template(path: Path) -> dict:
    from samcli.yamlhelper import yaml_parse

    return yaml_parse(path.read_text())


def translate(template: dict) -> dict:
    """The SAM template as plain CloudFormation, without AWS calls."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        """Resolves no managed-policy names (no IAM ListPolicies call)."""

        def load(self) -> dict[str, str]:
            return {}

    template = copy.deepcopy(template)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            properties = resource.setdefault("Properties", {})
            key = "CodeUri" if resource["Type"] == "AWS::Serverless::Function" else "ContentUri"
            properties[key] = DUMMY_CODE_URI
    globals_function = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in globals_function:
        globals_function["CodeUri"] = DUMMY_CODE_URI
    parameters = {"AWS::Region": REGION, "AWS::Partition": "aws", "AWS::AccountId": "123456789012"}
    return transform(template, parameters, NoManagedPolicies())


def check_translation(path: Path) -> bool:
    step = "samtranslator + cfn-lint on the transformed template"
    print(f"--- {step}", flush=True)
    try:
        translated = translate(load_template(path))
    except Exception as error:  # the translator's errors name the resource and property
        print(f"{type(error).__name__}: {error}")
        print(f"FAIL {step}")
        return False
    resources = translated.get("Resources", {})
    serverless = [k for k, v in resources.items() if v.get("Type", "").startswith("AWS::Serverless::")]
    if serverless or "Transform" in translated:
        print(f"the transform left serverless resources behind: {serverless}")
        print(f"FAIL {step}")
        return False
    print(f"translated: {len(resources)} resources")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "translated.json"
        out.write_text(json.dumps(translated, indent=2))
        return run("cfn-lint (translated)", [tool("cfn-lint"), str(out)])


def check_events() -> bool:
    step = "event files are JSON"
    print(f"--- {step}", flush=True)
    files = sorted((ROOT / "events").rglob("*.json"))
    bad = []
    for file in files:
        try:
            json.loads(file.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            bad.append(f"{file.relative_to(ROOT)}: {error}")
    for line in bad:
        print(line)
    if bad or not files:
        print(f"FAIL {step}" + ("" if files else ": no event files found under events/"))
        return False
    print(f"ok   {step} ({len(files)} files)")
    return True


def main(argv: list[str]) -> int:
    template = Path(argv[1] if len(argv) > 1 else "template.yaml")
    if not template.is_absolute():
        template = (Path.cwd() / template).resolve()
    if not template.is_file():
        print(f"{template}: no such file")
        return 2
    results = [
        run("cfn-lint", [tool("cfn-lint"), str(template)]),
        run(
            "sam validate --lint",
            [tool("sam"), "validate", "--lint", "--template", str(template), "--region", REGION],
        ),
        check_translation(template),
        check_events(),
    ]
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
