//! [`ObjectStore`] on an S3 bucket and key prefix.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use dredge_core::objects::{check_key, Listed, MultipartUpload, ObjectError, ObjectListing, ObjectStore, Part, Upload};
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

    /// The full key of `key`, checked as S3 would take it.
    fn key(&self, key: &str) -> Result<String, ObjectError> {
        check_key(key)?;
        let full = format!("{}{key}", self.prefix);
        check_key(&full)?;
        Ok(full)
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
            .key(self.key(key)?)
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
            .key(self.key(key)?)
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

impl ObjectListing for S3Objects {
    /// ListObjectsV2, every page.
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ObjectError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{prefix}", self.prefix))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("ListObjectsV2", prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) else { continue };
                out.push(Listed { key: key.to_owned(), size: object.size().unwrap_or(0).max(0) as u64 });
            }
        }
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.key(key)?)
            .send()
            .await
            .map_err(|e| self.error("DeleteObject", key, e))?;
        Ok(())
    }
}

impl MultipartUpload for S3Objects {
    async fn start_upload(&self, key: &str) -> Result<Upload, ObjectError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(self.key(key)?)
            .send()
            .await
            .map_err(|e| self.error("CreateMultipartUpload", key, e))?;
        let upload_id = out
            .upload_id()
            .ok_or_else(|| ObjectError::Transient(format!("S3 CreateMultipartUpload {key}: no upload id")))?;
        Ok(Upload { key: key.to_owned(), upload_id: upload_id.to_owned() })
    }

    async fn upload_part(&self, upload: &Upload, number: u32, body: Vec<u8>) -> Result<Part, ObjectError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(self.key(&upload.key)?)
            .upload_id(&upload.upload_id)
            .part_number(i32::try_from(number).unwrap_or(i32::MAX))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error("UploadPart", &upload.key, e))?;
        let etag =
            out.e_tag().ok_or_else(|| ObjectError::Transient(format!("S3 UploadPart {}: no ETag", upload.key)))?;
        Ok(Part { number, etag: etag.to_owned() })
    }

    async fn complete_upload(&self, upload: &Upload, parts: &[Part]) -> Result<(), ObjectError> {
        let parts = parts
            .iter()
            .map(|p| {
                CompletedPart::builder().part_number(i32::try_from(p.number).unwrap_or(i32::MAX)).e_tag(&p.etag).build()
            })
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(self.key(&upload.key)?)
            .upload_id(&upload.upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| self.error("CompleteMultipartUpload", &upload.key, e))?;
        Ok(())
    }

    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(self.key(&upload.key)?)
            .upload_id(&upload.upload_id)
            .send()
            .await
            .map_err(|e| self.error("AbortMultipartUpload", &upload.key, e))?;
        Ok(())
    }
}
