//! One set of rules for every AWS SDK error: transient (worth retrying) or
//! permanent. Every service's client returns the same `SdkError` shape, so
//! DynamoDB, Kinesis, S3 and EC2 are classified here alike; the SDK's own
//! retries (standard mode) have already run when an error gets here.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use dredge_core::Failure;

/// Service error codes that clear up by themselves: the SDK's throttling
/// and transient codes (as its standard retry classifier lists them), the
/// services' internal errors, and DynamoDB's write conflicts and tables
/// being created or updated. Any 5xx or 429 is transient whatever its code.
const TRANSIENT_CODES: &[&str] = &[
    // Throttling.
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "KMSThrottlingException",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    // Timeouts and the service's own failures (S3 sends RequestTimeout as 400).
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "Unavailable",
    // DynamoDB: conflicts between writers, and a table or index in change.
    "TransactionConflictException",
    "TransactionInProgressException",
    "ReplicatedWriteConflictException",
    "ResourceInUseException",
];

/// Service error codes that refuse a request for what it carries: a key,
/// a record or a batch over the service's limits.
const INVALID_CODES: &[&str] = &["ValidationException", "InvalidArgumentException"];

/// Whether a service error with this code and HTTP status is transient.
pub fn is_transient_code(code: Option<&str>, status: u16) -> bool {
    status >= 500 || status == 429 || code.is_some_and(|c| TRANSIENT_CODES.contains(&c))
}

/// Whether an SDK error is transient: timeouts, unreadable responses,
/// connection failures (not the caller's own misconfiguration), and the
/// service errors of [`is_transient_code`]. Requests that could not be
/// built, and every other service error (validation, access denied, a
/// missing table or bucket), are permanent.
pub fn is_transient<E: ProvideErrorMetadata>(err: &SdkError<E, Response>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(f) => !f.is_user(),
        SdkError::ServiceError(ctx) => is_transient_code(err.code(), ctx.raw().status().as_u16()),
        _ => false,
    }
}

/// The [`Failure`] an SDK error is, its message naming `operation` (e.g.
/// `DynamoDB PutItem`), the error and its causes.
pub fn classify<E>(operation: &str, err: &SdkError<E, Response>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = format!("{operation}: {}", DisplayErrorContext(err));
    if is_transient(err) {
        Failure::Transient(message)
    } else if matches!(err, SdkError::ServiceError(_)) && err.code().is_some_and(|c| INVALID_CODES.contains(&c)) {
        Failure::Invalid(message)
    } else {
        Failure::Permanent(message)
    }
}

#[cfg(test)]
mod tests {
    //! The same rules, checked on each service's own error types.

    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn response(status: u16) -> Response {
        Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty())
    }

    /// Checks one service: `make` builds its operation error from a code.
    fn check<E>(service: &str, make: impl Fn(ErrorMetadata) -> E, transient: &[(&str, u16)], permanent: &[(&str, u16)])
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let service_error = |code: &str, status: u16| {
            SdkError::service_error(make(ErrorMetadata::builder().code(code).message("m").build()), response(status))
        };
        for &(code, status) in transient {
            let f = classify(service, &service_error(code, status));
            assert!(f.is_transient(), "{service} {code} {status}: {f}");
            assert!(f.message().starts_with(service) && f.message().contains(code), "{f}");
        }
        for &(code, status) in permanent {
            let f = classify(service, &service_error(code, status));
            assert!(!f.is_transient(), "{service} {code} {status}: {f}");
            // Only a validation error blames the request's content.
            let invalid = matches!(code, "ValidationException" | "InvalidArgumentException");
            assert_eq!(f.is_invalid(), invalid, "{service} {code} {status}: {f}");
        }
        let io = SdkError::<E, Response>::dispatch_failure(ConnectorError::io("connection reset".into()));
        assert!(classify(service, &io).is_transient(), "{service}: connection failure");
        let user = SdkError::<E, Response>::dispatch_failure(ConnectorError::user("bad endpoint".into()));
        assert!(!classify(service, &user).is_transient(), "{service}: misconfiguration");
        assert!(classify(service, &SdkError::<E, Response>::timeout_error("slow")).is_transient());
        assert!(!classify(service, &SdkError::<E, Response>::construction_failure("no key")).is_transient());
    }

    #[test]
    fn dynamodb() {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        check(
            "DynamoDB PutItem",
            PutItemError::generic,
            &[
                ("ProvisionedThroughputExceededException", 400),
                ("ThrottlingException", 400),
                ("RequestLimitExceeded", 400),
                ("TransactionConflictException", 400),
                ("ResourceInUseException", 400),
                ("InternalServerError", 500),
                ("", 503),
            ],
            &[("ValidationException", 400), ("ResourceNotFoundException", 400), ("AccessDeniedException", 400)],
        );
    }

    #[test]
    fn kinesis() {
        use aws_sdk_kinesis::operation::put_records::PutRecordsError;
        check(
            "Kinesis PutRecords",
            PutRecordsError::generic,
            &[
                ("ProvisionedThroughputExceededException", 400),
                ("KMSThrottlingException", 400),
                ("LimitExceededException", 400),
                ("InternalFailure", 500),
                ("ServiceUnavailable", 503),
            ],
            &[("ResourceNotFoundException", 400), ("InvalidArgumentException", 400), ("AccessDeniedException", 400)],
        );
    }

    #[test]
    fn s3() {
        use aws_sdk_s3::operation::put_object::PutObjectError;
        // S3's throttling is 503 SlowDown; it was once classed permanent.
        check(
            "S3 PutObject",
            PutObjectError::generic,
            &[("SlowDown", 503), ("InternalError", 500), ("ServiceUnavailable", 503), ("RequestTimeout", 400)],
            &[("AccessDenied", 403), ("NoSuchBucket", 404), ("InvalidArgument", 400)],
        );
    }
}
