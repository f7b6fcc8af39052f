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
4. Least privilege: each function's role, as translated, allows exactly the
   (IAM action, resource) pairs its code calls, as listed in
   `crates/dredge-<function>/src/aws_calls.rs` (a Rust test holds those
   lists to the SDK call sites). An action the role allows that no code path
   calls fails, and so does a listed call the role lacks (an AccessDenied in
   production). What SAM grants for the Lambda service itself (its managed
   execution policies for logs and the Kinesis and SQS event source
   mappings; sqs:SendMessage to an on-failure destination) is recognised as
   the service's and reported, not counted against the code. The check is
   then run on deliberately broken copies of the template, and must fail on
   each.
5. The dashboard's body is JSON once its ${...} are substituted, and every
   Dredge metric an alarm or the dashboard reads is one the function's crate
   emits (`.count("Name", ...)` or `.metric("Name", ...)`).
6. Every Lambda invoke event under `events/<function>/` (what
   `sam local invoke --event` and `dredge invoke` take) is JSON of a kind
   its function is invoked with: Kinesis (`Records[].kinesis`), SQS
   (`Records[].body`), EventBridge (`detail-type`, `source`, `detail`), or
   the function's own payloads (`{"reconcile": true}`, `{"compact": true}`).
7. README.md's `### Parameters` table names exactly the template's
   parameters.

Exits non-zero on any finding (warnings included). Run it with the project's
virtual environment (`.venv/bin/python`), which has cfn-lint and the SAM CLI.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
import re
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
    # Its usage metrics are never published here: no warning about them.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
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


# ---- Least privilege ------------------------------------------------------

# Managed policies SAM attaches for the Lambda service itself, and the
# event source type that needs each (None: every function).
SERVICE_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": (None, "the Lambda service writes the function's logs"),
    "AWSLambdaKinesisExecutionRole": ("Kinesis", "the Kinesis event source mapping reads the stream"),
    "AWSLambdaSQSQueueExecutionRole": ("SQS", "the SQS event source mapping receives and deletes messages"),
}

AWS_CALL_FIELDS = re.compile(
    r'operation:\s*"([^"]+)",\s*action:\s*"([^"]+)",\s*resources:\s*&\[([^\]]*)\]', re.S
)


def aws_calls(path: Path) -> list[dict]:
    """The `AWS_CALLS` const of an aws_calls.rs: operation, action, resources."""
    text = path.read_text()
    const = text[text.index("pub const AWS_CALLS"):]
    const = re.sub(r"(?m)^\s*//.*$", "", const)
    calls = [
        {"operation": op, "action": action, "resources": re.findall(r'"([^"]*)"', resources)}
        for op, action, resources in AWS_CALL_FIELDS.findall(const)
    ]
    written = len(re.findall(r"\bAwsCall\s*\{", const))
    if written != len(calls):
        raise ValueError(f"{path}: read {len(calls)} of {written} AwsCall entries (fields out of order?)")
    return calls


