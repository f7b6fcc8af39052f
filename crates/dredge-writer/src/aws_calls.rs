//! Every AWS API call the writer's code makes: the SDK operation, the IAM
//! action it needs, what it is granted on, and the code path that makes it.
//! This is the function's least-privilege list.
//!
//! Two checks keep it true:
//! - `crates/dredge-aws/tests/aws_calls.rs`: each operation is made in its
//!   `source`, and every SDK operation made anywhere in `crates/` is in some
//!   function's list or the CLI's;
//! - `tests/python/lint_template.py`: `WriterFunction`'s role in
//!   `template.yaml` allows exactly these actions on these resources, no
//!   more (an over-grant) and no fewer (an AccessDenied in production).
//!
//! Not listed: what the Lambda service itself does with the function's role
//! (reading the enriched stream for the event source mapping, sending
//! skipped batches to `WriterFailureQueue`, writing the logs). SAM grants
//! those with the event source; the lint recognises them.
//!
//! The dredge-aws test includes this file (`#[path]`): it uses nothing
//! but `dredge_lambda`, which that crate depends on too.

use dredge_lambda::AwsCall;

/// The writer's calls, all through `S3Objects` (dredge-aws s3.rs): staged
/// objects under `staging/{DATA_PREFIX}/`, final objects and manifests under
/// `{DATA_PREFIX}/` (layout.rs).
pub const AWS_CALLS: &[AwsCall] = &[
    AwsCall {
        operation: "PutObject",
        action: "s3:PutObject",
        resources: &["DataBucket/staging/${DataPrefix}/*"],
        source: "dredge-aws/src/s3.rs",
        path: "staging: one Parquet object per hour of a batch (stage.rs)",
    },
    AwsCall {
        operation: "PutObject",
        action: "s3:PutObject",
        // The writer's DEAD_LETTER_PREFIX (default `rejected`) plus `writer/`.
        resources: &["DeadLetterBucket/rejected/writer/*"],
        source: "dredge-aws/src/s3.rs",
        path: "staging: the batch's rejected lines (stage.rs)",
    },
    AwsCall {
        operation: "PutObject",
        action: "s3:PutObject",
        resources: &["DataBucket/${DataPrefix}/*"],
        source: "dredge-aws/src/s3.rs",
        path: "compaction: the hour's _manifest.json (compact.rs)",
    },
    AwsCall {
        operation: "CreateMultipartUpload",
        action: "s3:PutObject",
        resources: &["DataBucket/${DataPrefix}/*"],
        source: "dredge-aws/src/s3.rs",
        path: "compaction: a final object, written as it fills (final_object.rs)",
    },
    AwsCall {
        operation: "UploadPart",
        action: "s3:PutObject",
        resources: &["DataBucket/${DataPrefix}/*"],
        source: "dredge-aws/src/s3.rs",
        path: "compaction: a final object's parts (final_object.rs)",
    },
    AwsCall {
        operation: "CompleteMultipartUpload",
        action: "s3:PutObject",
        resources: &["DataBucket/${DataPrefix}/*"],
        source: "dredge-aws/src/s3.rs",
        path: "compaction: a final object, closed (final_object.rs)",
    },
    AwsCall {
        operation: "AbortMultipartUpload",
        action: "s3:AbortMultipartUpload",
        resources: &["DataBucket/${DataPrefix}/*"],
        source: "dredge-aws/src/s3.rs",
        path: "compaction: the final object in the making when a pass fails (final_object.rs)",
    },
    AwsCall {
        operation: "GetObject",
        action: "s3:GetObject",
        resources: &["DataBucket/staging/${DataPrefix}/*", "DataBucket/${DataPrefix}/*"],
        source: "dredge-aws/src/s3.rs",
        path: "compaction: the staged objects it merges, the hour's final objects (their flow ids) and manifest \
               (compact.rs)",
    },
    AwsCall {
        operation: "DeleteObject",
        action: "s3:DeleteObject",
        resources: &["DataBucket/staging/${DataPrefix}/*", "DataBucket/${DataPrefix}/*"],
        source: "dredge-aws/src/s3.rs",
        path: "compaction: the staged objects merged, final objects no manifest lists (a run that died) \
               (compact.rs)",
    },
    AwsCall {
        operation: "ListObjectsV2",
        action: "s3:ListBucket",
        resources: &["DataBucket"],
        source: "dredge-aws/src/s3.rs",
        path: "compaction: the staged objects, and an hour's final objects (compact.rs); the role narrows it to \
               the two prefixes with an s3:prefix condition",
    },
];
