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
import uuid
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
DREDGE = ROOT / "target" / "debug" / "dredge"


SNAPSHOTS = ("2026-11-01T00:00:00Z", "2026-11-18T12:00:00Z")


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
    suffix = uuid.uuid4().hex[:8]
    table, stream, bucket = f"own-{suffix}", f"enriched-{suffix}", f"dead-{suffix}"
    data_bucket = f"data-{suffix}"
    kinesis, s3 = boto3.client("kinesis"), boto3.client("s3")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=data_bucket)
    # The same feature set as `cargo test --workspace` (dev-dependencies on), so
    # nothing already built for the tests is compiled again.
    run(["cargo", "build", "--quiet", "--workspace", "--bins", "--tests"])
    run([str(DREDGE), "ownership", "--table", table, "create-table"])
    snapshot = ROOT / "samples/ec2-describe"
    # Two snapshots: the fleet as of 2026-11-01, and the same fleet seen
    # again after the sample flows (2026-11-18T11:06:40Z), which vouches
    # for its owners at the flows' time (the knowledge horizon).
    for at in SNAPSHOTS:
        run([str(DREDGE), "ownership", "--table", table, "import",
             str(snapshot / "describe-network-interfaces.json"), str(snapshot / "describe-instances.json"),
             "--at", at])

    port = free_port()
    env = dict(os.environ, OWNERSHIP_TABLE=table, ENRICHED_STREAM=stream, DEAD_LETTER_BUCKET=bucket,
               DATA_BUCKET=data_bucket, IP_RANGES=os.environ.get("DREDGE_IP_RANGES", ""))
    log = open(ROOT / "target" / "cargo-lambda-watch.log", "w")
    watch = subprocess.Popen([str(VENV_BIN / "cargo-lambda"), "lambda", "watch", "-A", "127.0.0.1", "-P", str(port),
                              "--ignore-changes"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")

    def invoke(function, event):
        out = run([str(VENV_BIN / "cargo-lambda"), "lambda", "invoke", function, "-A", "127.0.0.1", "-P", str(port),
                   "--data-file", str(ROOT / event)], timeout=600)
        return json.loads(out.stdout)

    try:
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
        watch.terminate()
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
