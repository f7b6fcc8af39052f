//! The Lambda entry every function shares. A `main` builds its clients
//! once ([`start`] gives JSON logs and the SDK configuration), then hands
//! [`serve`] a handler whose result is an [`Invocation`]: after every
//! invocation one EMF metrics line and one log line are written the same
//! way, and Lambda gets the invocation's response or error.

use std::future::Future;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing_subscriber::EnvFilter;

use crate::emf;

/// What one invocation of a function did.
pub trait Invocation {
    /// What Lambda gets back on success.
    type Response: Serialize;

    /// The invocation's metrics, as one EMF document under `function`.
    fn metrics(&self, function: &str) -> emf::Document;

    /// One structured log line saying how it went.
    fn log(&self);

    /// The response, or the error that makes Lambda retry the invocation.
    fn into_response(self) -> Result<Self::Response, Diagnostic>;
}

/// Reports invocations: metrics to an EMF sink (standard output in
/// Lambda, standard error locally, memory in tests), then the log line.
#[derive(Debug, Clone)]
pub struct Reporter {
    function: String,
    metrics: emf::Sink,
}

impl Reporter {
    pub fn new(function: impl Into<String>, metrics: emf::Sink) -> Reporter {
        Reporter { function: function.into(), metrics }
    }

    pub fn report(&self, invocation: &impl Invocation) {
        if let Err(e) = self.metrics.emit(&invocation.metrics(&self.function)) {
            tracing::warn!(error = %e, "could not write metrics");
        }
        invocation.log();
    }
}

/// JSON logs (filtered by `RUST_LOG`, default `info`) and the SDK
/// configuration from the standard sources: call once per container and
/// build every client from the result. Under `sam local` without an
/// endpoint it refuses to start (see [`LocalWithoutEndpoint`]).
pub async fn start() -> Result<aws_config::SdkConfig, LocalWithoutEndpoint> {
    init_json_logging();
    check_sam_local(&crate::Vars::process())?;
    Ok(sdk_config().await)
}

/// `sam local invoke` hands a function the caller's real credentials, and
/// only `--env-vars env.json` points it at local endpoints: a forgotten
/// flag would read and write a real account.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "running under sam local (AWS_SAM_LOCAL=true) without AWS_ENDPOINT_URL: pass --env-vars env.json so that \
     calls go to moto, not to the account of your credentials"
)]
pub struct LocalWithoutEndpoint;

fn check_sam_local<F: Fn(&str) -> Option<String>>(vars: &crate::Vars<F>) -> Result<(), LocalWithoutEndpoint> {
    if vars.get("AWS_SAM_LOCAL").is_some() && vars.get("AWS_ENDPOINT_URL").is_none() {
        return Err(LocalWithoutEndpoint);
    }
    Ok(())
}

/// Runs the Lambda runtime loop: each event goes to `handler`, whose
/// invocation is reported (metrics on standard output, where CloudWatch
/// Logs extracts them) and answered.
pub async fn serve<E, I, F, Fut>(function: &str, handler: F) -> Result<(), lambda_runtime::Error>
where
    E: DeserializeOwned + Send,
    I: Invocation,
    F: Fn(LambdaEvent<E>) -> Fut,
    Fut: Future<Output = I>,
{
    let reporter = Reporter::new(function, emf::Sink::Stdout);
    let (reporter, handler) = (&reporter, &handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<E>| async move {
        let invocation = handler(event).await;
        reporter.report(&invocation);
        invocation.into_response()
    }))
    .await
}

/// Loads the SDK configuration: environment (`AWS_REGION`, credentials,
/// `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_<SERVICE>`,
/// `AWS_PROFILE`, ...), shared config files, then the container or
/// instance metadata (the Lambda execution role). An emulator (moto) is
/// reached by setting `AWS_ENDPOINT_URL`; nothing else changes.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}

/// Structured logs: JSON, one object per line, fields at the top level,
/// filtered by `RUST_LOG` (default `info`).
pub fn init_json_logging() {
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
    fn sam_local_needs_an_endpoint() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            crate::Vars::new(move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
        };
        assert_eq!(check_sam_local(&vars(&[])), Ok(()), "deployed: no AWS_SAM_LOCAL");
        assert_eq!(check_sam_local(&vars(&[("AWS_SAM_LOCAL", "true")])), Err(LocalWithoutEndpoint));
        assert_eq!(
            check_sam_local(&vars(&[("AWS_SAM_LOCAL", "true"), ("AWS_ENDPOINT_URL", "")])),
            Err(LocalWithoutEndpoint),
            "the template declares it empty"
        );
        const LOCAL: &[(&str, &str)] =
            &[("AWS_SAM_LOCAL", "true"), ("AWS_ENDPOINT_URL", "http://host.docker.internal:5000")];
        assert_eq!(check_sam_local(&vars(LOCAL)), Ok(()));
    }

    struct Done(u64);

    impl Invocation for Done {
        type Response = u64;
        fn metrics(&self, function: &str) -> emf::Document {
            let mut doc = emf::Document::at(emf::NAMESPACE, 0);
            doc.dimension(emf::FUNCTION_DIMENSION, function).directive(&[&[emf::FUNCTION_DIMENSION]]);
            doc.count("Things", self.0);
            doc
        }
        fn log(&self) {}
        fn into_response(self) -> Result<u64, Diagnostic> {
            Ok(self.0)
        }
    }

    #[test]
    fn a_reporter_writes_one_line_per_invocation_under_its_function() {
        let (sink, buffer) = emf::Sink::memory();
        let reporter = Reporter::new("writer", sink);
        reporter.report(&Done(3));
        reporter.report(&Done(4));
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (&lines[0]["Function"], &lines[0]["Things"], &lines[1]["Things"]),
            (&"writer".into(), &3.into(), &4.into())
        );
    }
}
