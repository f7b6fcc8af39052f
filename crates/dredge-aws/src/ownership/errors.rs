//! Mapping DynamoDB SDK failures onto [`StoreError`], by the rules every
//! service shares (`dredge_lambda::sdk_error`).

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use dredge_core::ownership::StoreError;
use dredge_lambda::sdk_error::classify;

/// Throttling, timeouts, connection failures, conflicts and 5xx are
/// transient; validation errors, a missing table, access denied and the
/// like are not.
pub(crate) fn store_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    classify(&format!("DynamoDB {operation}"), &err)
}

pub(crate) fn build_error(err: BuildError) -> StoreError {
    StoreError::Permanent(format!("building a DynamoDB request: {err}"))
}
