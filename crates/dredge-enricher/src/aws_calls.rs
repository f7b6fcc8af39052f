//! Every AWS API call the enricher's code makes: the SDK operation, the IAM
//! action it needs, what it is granted on, and the code path that makes it.
//! This is the function's least-privilege list.
//!
//! Two checks keep it true:
//! - `crates/dredge-aws/tests/aws_calls.rs`: each operation is made in its
//!   `source`, and every SDK operation made anywhere in `crates/` is in some
//!   function's list or the CLI's;
//! - `tests/python/lint_template.py`: `EnricherFunction`'s role in
//!   `template.yaml` allows exactly these actions on these resources, no
//!   more (an over-grant) and no fewer (an AccessDenied in production).
//!
//! Not listed: what the Lambda service itself does with the function's role
//! (reading the flow-log stream and the retry queue for the event source
//! mappings, sending skipped batches to `EnricherFailureQueue`, writing the
//! logs). SAM grants those with the event sources; the lint recognises them.
//!
//! The dredge-aws test includes this file (`#[path]`): it uses nothing
//! but `dredge_lambda`, which that crate depends on too.

use dredge_lambda::AwsCall;

/// The enricher's calls.
pub const AWS_CALLS: &[AwsCall] = &[
    AwsCall {
        operation: "BatchGetItem",
        action: "dynamodb:BatchGetItem",
        resources: &["OwnershipTable"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "lookups: the owner cache reads the heads of a batch's addresses (DynamoOwnershipStore::heads and \
               ::lookup, dredge-core ownership/cache.rs), and the ENI records of logging interfaces it has not \
               cached (::enis_by_id, handler.rs)",
    },
    AwsCall {
        operation: "Query",
        action: "dynamodb:Query",
        resources: &["OwnershipTable"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "lookups at a time older than an address's head: its mark items, newest first \
               (DynamoOwnershipStore::lookup, dredge-aws ownership/heads.rs resolve_from_history)",
    },
    AwsCall {
        operation: "GetItem",
        action: "dynamodb:GetItem",
        resources: &["OwnershipTable"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "the reconcile horizon, once per batch (DynamoOwnershipStore::reconciled, handler.rs)",
    },
    AwsCall {
        operation: "UpdateItem",
        action: "dynamodb:UpdateItem",
        resources: &["OwnershipTable"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "heartbeats: a conditional SET seen#... on an address's head (DynamoOwnershipStore::put_seen, \
               handler.rs)",
    },
    AwsCall {
        operation: "PutRecords",
        action: "kinesis:PutRecords",
        resources: &["EnrichedStream"],
        source: "dredge-aws/src/kinesis.rs",
        path: "enriched records to ENRICHED_STREAM (KinesisSink, output.rs delivery)",
    },
    AwsCall {
        operation: "PutObject",
        action: "s3:PutObject",
        // DEAD_LETTER_PREFIX, as the template sets it for the enricher.
        resources: &["DeadLetterBucket/rejected/enricher/*"],
        source: "dredge-aws/src/s3.rs",
        path: "dead letters: one object per batch with rejects, under DEAD_LETTER_PREFIX (S3Objects, handler.rs \
               keep_rejects)",
    },
    AwsCall {
        operation: "SendMessageBatch",
        action: "sqs:SendMessage",
        resources: &["RetryQueue"],
        source: "dredge-aws/src/sqs.rs",
        path: "the second chance: deferred flows, delayed, to RETRY_QUEUE_URL (SqsQueue, second_chance.rs)",
    },
    AwsCall {
        operation: "GetObject",
        action: "s3:GetObject",
        resources: &["${IpRangesS3Uri}"],
        source: "dredge-aws/src/s3.rs",
        path: "ip-ranges.json at cold start, when IP_RANGES is an s3:// URI (S3Objects, ranges.rs load); an \
               https:// URL is fetched without AWS",
    },
];
