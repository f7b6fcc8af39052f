"""Checks env.json and the README's `sam local invoke` commands, which
cannot run here (sam local needs Docker), by SAM CLI's own code:

1. the environment each function would get from `sam local invoke
   --env-vars env.json` (SAM CLI's template provider and variable
   resolution): env.json sets only variables the template declares (sam
   local silently ignores the rest), AWS_ENDPOINT_URL points at a local
   emulator, and every variable the template fills from a resource (under
   sam local a logical id or a made-up ARN) is set by env.json;
2. the README gives the exact `sam local invoke` command for every Lambda
   event in events/, with the function that takes it.

`local_environment()` is also what tests/python/lambda_invoke.py runs the
real binaries with. Prints one line per check; exits non-zero on failure.
"""

import os
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from local_aws import LOCAL_HOSTS, overrides, read_env_json  # noqa: E402  (env.json's one reader)

# Which function takes the events under each folder of events/.
EVENT_FOLDERS = {"enricher": "EnricherFunction", "ownership": "OwnershipFunction", "writer": "WriterFunction"}


def functions(template=ROOT / "template.yaml"):
    """The template's functions as SAM CLI's local commands read them."""
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    stacks, _ = SamLocalStackProvider.get_stacks(str(template), parameter_overrides={})
    return {f.name: f for f in SamFunctionProvider(stacks).get_all()}


def env_json(path=ROOT / "env.json"):
    return read_env_json(path)


def local_environment(function, doc):
    """The function's variables under `sam local invoke --env-vars env.json`
    (the AWS_* runtime variables and credentials left out)."""
    from samcli.local.lambdafn.env_vars import EnvironmentVariables

    declared = (function.environment or {}).get("Variables", {})
    resolved = EnvironmentVariables(function.name, function.memory, function.timeout, function.handler,
                                    variables=declared, override_values=overrides(doc, function.name),
                                    shell_env_values={}).resolve()
    return {k: v for k, v in resolved.items() if k in declared}


def raw_template(path=ROOT / "template.yaml"):
    from samcli.yamlhelper import yaml_parse

    return yaml_parse(Path(path).read_text())


def raw_variables(template, name):
    """A function's variables as the template writes them (Globals first),
    intrinsics unresolved."""
    globals_ = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = template["Resources"][name].get("Properties", {}).get("Environment", {}).get("Variables", {})
    return {**globals_, **own}


def refers_to_resource(value, resources):
    """Whether an intrinsic's value comes from one of the stack's resources
    (a Ref or GetAtt of it, or a Sub naming it), not from a parameter."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"] in resources
        if "Fn::GetAtt" in value:
            return True
        if "Fn::Sub" in value:
            text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
            named = re.findall(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z.]+)?\}", text)
            return any(n in resources for n in named) or refers_to_resource(value["Fn::Sub"], resources)
        return any(refers_to_resource(v, resources) for v in value.values())
    if isinstance(value, list):
        return any(refers_to_resource(v, resources) for v in value)
    return False


def check_env_json(fns, doc, check, template):
    unknown = sorted(set(doc) - set(fns) - {"Parameters"})
    check("env.json names only the template's functions", not unknown, str(unknown))
    check("env.json has an entry for every function", set(fns) <= set(doc), str(sorted(set(fns) - set(doc))))
    declared_anywhere = set()
    for name, fn in sorted(fns.items()):
        declared = (fn.environment or {}).get("Variables", {})
        declared_anywhere |= set(declared)
        ignored = sorted(set(doc.get(name, {})) - set(declared))
        check(f"{name}: every env.json variable is declared by the template (sam local ignores others)",
              not ignored, str(ignored))
        env = local_environment(fn, doc)
        endpoint = env.get("AWS_ENDPOINT_URL", "")
        check(f"{name}: AWS_ENDPOINT_URL points at a local emulator",
              urlparse(endpoint).hostname in LOCAL_HOSTS, repr(endpoint))
        # sam local turns `!Ref Resource` into the logical id and `!GetAtt`
        # into a made-up ARN: a function given those would look for a
        # queue called "RetryQueue". env.json must say what they are.
        from_resources = sorted(k for k, v in raw_variables(template, name).items()
                                if refers_to_resource(v, template["Resources"]) and k not in overrides(doc, name))
        check(f"{name}: env.json sets every variable the template fills from a resource", not from_resources,
              str(from_resources))
    stray = sorted(set(doc.get("Parameters", {})) - declared_anywhere)
    check("env.json's shared Parameters are all declared by some function", not stray, str(stray))


def check_readme(check):
    readme = (ROOT / "README.md").read_text()
    commands = set(re.findall(r"sam local invoke (\w+) (?:--env-vars env\.json )?-e (events/\S+\.json)", readme))
    for event in sorted((ROOT / "events").rglob("*.json")):
        rel = event.relative_to(ROOT).as_posix()
        function = EVENT_FOLDERS.get(event.relative_to(ROOT / "events").parts[0])
        check(f"README: sam local invoke {function} -e {rel}", (function, rel) in commands,
              "missing from README.md")
    listed = {e for _, e in commands}
    missing = sorted(e for e in listed if not (ROOT / e).is_file())
    check("README's sam local commands name existing events", not missing, str(missing))


def main():
    results = []

    def check(name, ok, detail=""):
        results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")

    os.environ.setdefault("SAM_CLI_TELEMETRY", "0")
    check_env_json(functions(), env_json(), check, raw_template())
    check_readme(check)
    failed = results.count(False)
    print(f"sam_local: {results.count(True)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
