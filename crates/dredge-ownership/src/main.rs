//! The `dredge-ownership` Lambda (custom runtime, `provided.al2023`,
//! handler `bootstrap`). Configuration: [`Config`] (README.md lists the
//! variables). The SDK configuration, the DynamoDB and EC2 clients and the
//! handler are built once per container and shared by every invocation.

use std::time::Duration;

use dredge_aws::DynamoOwnershipStore;
use dredge_core::ownership::SnapshotScope;
use dredge_lambda::{Error, LambdaEvent};
use dredge_ownership::ec2::Ec2Api;
use dredge_ownership::handler::FUNCTION;
use dredge_ownership::{Config, Handler};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = dredge_lambda::start().await?;
    let config = Config::from_env()?;
    let region = sdk.region().map(|r| r.to_string());
    let mut store = DynamoOwnershipStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table.clone());
    if let Some(days) = config.retention_days {
        store = store.with_retention(Duration::from_secs(u64::from(days) * 24 * 60 * 60));
    }
    let describer = Ec2Api::new(aws_sdk_ec2::Client::new(&sdk));
    let handler = Handler::new(store, describer, config.policy.clone())
        .with_scope(SnapshotScope { account_id: None, region: region.clone() });
    tracing::info!(
        table = %config.table,
        tags = %config.policy.keep.join(","),
        app_tag = config.policy.app_tag.as_deref(),
        retention_days = config.retention_days,
        region = region.as_deref(),
        "ownership function ready"
    );
    let handler = &handler;
    dredge_lambda::serve(FUNCTION, move |event: LambdaEvent<Value>| async move {
        // A `{"reconcile": true}` payload without an account covers the
        // function's own account, read from its ARN.
        let fallback = scope_of_arn(&event.context.invoked_function_arn);
        handler.invoke(event.payload, &fallback).await
    })
    .await
}

/// The account and region of a Lambda function ARN
/// (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`).
fn scope_of_arn(arn: &str) -> SnapshotScope {
    let mut parts = arn.split(':');
    let part = |p: Option<&str>| p.filter(|s| !s.is_empty()).map(str::to_owned);
    let (_, _, _, region, account) = (parts.next(), parts.next(), parts.next(), parts.next(), parts.next());
    SnapshotScope { account_id: part(account), region: part(region) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arn_gives_account_and_region() {
        let s = scope_of_arn("arn:aws:lambda:us-east-1:123456789012:function:dredge-OwnershipFunction-AbC");
        assert_eq!(s.account_id.as_deref(), Some("123456789012"));
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        assert_eq!(scope_of_arn(""), SnapshotScope::default());
    }
}
