//! One entry of a function's least-privilege list: each function's
//! `aws_calls.rs` lists every AWS API call its code makes as these, checked
//! against the SDK call sites (`crates/dredge-aws/tests/aws_calls.rs`) and
//! against its role in `template.yaml` (`tests/python/lint_template.py`).

/// One AWS API call of a function's code.
#[derive(Debug, Clone, Copy)]
pub struct AwsCall {
    /// The API operation, as the service names it (`BatchGetItem`).
    pub operation: &'static str,
    /// The IAM action it needs: not always the operation's name
    /// (SendMessageBatch needs `sqs:SendMessage`, ListObjectsV2
    /// `s3:ListBucket`, a multipart upload `s3:PutObject`).
    pub action: &'static str,
    /// What the role grants it on, as `template.yaml` writes the ARN: a
    /// resource's logical id (its ARN), then the path after the ARN;
    /// `${Name}` is a template parameter; `*` for actions without
    /// resource-level permissions.
    pub resources: &'static [&'static str],
    /// The file, under `crates/`, where the SDK call is made.
    pub source: &'static str,
    /// Which part of the function makes it, and when.
    pub path: &'static str,
}
