"""Checks env.json and the README's `sam local invoke` commands, which
cannot run here (sam local needs Docker), by SAM CLI's own code:

1. the environment each function would get from `sam local invoke
   --env-vars env.json` (SAM CLI's template provider and variable
   resolution): env.json sets only variables the template declares (sam
   local silently ignores the rest), AWS_ENDPOINT_URL points at a local
   emulator, and every variable the template fills from a resource (empty
   under sam local) is set by env.json on purpose;
2. the README gives the exact `sam local invoke` command for every Lambda
   event in events/, with the function that takes it.

`local_environment()` is also what tests/python/lambda_invoke.py runs the
real binaries with. Prints one line per check; exits non-zero on failure.
"""

import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "host.docker.internal"}
# Which function takes the events under each folder of events/.
EVENT_FOLDERS = {"enricher": "EnricherFunction", "ownership": "OwnershipFunction", "writer": "WriterFunction"}


def functions(template=ROOT / "template.yaml"):
    """The template's functions as SAM CLI's local commands read them."""
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    stacks, _ = SamLocalStackProvider.get_stacks(str(template), parameter_overrides={})
    return {f.name: f for f in SamFunctionProvider(stacks).get_all()}


def env_json(path=ROOT / "env.json"):
    return json.loads(Path(path).read_text())


def overrides(doc, name):
    """env.json's values for one function, composed as `sam local` does:
    "Parameters" for every function, the function's own entry on top."""
    return {**doc.get("Parameters", {}), **doc.get(name, {})}


def local_environment(function, doc):
    """The function's variables under `sam local invoke --env-vars env.json`
    (the AWS_* runtime variables and credentials left out)."""
    from samcli.local.lambdafn.env_vars import EnvironmentVariables

    declared = (function.environment or {}).get("Variables", {})
    resolved = EnvironmentVariables(function.name, function.memory, function.timeout, function.handler,
                                    variables=declared, override_values=overrides(doc, function.name),
                                    shell_env_values={}).resolve()
    return {k: v for k, v in resolved.items() if k in declared}


def check_env_json(fns, doc, check):
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
        # Values that are intrinsics (!Ref of a resource, !GetAtt) are blank
        # under sam local: env.json must say what they are, even if empty.
        unresolved = sorted(k for k, v in declared.items()
                            if (v is None or isinstance(v, (dict, list))) and k not in overrides(doc, name))
        check(f"{name}: env.json sets every variable the template fills from a resource", not unresolved,
              str(unresolved))
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
    check_env_json(functions(), env_json(), check)
    check_readme(check)
    failed = results.count(False)
    print(f"sam_local: {results.count(True)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
