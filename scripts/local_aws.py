"""Creates, at a local AWS endpoint (moto), the resources env.json names, so
that `sam local invoke --env-vars env.json` has a table to read and
streams, buckets and a queue to write to. Safe to run again.

    .venv/bin/moto_server -H 0.0.0.0 -p 5000 &
    AWS_ENDPOINT_URL=http://127.0.0.1:5000 .venv/bin/python scripts/local_aws.py [--snapshot]

--snapshot also imports samples/ec2-describe into the table (twice, as
scripts/run-local does) so the enricher's sample event finds its owners.

It refuses an endpoint that is not loopback or host.docker.internal: it is
meant for emulators, never for a real account.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "host.docker.internal"}
REGION = "us-east-1"
# As in scripts/run-local: the fleet before, and seen again after, the sample flows.
SNAPSHOT_TIMES = ("2026-11-01T00:00:00Z", "2026-11-18T12:00:00Z")


def read_env_json(path=ROOT / "env.json"):
    return json.loads(Path(path).read_text())


def overrides(doc, name):
    """env.json's values for one function, composed as `sam local` does:
    "Parameters" for every function, the function's own entry on top.
    (Also read by tests/python/sam_local.py and scripts/cold-start.)"""
    return {**doc.get("Parameters", {}), **doc.get(name, {})}


def env_json():
    """Every function's variables from env.json, as sam local gives them."""
    doc = read_env_json()
    return {name: overrides(doc, name) for name in doc if name != "Parameters"}


def resources(functions):
    names = {"table": set(), "streams": set(), "buckets": set(), "queues": set()}
    for variables in functions.values():
        for key, value in variables.items():
            if not value:
                continue
            if key == "OWNERSHIP_TABLE":
                names["table"].add(value)
            elif key.endswith("_STREAM"):
                names["streams"].add(value)
            elif key.endswith("_BUCKET"):
                names["buckets"].add(value)
            elif key.endswith("_QUEUE_URL"):
                names["queues"].add(value.rstrip("/").rsplit("/", 1)[-1])
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshot", action="store_true", help="import samples/ec2-describe into the table")
    parser.add_argument("--no-build", action="store_true", help="use target/debug/dredge as it is")
    args = parser.parse_args()

    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    if urlparse(endpoint).hostname not in LOCAL_HOSTS:
        sys.exit(f"local_aws: {endpoint} is not a local endpoint; this script only sets up emulators")
    # The region samconfig.toml gives sam local: moto keeps tables,
    # streams and queues per region.
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_SESSION_TOKEN="testing", AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
               AWS_EC2_METADATA_DISABLED="true")
    env.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(env)
    import boto3  # after the environment is set: boto3 reads AWS_ENDPOINT_URL

    names = resources(env_json())
    kinesis, s3, sqs = boto3.client("kinesis"), boto3.client("s3"), boto3.client("sqs")
    existing = {name for page in kinesis.get_paginator("list_streams").paginate() for name in page["StreamNames"]}
    for stream in sorted(names["streams"] - existing):
        kinesis.create_stream(StreamName=stream, ShardCount=1)
    for bucket in sorted(names["buckets"]):
        s3.create_bucket(Bucket=bucket)  # moto answers an existing own bucket with success
    for queue in sorted(names["queues"]):
        sqs.create_queue(QueueName=queue)

    dredge = ROOT / "target" / "debug" / "dredge"
    if not args.no_build:
        subprocess.run(["cargo", "build", "--quiet", "-p", "dredge-cli"], cwd=ROOT, check=True)
    for table in sorted(names["table"]):
        listed = {name for page in boto3.client("dynamodb").get_paginator("list_tables").paginate()
                  for name in page["TableNames"]}
        if table not in listed:
            subprocess.run([str(dredge), "ownership", "--table", table, "create-table"], check=True, env=env,
                           stdout=subprocess.DEVNULL)
        if args.snapshot:
            snapshot = ROOT / "samples" / "ec2-describe"
            for at in SNAPSHOT_TIMES:
                subprocess.run([str(dredge), "ownership", "--table", table, "import",
                                str(snapshot / "describe-network-interfaces.json"),
                                str(snapshot / "describe-instances.json"), "--at", at],
                               check=True, env=env, stdout=subprocess.DEVNULL)
    print(json.dumps({"endpoint": endpoint, **{k: sorted(v) for k, v in names.items()}}))


if __name__ == "__main__":
    main()
