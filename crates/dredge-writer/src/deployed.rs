//! The writer as deployed: on its S3 buckets, configured from the
//! environment (README.md lists the variables). Built once per container by
//! `main.rs`, and by `dredge replay`, which runs the handler on the live
//! pipeline.

use dredge_aws::{s3_client, S3Objects};
use dredge_lambda::{ConfigError, SdkConfig, Vars};

use crate::lambda::Writer;
use crate::WriterConfig;

pub type DeployedWriter = Writer<S3Objects, S3Objects>;

pub fn writer(sdk: &SdkConfig) -> Result<DeployedWriter, ConfigError> {
    let config = WriterConfig::from_vars(&Vars::process(), None)?;
    tracing::info!(
        bucket = %config.data_bucket,
        prefix = %config.layout.prefix(),
        lateness_seconds = config.compact.lateness_seconds,
        target_bytes = config.compact.sizes.target_bytes,
        "writer ready"
    );
    let s3 = s3_client(sdk);
    let data = S3Objects::new(s3.clone(), config.data_bucket.clone(), "");
    let dead_letter = S3Objects::new(s3, config.dead_letter_bucket.clone(), "");
    Ok(Writer::new(data, dead_letter, config))
}
