//! Loads AWS's `ip-ranges.json` from where `IP_RANGES` points, once per
//! container at cold start. Every failure is an init error: the operator
//! named the source, and running without it would quietly leave public
//! addresses unattributed.

use std::time::Duration;

use dredge_aws::S3Objects;
use dredge_core::ipranges::{IpRanges, IpRangesError};
use dredge_core::objects::{ObjectError, ObjectStore};
use dredge_lambda::RetryPolicy;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Bytes};
use hyper::{StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::RangesSource;

/// How a URL is fetched.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Per attempt: connecting, the response and the whole body.
    pub timeout: Duration,
    /// Tries, and the backoff between them.
    pub retry: RetryPolicy,
    /// Larger bodies are refused (the published file is about 3 MB).
    pub max_bytes: usize,
}

impl Default for FetchOptions {
    /// About 16 s at worst. Lambda allows init 10 s, then reruns it within
    /// the first invocation's timeout, so a slow fetch delays a batch, not loses it.
    fn default() -> Self {
        FetchOptions {
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::new(3, Duration::from_millis(200), Duration::from_secs(2)),
            max_bytes: 64 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RangesError {
    #[error("IP_RANGES {path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error("IP_RANGES: {0}")]
    S3(#[from] ObjectError),
    #[error("IP_RANGES {url}: {error} ({attempts} attempt(s))")]
    Http { url: String, attempts: u32, error: FetchError },
    #[error("IP_RANGES {source_name}: {error}")]
    Parse { source_name: String, error: IpRangesError },
}

/// One failed attempt at a URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("not an http(s) URL: {0}")]
    InvalidUrl(String),
    #[error("loading the TLS root certificates: {0}")]
    Tls(std::io::Error),
    #[error("HTTP {status}{}", location.as_ref().map(|l| format!(" (Location: {l})")).unwrap_or_default())]
    Status { status: StatusCode, location: Option<String> },
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error(
        "no complete response within {0:?} (a Lambda in a VPC needs a NAT gateway or other egress for public URLs)"
    )]
    Timeout(Duration),
    #[error("{0}")]
    Request(String),
}

impl FetchError {
    /// Worth another attempt: the network or the server may recover.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Timeout(_) | FetchError::Request(_) => true,
            FetchError::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            FetchError::InvalidUrl(_) | FetchError::Tls(_) | FetchError::TooLarge { .. } => false,
        }
    }
}

/// The parsed ranges, or `None` when `IP_RANGES` is not set.
pub async fn load(
    source: &RangesSource,
    s3: &aws_sdk_s3::Client,
    options: &FetchOptions,
) -> Result<Option<IpRanges>, RangesError> {
    let Some(bytes) = load_bytes(source, s3, options).await? else { return Ok(None) };
    let ranges =
        IpRanges::from_json(&bytes).map_err(|error| RangesError::Parse { source_name: source.to_string(), error })?;
    Ok(Some(ranges))
}

/// The file's bytes, or `None` when `IP_RANGES` is not set.
pub async fn load_bytes(
    source: &RangesSource,
    s3: &aws_sdk_s3::Client,
    options: &FetchOptions,
) -> Result<Option<Vec<u8>>, RangesError> {
    Ok(Some(match source {
        RangesSource::None => return Ok(None),
        RangesSource::File(path) => {
            std::fs::read(path).map_err(|error| RangesError::File { path: path.clone(), error })?
        }
        RangesSource::S3 { bucket, key } => S3Objects::new(s3.clone(), bucket, "").get(key).await?,
        RangesSource::Url(url) => fetch_url(url, options).await?,
    }))
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// GETs `url`, retrying transient failures with backoff.
pub async fn fetch_url(url: &str, options: &FetchOptions) -> Result<Vec<u8>, RangesError> {
    let failed = |attempts, error| RangesError::Http { url: url.to_owned(), attempts, error };
    let uri: Uri =
        url.parse().map_err(|e: hyper::http::uri::InvalidUri| failed(0, FetchError::InvalidUrl(e.to_string())))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(failed(0, FetchError::InvalidUrl(url.to_owned())));
    }
    let client = client().map_err(|e| failed(0, e))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let error = match tokio::time::timeout(options.timeout, get(&client, &uri, options.max_bytes)).await {
            Ok(Ok(bytes)) => return Ok(bytes),
            Ok(Err(e)) => e,
            Err(_) => FetchError::Timeout(options.timeout),
        };
        if !options.retry.retries_after(attempt) || !error.is_transient() {
            return Err(failed(attempt, error));
        }
        tracing::warn!(url, attempt, error = %error, "fetching IP_RANGES failed; retrying");
        options.retry.pause(attempt).await;
    }
}

/// HTTP and HTTPS with the platform's CA roots (as the AWS SDK's own client
/// uses) and the crypto provider the SDK already builds.
fn client() -> Result<HttpClient, FetchError> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(FetchError::Tls)?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

async fn get(client: &HttpClient, uri: &Uri, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    let request = hyper::Request::get(uri.clone())
        .header(hyper::header::USER_AGENT, concat!("dredge-enricher/", env!("CARGO_PKG_VERSION")))
        .body(Empty::new())
        .map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
    let response = client.request(request).await.map_err(|e| FetchError::Request(error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let location = response.headers().get(hyper::header::LOCATION).and_then(|l| l.to_str().ok()).map(str::to_owned);
        return Err(FetchError::Status { status, location });
    }
    let mut body = response.into_body();
    // A Content-Length over the cap fails before any of the body is read.
    let declared = body.size_hint().lower();
    if declared > max_bytes as u64 {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    let mut bytes = Vec::with_capacity(declared as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FetchError::Request(format!("reading the body: {}", error_chain(&e))))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > max_bytes {
                return Err(FetchError::TooLarge { limit: max_bytes });
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// The error and its causes: hyper-util's own message is only "client error (Connect)".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        message.push_str(": ");
        message.push_str(&e.to_string());
        cause = e.source();
    }
    message
}
