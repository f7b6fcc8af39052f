//! The `dredge-ownership` Lambda (custom runtime, `provided.al2023`,
//! handler `bootstrap`).
//!
//! Configuration (environment): `OWNERSHIP_TABLE` (required), `DREDGE_TAGS`
//! (default `app,team`), `DREDGE_APP_TAG` (default `app`), `RETENTION_DAYS`
//! (default: the store's, 30), `RUST_LOG` (default `info`). The SDK
//! configuration, the DynamoDB and EC2 clients and the handler are built
//! once per container and shared by every invocation.

// The handler's future nests the SDK paginators' and the DynamoDB store's
// futures deeper than rustc's default layout query limit.
#![recursion_limit = "256"]

use std::time::Duration;

use dredge_aws::{sdk_config, DynamoOwnershipStore};
use dredge_core::ownership::SnapshotScope;
use dredge_ownership::ec2::Ec2Api;
use dredge_ownership::{Config, Handler};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging();
    let config = Config::from_env().map_err(|e| {
        tracing::error!(error = %e, "bad configuration");
        e
    })?;
    let sdk = sdk_config().await;
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
        tags = ?config.policy.keep,
        app_tag = ?config.policy.app_tag,
        retention_days = ?config.retention_days,
        region = ?region,
        "ownership function ready"
    );
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A `{"reconcile": true}` payload without an account covers the
        // function's own account, read from its ARN.
        let fallback = scope_of_arn(&event.context.invoked_function_arn);
        handler.handle_in(event.payload, &fallback).await.map_err(Error::from)
    }))
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

/// JSON logs, one object per line, fields at the top level; `RUST_LOG`
/// filters (default `info`).
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
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
