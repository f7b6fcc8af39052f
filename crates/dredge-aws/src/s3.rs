//! [`ObjectStore`] on an S3 bucket and key prefix.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use dredge_core::objects::{ObjectError, ObjectStore};
use dredge_lambda::sdk_error::classify;

/// An S3 client for `config`. With a custom endpoint (an emulator, a VPC
/// endpoint by URL) path-style addressing is used: virtual-host names like
/// `bucket.127.0.0.1` do not resolve.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let path_style =
        std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    let conf = aws_sdk_s3::config::Builder::from(config).force_path_style(path_style).build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Objects under `prefix` in `bucket`.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Objects {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix } else { format!("{prefix}/") };
        S3Objects { client, bucket: bucket.into(), prefix }
    }

    /// What an S3 failure is, by the rules every service shares: 503
    /// SlowDown (S3's throttling) and 5xx are transient, as elsewhere.
    fn error<E>(&self, op: &str, key: &str, e: SdkError<E, HttpResponse>) -> ObjectError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        classify(&format!("S3 {op} s3://{}/{}{key}", self.bucket, self.prefix), &e)
    }
}

impl ObjectStore for S3Objects {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error("PutObject", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix))
            .send()
            .await
            .map_err(|e| self.error("GetObject", key, e))?;
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| ObjectError::Transient(format!("S3 GetObject {key}: reading the body: {e}")))?;
        Ok(bytes.into_bytes().to_vec())
    }
}
