//! The AWS SDK configuration.

/// Loads the SDK configuration from the standard sources: environment
/// (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL` and the per-service
/// `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_PROFILE`, ...), shared config files,
/// then the container or instance metadata (the Lambda execution role).
///
/// An emulator (moto, DynamoDB Local) is reached by setting
/// `AWS_ENDPOINT_URL`; nothing else changes. Call it once per process and
/// build every client from the result.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await
}