def references(expr) -> set[str]:
    """The parameters and resources an intrinsic expression refers to."""
    if isinstance(expr, dict):
        if "Ref" in expr:
            return {expr["Ref"]}
        if "Fn::GetAtt" in expr:
            target = expr["Fn::GetAtt"]
            return {target[0] if isinstance(target, list) else target.split(".")[0]}
        if "Fn::Sub" in expr:
            sub = expr["Fn::Sub"]
            text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
            names = {n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", text) if not n.startswith("AWS::")}
            found = set()
            for name in names:
                found |= references(variables[name]) if name in variables else {name}
            return found
        return set().union(*(references(v) for v in expr.values()))
    if isinstance(expr, list):
        return set().union(*(references(v) for v in expr)) if expr else set()
    return set()


def resource_name(expr) -> str:
    """A statement's resource as aws_calls.rs writes it: a resource's ARN as
    its logical id, then the path after the ARN; ${Name} for a parameter."""
    if isinstance(expr, str):
        return expr
    if isinstance(expr, dict) and "Fn::GetAtt" in expr:
        target = expr["Fn::GetAtt"]
        name, attribute = target if isinstance(target, list) else target.split(".", 1)
        return name if attribute == "Arn" else f"{name}.{attribute}"
    if isinstance(expr, dict) and "Fn::Sub" in expr:
        sub = expr["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.endswith(".Arn"):
                return name[: -len(".Arn")]
            if name in variables:
                value = variables[name]
                return value if isinstance(value, str) else "${" + "+".join(sorted(references(value))) + "}"
            return match.group(0)

        text = re.sub(r"\$\{([^}!]+)\}", replace, text)
        # An object ARN built from a parameter: arn:...:s3:::${Param}.
        return re.sub(r"^arn:\$\{AWS::Partition\}:s3:::", "", text)
    if isinstance(expr, dict) and "Ref" in expr:
        return "${" + expr["Ref"] + "}"
    return json.dumps(expr, sort_keys=True)


def statements(document: dict) -> list:
    """A policy's statements, both branches of every Fn::If (a grant under a
    condition is a grant), AWS::NoValue dropped."""
    found = []

    def walk(item):
        if isinstance(item, dict) and "Fn::If" in item:
            for branch in item["Fn::If"][1:]:
                walk(branch)
        elif isinstance(item, dict) and item.get("Ref") == "AWS::NoValue":
            return
        elif isinstance(item, list):
            for each in item:
                walk(each)
        else:
            found.append(item)

    walk(document.get("Statement", []))
    return found


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def destinations(function: dict) -> list:
    """Where the Lambda service sends a function's failures: its event
    sources' and its EventInvokeConfig's destinations."""
    properties = function.get("Properties", {})
    configs = [e.get("Properties", {}).get("DestinationConfig", {}) for e in properties.get("Events", {}).values()]
    configs.append(properties.get("EventInvokeConfig", {}).get("DestinationConfig", {}))
    return [
        config[kind]["Destination"]
        for config in configs
        for kind in ("OnFailure", "OnSuccess")
        if isinstance(config.get(kind), dict) and "Destination" in config[kind]
    ]


def role_findings(name: str, function: dict, role: dict, calls: list[dict]) -> tuple[list[str], list[str]]:
    """(findings, what was recognised as the Lambda service's) for one
    function's translated role."""
    findings, service = [], []
    event_types = {e.get("Type") for e in function.get("Properties", {}).get("Events", {}).values()}
    for arn in role["Properties"].get("ManagedPolicyArns", []):
        text = arn if isinstance(arn, str) else json.dumps(arn)
        policy = text.rsplit("/", 1)[-1].strip('"}')
        needs = SERVICE_MANAGED_POLICIES.get(policy)
        if needs is None:
            findings.append(f"managed policy {text}: not one SAM attaches for the Lambda service, so not checkable")
        elif needs[0] is not None and needs[0] not in event_types:
            findings.append(f"managed policy {policy}: for a {needs[0]} event source, and the function has none")
        else:
            service.append(f"{policy} ({needs[1]})")
    service_targets = {resource_name(d) for d in destinations(function)}
    granted = set()
    for policy in role["Properties"].get("Policies", []):
        for statement in statements(policy["PolicyDocument"]):
            where = f"{policy['PolicyName']}/{statement.get('Sid', '-')}"
            if statement.get("Effect") != "Allow":
                continue  # a Deny only narrows what the rest allows
            if "NotAction" in statement or "NotResource" in statement:
                findings.append(f"{where}: NotAction/NotResource allow more than any list can say")
                continue
            actions = as_list(statement.get("Action", []))
            resources = [resource_name(r) for r in as_list(statement.get("Resource", []))]
            if actions == ["sqs:SendMessage"] and resources and set(resources) <= service_targets:
                service.append(f"sqs:SendMessage on {', '.join(resources)} (on-failure destination)")
                continue
            for action in actions:
                for resource in resources:
                    granted.add((action, resource, where))
    listed = {(a, r) for c in calls for a, r in [(c["action"], r) for r in c["resources"]]}
    for action, resource, where in sorted(granted):
        if (action, resource) not in listed:
            findings.append(f"{where} allows {action} on {resource}: no code path of {name} calls it")
    pairs = {(a, r) for a, r, _ in granted}
    for call in calls:
        for resource in call["resources"]:
            if (call["action"], resource) not in pairs:
                findings.append(
                    f"{name}'s code calls {call['operation']} ({call['action']}) on {resource}, "
                    "which its role does not allow: AccessDenied in production"
                )
    return findings, service


def least_privilege_findings(source: dict, translated: dict) -> tuple[list[str], list[str]]:
    """(findings, report lines) for every function of the template."""
    findings, report = [], []
    resources = translated.get("Resources", {})
    for name, function in source.get("Resources", {}).items():
        if function.get("Type") != "AWS::Serverless::Function":
            continue
        binary = function.get("Metadata", {}).get("BuildProperties", {}).get("Binary", "")
        calls_file = ROOT / "crates" / binary / "src" / "aws_calls.rs"
        if not calls_file.is_file():
            findings.append(f"{name}: no list of its AWS calls ({calls_file.relative_to(ROOT)})")
            continue
        if "Role" in function.get("Properties", {}):
            findings.append(f"{name}: a role of its own (Role) is not checked; give it Policies")
            continue
        role = resources.get(f"{name}Role")
        if role is None or role.get("Type") != "AWS::IAM::Role":
            findings.append(f"{name}: the translated template has no {name}Role")
            continue
        calls = aws_calls(calls_file)
        found, service = role_findings(name, function, role, calls)
        findings += found
        report.append(
            f"{name}: {len(calls)} calls ({calls_file.relative_to(ROOT)}); "
            f"the Lambda service's, granted by SAM: {'; '.join(service) or 'none'}"
        )
    return findings, report


def break_template(template: dict, mutation: str) -> dict:
    """A copy of the template with one deliberate least-privilege mistake."""
    broken = copy.deepcopy(template)
    functions = broken["Resources"]

    def statement(function: str, sid: str) -> dict:
        for policy in functions[function]["Properties"]["Policies"]:
            for each in statements(policy) if isinstance(policy, dict) and "Statement" in policy else []:
                if isinstance(each, dict) and each.get("Sid") == sid:
                    return each
        raise KeyError(f"{function} has no statement {sid}")

    if mutation == "enricher may Scan":
        statement("EnricherFunction", "ReadOwnership")["Action"].append("dynamodb:Scan")
    elif mutation == "enricher cannot defer flows":
        for policy in functions["EnricherFunction"]["Properties"]["Policies"]:
            policy["Statement"] = [s for s in policy["Statement"] if not (isinstance(s, dict) and s.get("Sid") == "DeferFlows")]
    elif mutation == "enricher may write the whole dead-letter bucket":
        statement("EnricherFunction", "DeadLetters")["Resource"] = {"Fn::Sub": "${DeadLetterBucket.Arn}/*"}
    elif mutation == "ownership gets SAM's DynamoDBCrudPolicy":
        functions["OwnershipFunction"]["Properties"]["Policies"].append(
            {"DynamoDBCrudPolicy": {"TableName": {"Ref": "OwnershipTable"}}}
        )
    elif mutation == "writer cannot list":
        for policy in functions["WriterFunction"]["Properties"]["Policies"]:
            policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "ListOwnPrefixes"]
    else:
        raise ValueError(mutation)
    return broken


BROKEN = {
    # mutation: a finding it must produce
    "enricher may Scan": "allows dynamodb:Scan on OwnershipTable",
    "enricher cannot defer flows": "calls SendMessageBatch (sqs:SendMessage) on RetryQueue",
    "enricher may write the whole dead-letter bucket": "allows s3:PutObject on DeadLetterBucket/*",
    "ownership gets SAM's DynamoDBCrudPolicy": "allows dynamodb:BatchWriteItem",
    "writer cannot list": "calls ListObjectsV2 (s3:ListBucket) on DataBucket",
}


def check_least_privilege(path: Path) -> bool:
    step = "least privilege: each role allows exactly its function's AWS calls"
    print(f"--- {step}", flush=True)
    source = load_template(path)
    try:
        findings, report = least_privilege_findings(source, translate(source))
    except Exception as error:
        print(f"{type(error).__name__}: {error}")
        print(f"FAIL {step}")
        return False
    for line in report + findings:
        print(line)
    if findings:
        print(f"FAIL {step}")
        return False
    # The check must fail where it should: on each deliberate mistake.
    missed = []
    for mutation, expected in BROKEN.items():
        try:
            broken = break_template(source, mutation)
        except (KeyError, TypeError, AttributeError) as error:
            missed.append(f"cannot make the broken copy '{mutation}' ({error}): update BROKEN")
            continue
        found, _ = least_privilege_findings(broken, translate(broken))
        if not any(expected in f for f in found):
            missed.append(f"broken copy '{mutation}': no finding with '{expected}' (found: {found})")
        else:
            print(f"caught broken copy '{mutation}': {next(f for f in found if expected in f)}")
    for line in missed:
        print(line)
    if missed:
        print(f"FAIL {step}")
        return False
    print(f"ok   {step}")
    return True


# ---- Dashboard and alarm metrics -------------------------------------------


def emitted_metrics() -> dict[str, set[str]]:
    """The EMF metrics each function's crate emits (`.count("Name", ...)`,
    `.metric("Name", ...)`), by the Function dimension it emits them under."""
    emitted = {}
    for crate in sorted((ROOT / "crates").glob("dredge-*")):
        names = set()
        for file in (crate / "src").rglob("*.rs"):
            names |= set(re.findall(r'\.(?:count|metric)\(\s*"([A-Za-z0-9]+)"', file.read_text()))
        emitted[crate.name.removeprefix("dredge-")] = names
    return emitted


def dredge_metrics(template: dict) -> list[tuple[str, str, str]]:
    """(where, Function, MetricName) of every Dredge metric an alarm or a
    dashboard of the template reads."""
    used = []
    parameters = template.get("Parameters", {})
    for name, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::CloudWatch::Alarm":
            metrics = [properties] + [m.get("MetricStat", {}).get("Metric", {}) for m in properties.get("Metrics", [])]
            for metric in metrics:
                if metric.get("Namespace") == "Dredge":
                    dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                    used.append((name, dimensions.get("Function", "?"), metric.get("MetricName", "?")))
        elif resource.get("Type") == "AWS::CloudWatch::Dashboard":
            body = properties["DashboardBody"]
            text = body["Fn::Sub"] if isinstance(body, dict) else body
            text = text if isinstance(text, str) else text[0]
            # A parameter stands for its default (numbers stay numbers);
            # anything else for a name.
            text = re.sub(
                r"\$\{([^}!]+)\}", lambda m: str(parameters.get(m.group(1), {}).get("Default", "name")), text
            )
            for widget in json.loads(text)["widgets"]:
                for metric in widget.get("properties", {}).get("metrics", []):
                    if metric and metric[0] == "Dredge":
                        fields = [f for f in metric if isinstance(f, str)]
                        dimensions = dict(zip(fields[2::2], fields[3::2]))
                        title = widget["properties"].get("title", "?")
                        used.append((f"{name} '{title}'", dimensions.get("Function", "?"), fields[1]))
    return used


def check_metrics(path: Path) -> bool:
    step = "dashboards are JSON, and alarms and dashboards read Dredge metrics the code emits"
    print(f"--- {step}", flush=True)
    try:
        used = dredge_metrics(load_template(path))
    except (ValueError, KeyError, TypeError, IndexError) as error:
        print(f"a dashboard body: {type(error).__name__}: {error}")
        print(f"FAIL {step}")
        return False
    emitted = emitted_metrics()
    bad = [
        f"{where}: Dredge {metric} (Function={function}) is not emitted by crates/dredge-{function}"
        for where, function, metric in used
        if metric not in emitted.get(function, set())
    ]
    for line in bad:
        print(line)
    if bad or not used:
        print(f"FAIL {step}" + ("" if used else ": no Dredge metric read"))
        return False
    print(f"ok   {step} ({len(used)} reads of {len({(f, m) for _, f, m in used})} metrics)")
    return True


# ---- Lambda invoke events -------------------------------------------------


def kinesis_event(event) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        return False
    for record in records:
        kinesis = record.get("kinesis") if isinstance(record, dict) else None
        if record.get("eventSource") != "aws:kinesis" or not isinstance(kinesis, dict):
            return False
        if not isinstance(kinesis.get("sequenceNumber"), str) or not isinstance(kinesis.get("data"), str):
            return False
        try:
            base64.b64decode(kinesis["data"], validate=True)
        except ValueError:
            return False
    return True


def sqs_event(event) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(
            isinstance(r, dict)
            and r.get("eventSource") == "aws:sqs"
            and isinstance(r.get("messageId"), str)
            and isinstance(r.get("body"), str)
            for r in records
        )
    )


