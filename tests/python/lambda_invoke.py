"""The real Lambda binaries, run by `cargo lambda watch` (a Lambda Runtime
API emulator, no Docker) and invoked with `cargo lambda invoke` on the
sample events in events/, against the moto server named by AWS_ENDPOINT_URL.

Checks what a deployed function would do: configuration from the
environment, SDK clients against real HTTP APIs, the handler's response,
and the records and objects it wrote. Prints `N passed, M failed` and exits
non-zero on any failure.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3

import sam_local

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DREDGE = ROOT / "target" / "debug" / "dredge"


DOCKER_ENDPOINT = "http://host.docker.internal:5000"
BINARIES = {"EnricherFunction": "dredge-enricher", "OwnershipFunction": "dredge-ownership",
            "WriterFunction": "dredge-writer"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, **kw)


def main():
    if not os.environ.get("AWS_ENDPOINT_URL"):
        print("lambda_invoke: AWS_ENDPOINT_URL is not set (run through scripts/test)", file=sys.stderr)
        return 1
    # The environment `sam local invoke --env-vars env.json` would give each
    # function, with env.json's Docker-side endpoint replaced by this moto;
    # the resources it names are made by scripts/local_aws.py, as README says.
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    doc = sam_local.env_json()
    functions = sam_local.functions()
    locals_ = {name: {k: v.replace(DOCKER_ENDPOINT, endpoint) for k, v in sam_local.local_environment(fn, doc).items()}
               for name, fn in functions.items()}
    # Only the function's own variables, not another's nor the shell's: one
    # leaking in (the enricher's DEAD_LETTER_PREFIX into the writer) would
    # test a configuration no deployment has.
    declared = set().union(*locals_.values())
    base = {k: v for k, v in os.environ.items() if k not in declared}
    envs = {}
    for name, local in locals_.items():
        if "IP_RANGES" in local:
            local["IP_RANGES"] = os.environ.get("DREDGE_IP_RANGES", local["IP_RANGES"])
        envs[BINARIES[name]] = {**base, **local}
    enricher_env, writer_env = envs["dredge-enricher"], envs["dredge-writer"]
    table, stream, bucket = enricher_env["OWNERSHIP_TABLE"], enricher_env["ENRICHED_STREAM"], enricher_env["DEAD_LETTER_BUCKET"]
    data_bucket = writer_env["DATA_BUCKET"]
    kinesis, s3 = boto3.client("kinesis"), boto3.client("s3")
    # The same feature set as `cargo test --workspace` (dev-dependencies on), so
    # nothing already built for the tests is compiled again.
    run(["cargo", "build", "--quiet", "--workspace", "--bins", "--tests"])
    # Two snapshots: the fleet as of 2026-11-01, and the same fleet seen
    # again after the sample flows (2026-11-18T11:06:40Z), which vouches
    # for its owners at the flows' time (the knowledge horizon).
    run([sys.executable, str(ROOT / "scripts" / "local_aws.py"), "--snapshot", "--no-build"])

    # One emulator per function, each with that function's environment
    # only, as Lambda (and sam local) give it.
    watchers = {}
    log = open(ROOT / "target" / "cargo-lambda-watch.log", "w")
    for binary, env in envs.items():
        port = free_port()
        watchers[binary] = (port, subprocess.Popen(
            [str(VENV_BIN / "cargo-lambda"), "lambda", "watch", "-A", "127.0.0.1", "-P", str(port), "--ignore-changes"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")

    def invoke(function, event):
        port = watchers[function][0]
        out = run([str(VENV_BIN / "cargo-lambda"), "lambda", "invoke", function, "-A", "127.0.0.1", "-P", str(port),
                   "--data-file", str(ROOT / event)], timeout=600)
        return json.loads(out.stdout)

    try:
        for port, _ in watchers.values():
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
        response = invoke("dredge-enricher", "events/enricher/kinesis-flow-logs.json")
        check("enricher answers with no batch item failures", response == {"batchItemFailures": []}, str(response))

        shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator)["Records"]
        # Record data is zstd by default: read it as every consumer does, with
        # dredge_core's reader (behind `dredge stream decode`).
        def decode(data):
            return subprocess.run([str(DREDGE), "stream", "decode"], input=data, capture_output=True,
                                  check=True).stdout.decode()

        lines = [json.loads(l) for r in records for l in decode(r["Data"]).splitlines()]
        check("enricher wrote six enriched records", len(lines) == 6, f"{len(lines)} lines")
        check("records are zstd", all(r["Data"][:4] == b"\x28\xb5\x2f\xfd" for r in records), str(records[:1]))
        check("every record has a flow_id", all(l.get("flow_id", "").startswith("shardId-") for l in lines),
              str([l.get("flow_id") for l in lines]))
        nlb = [l for l in lines if l.get("dstaddr") == "10.20.4.10"]
        check("api -> load balancer attributed from DynamoDB",
              bool(nlb) and nlb[0].get("src_app") == "api" and nlb[0].get("dst_kind") == "load_balancer", str(nlb))
        objects = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        check("the rejected line is in the dead-letter bucket", len(objects) == 1, str(objects))

        response = invoke("dredge-writer", "events/writer/kinesis-enriched.json")
        check("writer answers with no batch item failures", response == {"batchItemFailures": []}, str(response))
        staged = [o["Key"] for o in s3.list_objects_v2(Bucket=data_bucket).get("Contents", [])]
        check("writer staged one object for the hour",
              staged == ["staging/flows/dt=2026-11-18/hour=11/"
                         "shardId-000000000000_49600000000000000000_49600000000000000000.parquet"], str(staged))
        stats = invoke("dredge-writer", "events/writer/compact.json")
        check("writer compacts the hour", stats.get("hours_compacted") == 1 and stats.get("rows_written") == 6,
              str(stats))
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=data_bucket).get("Contents", []))
        hour = "flows/dt=2026-11-18/hour=11/"
        check("one final object and its manifest, nothing staged",
              len(keys) == 2 and keys[0] == hour + "_manifest.json" and keys[1].startswith(hour + "part-"), str(keys))

        summary = invoke("dredge-ownership", "events/ownership/run-instances.json")
        check("ownership applies RunInstances", summary.get("result") == "applied"
              and summary.get("stats", {}).get("opened") == 5, str(summary))
        summary = invoke("dredge-ownership", "events/ownership/run-instances-error.json")
        check("ownership ignores a failed call", summary.get("result") == "ignored", str(summary))
        owner = json.loads(run([str(DREDGE), "ownership", "--table", table, "lookup", "10.20.1.15",
                                "--at", "2026-11-05T00:00:00Z", "--scope", "vpc-0a1b2c3d4e5f60789"]).stdout)
        check("the table answers for the launched instance", owner and owner.get("app") == "api", str(owner))
    except subprocess.CalledProcessError as e:
        check(f"command {e.cmd}", False, e.stderr[-2000:] if e.stderr else "")
    finally:
        for _, watch in watchers.values():
            watch.terminate()
        for _, watch in watchers.values():
            try:
                watch.wait(timeout=10)
            except subprocess.TimeoutExpired:
                watch.kill()
        log.close()
    passed, failed = results.count(True), results.count(False)
    print(f"lambda_invoke: {passed} passed, {failed} failed")
    if failed:
        print((ROOT / "target" / "cargo-lambda-watch.log").read_text()[-4000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
