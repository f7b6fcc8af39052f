//! How a call to a backend failed: the one error type behind every narrow
//! interface (ownership store, record sink, object store, EC2 describer),
//! so that one classifier maps SDK errors onto it and one retry policy
//! decides what to try again.

/// A failed call to a backend. The message names the service, the
/// operation and what it said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Clears up by itself: throttling, timeouts, connection failures,
    /// 5xx, write conflicts. Worth retrying.
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying changes nothing: access denied, a missing table or bucket,
    /// corrupt data.
    #[error("{0}")]
    Permanent(String),
    /// The request was refused for what it carries (a validation error: a
    /// key or record over the service's limits). The same request fails
    /// again; the rest of a batch need not: the caller may set aside the
    /// input behind it and go on.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl Failure {
    pub fn is_transient(&self) -> bool {
        matches!(self, Failure::Transient(_))
    }

    /// Whether the request's content, not the service, is at fault.
    pub fn is_invalid(&self) -> bool {
        matches!(self, Failure::Invalid(_))
    }

    /// The message without the class.
    pub fn message(&self) -> &str {
        match self {
            Failure::Transient(m) | Failure::Permanent(m) | Failure::Invalid(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_shows_in_the_message() {
        let t = Failure::Transient("DynamoDB PutItem: ThrottlingException".into());
        assert!(t.is_transient());
        assert_eq!(t.to_string(), "transient: DynamoDB PutItem: ThrottlingException");
        let p = Failure::Permanent("S3 PutObject: AccessDenied".into());
        assert!(!p.is_transient());
        assert_eq!(p.to_string(), p.message());
    }
}