def eventbridge_event(event) -> bool:
    return (
        isinstance(event, dict)
        and isinstance(event.get("detail-type"), str)
        and isinstance(event.get("source"), str)
        and isinstance(event.get("detail"), dict)
    )


# What each function is invoked with (its main.rs / lambda.rs).
EVENT_KINDS = {
    "enricher": {"Kinesis": kinesis_event, "SQS (retry queue)": sqs_event},
    "ownership": {
        "EventBridge": eventbridge_event,
        "reconcile payload": lambda e: isinstance(e, dict) and e.get("reconcile") is True,
    },
    "writer": {
        "Kinesis": kinesis_event,
        "compact payload": lambda e: e == {"compact": True},
    },
}


def check_events(path: Path) -> bool:
    step = "Lambda invoke events (events/<function>/) are the kinds their function takes"
    print(f"--- {step}", flush=True)
    template = load_template(path)
    binaries = {
        r.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        for r in template.get("Resources", {}).values()
        if r.get("Type") == "AWS::Serverless::Function"
    }
    files = sorted((ROOT / "events").rglob("*.json"))
    bad, kinds = [], {}
    for file in files:
        relative = file.relative_to(ROOT / "events")
        function = relative.parts[0] if len(relative.parts) > 1 else None
        if function not in EVENT_KINDS or f"dredge-{function}" not in binaries:
            bad.append(f"events/{relative}: not under the directory of a function of the template")
            continue
        try:
            event = json.loads(file.read_text())
        except (ValueError, UnicodeDecodeError) as error:
            bad.append(f"events/{relative}: not JSON: {error}")
            continue
        matched = [kind for kind, test in EVENT_KINDS[function].items() if test(event)]
        if not matched:
            bad.append(f"events/{relative}: none of what {function} takes ({', '.join(EVENT_KINDS[function])})")
            continue
        kinds[f"{function} {matched[0]}"] = kinds.get(f"{function} {matched[0]}", 0) + 1
    for line in bad:
        print(line)
    if bad or not files:
        print(f"FAIL {step}" + ("" if files else ": no event files found under events/"))
        return False
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    print(f"ok   {step} ({len(files)} files: {counts})")
    return True


# ---- README ---------------------------------------------------------------


def check_readme_parameters(path: Path) -> bool:
    step = "README.md's Parameters table names every template parameter"
    print(f"--- {step}", flush=True)
    parameters = set(load_template(path).get("Parameters", {}))
    readme = (ROOT / "README.md").read_text()
    heading = readme.find("\n### Parameters\n")
    if heading < 0:
        print(f"FAIL {step}: README.md has no '### Parameters' section")
        return False
    section = readme[heading + 1 :]
    following = re.search(r"\n#{2,3} ", section)
    section = section[: following.start()] if following else section
    documented = set(re.findall(r"(?m)^\| `([A-Za-z0-9]+)` \|", section))
    missing, extra = sorted(parameters - documented), sorted(documented - parameters)
    for name in missing:
        print(f"{name}: a template parameter the table lacks")
    for name in extra:
        print(f"{name}: in the table, not a template parameter")
    if missing or extra:
        print(f"FAIL {step}")
        return False
    print(f"ok   {step} ({len(parameters)})")
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
        check_least_privilege(template),
        check_metrics(template),
        check_events(template),
        check_readme_parameters(template),
    ]
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
