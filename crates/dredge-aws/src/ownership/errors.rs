//! Mapping SDK failures onto [`StoreError`]: worth retrying or not.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use dredge_core::ownership::StoreError;

/// Service error codes that clear up by themselves.
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
    "ReplicatedWriteConflictException",
    // The table or an index is being created or updated.
    "ResourceInUseException",
];

/// What kind of failure a service error code and HTTP status describe.
pub(crate) fn is_transient_code(code: Option<&str>, status: u16) -> bool {
    status >= 500 || status == 429 || code.is_some_and(|c| TRANSIENT_CODES.contains(&c))
}

/// Throttling, timeouts, connection failures and 5xx are transient;
/// validation errors, a missing table, access denied and the like are not.
pub(crate) fn store_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = format!("DynamoDB {operation}: {}", DisplayErrorContext(&err));
    let transient = match &err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(f) => !f.is_user(),
        SdkError::ServiceError(ctx) => is_transient_code(err.code(), ctx.raw().status().as_u16()),
        _ => false,
    };
    if transient {
        StoreError::Transient(message)
    } else {
        StoreError::Permanent(message)
    }
}

pub(crate) fn build_error(err: BuildError) -> StoreError {
    StoreError::Permanent(format!("building a DynamoDB request: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_and_server_errors_are_transient() {
        assert!(is_transient_code(Some("ProvisionedThroughputExceededException"), 400));
        assert!(is_transient_code(Some("ThrottlingException"), 400));
        assert!(is_transient_code(None, 503));
        assert!(is_transient_code(Some("InternalServerError"), 500));
        assert!(!is_transient_code(Some("ValidationException"), 400));
        assert!(!is_transient_code(Some("ResourceNotFoundException"), 400));
        assert!(!is_transient_code(Some("AccessDeniedException"), 400));
    }
}
