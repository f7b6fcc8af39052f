//! Every AWS API call the ownership function's code makes: the SDK
//! operation, the IAM action it needs, what it is granted on, and the code
//! path that makes it. This is the function's least-privilege list.
//!
//! Two checks keep it true:
//! - `crates/dredge-aws/tests/aws_calls.rs`: each operation is made in its
//!   `source`, and every SDK operation made anywhere in `crates/` is in some
//!   function's list or the CLI's;
//! - `tests/python/lint_template.py`: `OwnershipFunction`'s role in
//!   `template.yaml` allows exactly these actions on these resources, no
//!   more (an over-grant) and no fewer (an AccessDenied in production).
//!
//! Not listed: what the Lambda service itself does with the function's role
//! (sending failed invocations to `OwnershipDeadLetterQueue`, the
//! on-failure destination; writing the logs). SAM grants those; the lint
//! recognises them. EventBridge delivers to the dead-letter queue under the
//! queue's own policy, not this role.
//!
//! The dredge-aws test includes this file (`#[path]`): it uses nothing
//! but `dredge_lambda`, which that crate depends on too.

use dredge_lambda::AwsCall;

/// The ownership function's calls: the applier and the reconcile
/// (dredge-core ownership/apply.rs) on `DynamoOwnershipStore`, and the EC2
/// describer.
pub const AWS_CALLS: &[AwsCall] = &[
    AwsCall {
        operation: "GetItem",
        action: "dynamodb:GetItem",
        resources: &["OwnershipTable"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "ENI records by id and through attachment and association aliases, instance records and notes \
               (DynamoOwnershipStore::eni, ::instance, ::instance_notes); a head written concurrently, read \
               again (::put_marks)",
    },
    AwsCall {
        operation: "BatchGetItem",
        action: "dynamodb:BatchGetItem",
        resources: &["OwnershipTable"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "the heads of the addresses a change touches (DynamoOwnershipStore::put_marks) or a reconcile \
               looks up (::lookup); an instance's other ENI records (::enis_by_id)",
    },
    AwsCall {
        operation: "PutItem",
        action: "dynamodb:PutItem",
        resources: &["OwnershipTable"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "mark items and heads (DynamoOwnershipStore::put_marks), ENI records and their aliases (::put_eni), \
               instance records (::put_instance), kept changes (::put_pending)",
    },
    AwsCall {
        operation: "UpdateItem",
        action: "dynamodb:UpdateItem",
        resources: &["OwnershipTable"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "the TTL of opens a change ends (DynamoOwnershipStore::put_marks), a reconcile's sightings \
               (::put_seen) and horizon (::note_reconciled), instance notes (::note_instance)",
    },
    AwsCall {
        operation: "DeleteItem",
        action: "dynamodb:DeleteItem",
        resources: &["OwnershipTable"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "aliases an ENI record no longer has (DynamoOwnershipStore::put_eni), kept changes once applied \
               (::forget_pending)",
    },
    AwsCall {
        operation: "Query",
        action: "dynamodb:Query",
        resources: &["OwnershipTable"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "an address's marks (DynamoOwnershipStore::timeline; ::put_marks for history past the head; \
               ::lookup at times older than the head), the changes kept for an ENI (::pending)",
    },
    AwsCall {
        operation: "Query",
        action: "dynamodb:Query",
        resources: &["OwnershipTable/index/by_instance"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "an instance's ENIs, on the by_instance index (DynamoOwnershipStore::enis_of_instance)",
    },
    AwsCall {
        operation: "Scan",
        action: "dynamodb:Scan",
        resources: &["OwnershipTable"],
        source: "dredge-aws/src/ownership/requests.rs",
        path: "the reconcile: every address's timeline, to close what the snapshot no longer shows \
               (DynamoOwnershipStore::timelines, apply.rs reconcile_all)",
    },
    AwsCall {
        operation: "DescribeNetworkInterfaces",
        action: "ec2:DescribeNetworkInterfaces",
        resources: &["*"],
        source: "dredge-ownership/src/ec2.rs",
        path: "the reconcile's snapshot (every page), and one instance's interfaces when an event asks for a \
               describe (Ec2Api)",
    },
    AwsCall {
        operation: "DescribeInstances",
        action: "ec2:DescribeInstances",
        resources: &["*"],
        source: "dredge-ownership/src/ec2.rs",
        path: "the tags (the auto scaling group among them) of the instances those interfaces are attached to \
               (Ec2Api)",
    },
];
