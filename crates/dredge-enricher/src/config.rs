//! The enricher's configuration, from environment variables (read by the
//! rules of `dredge_lambda::config`).

use std::time::Duration;

use dredge_core::enrich::WaitPolicy;
use dredge_core::flowlog::{Format, DEFAULT_MAX_DECOMPRESSED};
use dredge_core::ownership::{CacheConfig, TagPolicy};
use dredge_core::retry_queue::MAX_DELAY_SECONDS;
use dredge_core::stream_data::Compression;
pub use dredge_lambda::config::ConfigError;
use dredge_lambda::{RetryPolicy, Vars};

/// Where AWS's `ip-ranges.json` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangesSource {
    /// Not loaded: public addresses outside the ownership table stay
    /// unattributed (never guessed as "internet").
    None,
    File(String),
    S3 {
        bucket: String,
        key: String,
    },
    /// An `http://` or `https://` URL, e.g. AWS's published
    /// `https://ip-ranges.amazonaws.com/ip-ranges.json`.
    Url(String),
}

impl RangesSource {
    pub fn parse(s: &str) -> Result<RangesSource, ConfigError> {
        if s.is_empty() {
            return Ok(RangesSource::None);
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, key) =
                rest.split_once('/').ok_or_else(|| ConfigError::invalid("IP_RANGES", s, "expected s3://bucket/key"))?;
            return Ok(RangesSource::S3 { bucket: bucket.to_owned(), key: key.to_owned() });
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            // Checked here so a typo fails at config time, not after the fetch's retries.
            let invalid = |reason: &dyn std::fmt::Display| ConfigError::invalid("IP_RANGES", s, reason);
            let uri: hyper::Uri = s.parse().map_err(|e: hyper::http::uri::InvalidUri| invalid(&e))?;
            if uri.host().is_none_or(str::is_empty) {
                return Err(invalid(&"the URL has no host"));
            }
            return Ok(RangesSource::Url(s.to_owned()));
        }
        Ok(RangesSource::File(s.to_owned()))
    }
}

impl std::fmt::Display for RangesSource {
    /// The source as `IP_RANGES` names it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RangesSource::None => Ok(()),
            RangesSource::File(path) => f.write_str(path),
            RangesSource::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            RangesSource::Url(url) => f.write_str(url),
        }
    }
}

/// What the Lambda needs: its resources, the tag policy and the
/// handler's settings, all from the environment.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// `OWNERSHIP_TABLE`: the DynamoDB ownership table.
    pub table: String,
    /// `ENRICHED_STREAM`: the Kinesis stream enriched records go to.
    pub enriched_stream: String,
    /// `DEAD_LETTER_BUCKET`: where rejected input is kept.
    pub dead_letter_bucket: String,
    /// `DREDGE_TAGS`, `DREDGE_APP_TAG`.
    pub policy: TagPolicy,
    /// `RETRY_QUEUE_URL`: the SQS queue of the second chance; without it,
    /// sides the table cannot vouch for yet are written `unattributed`.
    pub retry_queue_url: Option<String>,
    pub enricher: EnricherConfig,
}

impl FunctionConfig {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<FunctionConfig, ConfigError> {
        Ok(FunctionConfig {
            table: vars.required("OWNERSHIP_TABLE")?,
            enriched_stream: vars.required("ENRICHED_STREAM")?,
            dead_letter_bucket: vars.required("DEAD_LETTER_BUCKET")?,
            policy: vars.tag_policy(),
            retry_queue_url: vars.get("RETRY_QUEUE_URL").filter(|u| !u.is_empty()),
            enricher: EnricherConfig::from_vars(vars)?,
        })
    }

    pub fn from_env() -> Result<FunctionConfig, ConfigError> {
        FunctionConfig::from_vars(&Vars::process())
    }
}

/// The most flow-log text one batch decodes. A full Lambda batch of real
/// flow logs (6 MB of gzip, 10-20x smaller than its text) is about 100 MB
/// and 1 Mi lines: the defaults leave four times that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchBudget {
    /// Decompressed bytes, over all input records.
    pub text_bytes: u64,
    /// Lines (or log events), blank and rejected ones included.
    pub lines: u64,
}

impl Default for BatchBudget {
    fn default() -> Self {
        BatchBudget { text_bytes: 512 * 1024 * 1024, lines: 4 * 1024 * 1024 }
    }
}

/// Everything the handler needs to know.
#[derive(Debug, Clone)]
pub struct EnricherConfig {
    /// Format of flow-log lines that no header line precedes.
    pub format: Format,
    /// Largest decompressed size of one input record
    /// (`MAX_DECOMPRESSED_BYTES`); larger ones are refused whole.
    pub max_decompressed: usize,
    /// What one batch may decode at most (`MAX_BATCH_TEXT_BYTES`,
    /// `MAX_BATCH_LINES`): input records past it are kept whole in the
    /// dead-letter store, so no batch of tiny compressed records can keep
    /// a shard busy for longer than the budget takes.
    pub budget: BatchBudget,
    /// Forward NODATA/SKIPDATA records (default: count them only).
    pub forward_status_records: bool,
    pub cache: CacheConfig,
    /// Tries per PutRecords entry (`PUT_MAX_ATTEMPTS`) before its source
    /// record is reported as failed, and the backoff between them
    /// (`PUT_BACKOFF_MS` before the first retry, doubling, jittered).
    pub put_retry: RetryPolicy,
    /// Prefix of dead-letter object keys.
    pub dead_letter_prefix: String,
    pub ranges: RangesSource,
    /// How enriched record data is written (`ENRICHED_COMPRESSION`).
    pub compression: Compression,
    /// The second chance: `RETRY_DELAY_SECONDS` between tries (at most
    /// 900, SQS's longest delay), `RETRY_MAX_WAIT_SECONDS` from first seen
    /// to `unattributed`. Used when there is a retry queue.
    pub second_chance: WaitPolicy,
}

impl Default for EnricherConfig {
    fn default() -> Self {
        EnricherConfig {
            format: Format::default_v2(),
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
            budget: BatchBudget::default(),
            forward_status_records: false,
            cache: CacheConfig::default(),
            put_retry: RetryPolicy::new(5, Duration::from_millis(100), Duration::from_secs(5)),
            dead_letter_prefix: "rejected".into(),
            ranges: RangesSource::None,
            compression: Compression::Zstd,
            second_chance: WaitPolicy::default(),
        }
    }
}

impl EnricherConfig {
    /// Reads the variables documented in README.md.
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<EnricherConfig, ConfigError> {
        let d = EnricherConfig::default();
        let format = match vars.get("FLOW_LOG_FORMAT") {
            Some(f) => Format::parse(&f).map_err(|e| ConfigError::invalid("FLOW_LOG_FORMAT", f.clone(), e))?,
            None => d.format,
        };
        let put_backoff = Duration::from_millis(vars.parsed("PUT_BACKOFF_MS", d.put_retry.base.as_millis() as u64)?);
        Ok(EnricherConfig {
            format,
            max_decompressed: vars.parsed("MAX_DECOMPRESSED_BYTES", d.max_decompressed)?,
            budget: BatchBudget {
                text_bytes: vars.parsed("MAX_BATCH_TEXT_BYTES", d.budget.text_bytes)?,
                lines: vars.parsed("MAX_BATCH_LINES", d.budget.lines)?,
            },
            forward_status_records: vars.parsed("FORWARD_STATUS_RECORDS", d.forward_status_records)?,
            cache: CacheConfig {
                capacity: vars.parsed("CACHE_CAPACITY", d.cache.capacity)?,
                ttl_seconds: vars.parsed("CACHE_TTL_SECONDS", d.cache.ttl_seconds)?,
                freshness_seconds: vars.parsed("CACHE_FRESHNESS_SECONDS", d.cache.freshness_seconds)?,
            },
            put_retry: RetryPolicy::new(
                vars.parsed("PUT_MAX_ATTEMPTS", d.put_retry.attempts)?,
                put_backoff,
                d.put_retry.max.max(put_backoff),
            ),
            dead_letter_prefix: vars.get("DEAD_LETTER_PREFIX").unwrap_or(d.dead_letter_prefix),
            ranges: RangesSource::parse(&vars.get("IP_RANGES").unwrap_or_default())?,
            compression: vars.parsed("ENRICHED_COMPRESSION", d.compression)?,
            second_chance: {
                let delay_seconds = vars.parsed("RETRY_DELAY_SECONDS", d.second_chance.delay_seconds)?;
                if delay_seconds > MAX_DELAY_SECONDS {
                    return Err(ConfigError::invalid(
                        "RETRY_DELAY_SECONDS",
                        delay_seconds.to_string(),
                        format!("SQS delays at most {MAX_DELAY_SECONDS} seconds"),
                    ));
                }
                WaitPolicy {
                    delay_seconds,
                    max_wait_seconds: vars.parsed("RETRY_MAX_WAIT_SECONDS", d.second_chance.max_wait_seconds)?,
                }
            },
        })
    }

    pub fn from_env() -> Result<EnricherConfig, ConfigError> {
        EnricherConfig::from_vars(&Vars::process())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<EnricherConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        EnricherConfig::from_vars(&Vars::new(|k| map.get(k).cloned()))
    }

    #[test]
    fn the_function_reads_its_resources_and_tag_policy_with_its_settings() {
        let vars = [
            ("OWNERSHIP_TABLE", " ownership "),
            ("ENRICHED_STREAM", "enriched"),
            ("DEAD_LETTER_BUCKET", "dead-letters"),
            ("DREDGE_TAGS", " team , cost "),
            ("DREDGE_APP_TAG", " service "),
            ("PUT_MAX_ATTEMPTS", "3"),
            ("PUT_BACKOFF_MS", "20"),
        ];
        let map: HashMap<&str, &str> = vars.into_iter().collect();
        let c = FunctionConfig::from_vars(&Vars::new(|k| map.get(k).map(|v| v.to_string()))).unwrap();
        assert_eq!(
            (c.table.as_str(), c.enriched_stream.as_str(), c.dead_letter_bucket.as_str()),
            ("ownership", "enriched", "dead-letters")
        );
        assert_eq!(c.policy, TagPolicy::from_keys("team,cost", Some("service")));
        assert_eq!((c.enricher.put_retry.attempts, c.enricher.put_retry.base), (3, Duration::from_millis(20)));
        let missing = FunctionConfig::from_vars(&Vars::new(|k| {
            (k != "ENRICHED_STREAM").then(|| map.get(k).map(|v| v.to_string())).flatten()
        }));
        assert_eq!(missing.unwrap_err(), ConfigError::Missing { name: "ENRICHED_STREAM" });
    }

    #[test]
    fn defaults_and_overrides() {
        let c = config(&[]).unwrap();
        assert_eq!(c.format, Format::default_v2());
        assert!(!c.forward_status_records);
        assert_eq!(c.compression, Compression::Zstd);
        assert_eq!(config(&[("ENRICHED_COMPRESSION", " none ")]).unwrap().compression, Compression::None);
        assert_eq!(config(&[("ENRICHED_COMPRESSION", "")]).unwrap().compression, Compression::Zstd, "empty is unset");
        let c = config(&[
            ("FLOW_LOG_FORMAT", "${version} ${srcaddr} ${dstaddr} ${start}"),
            ("FORWARD_STATUS_RECORDS", "true"),
            ("CACHE_TTL_SECONDS", "60"),
            ("IP_RANGES", "s3://bucket/path/ip-ranges.json"),
        ])
        .unwrap();
        assert_eq!(c.format.len(), 4);
        assert!(c.forward_status_records);
        assert_eq!(c.cache.ttl_seconds, 60);
        assert_eq!(c.ranges, RangesSource::S3 { bucket: "bucket".into(), key: "path/ip-ranges.json".into() });
    }

    #[test]
    fn bad_values_are_named() {
        let e = config(&[("FLOW_LOG_FORMAT", "${nope}")]).unwrap_err().to_string();
        assert!(e.starts_with("FLOW_LOG_FORMAT="), "{e}");
        let e = config(&[("CACHE_CAPACITY", "lots")]).unwrap_err().to_string();
        assert!(e.starts_with("CACHE_CAPACITY="), "{e}");
        assert!(config(&[("IP_RANGES", "s3://bucket-only")]).is_err());
        let e = config(&[("ENRICHED_COMPRESSION", "gzip")]).unwrap_err().to_string();
        assert!(e.starts_with("ENRICHED_COMPRESSION="), "{e}");
    }

    #[test]
    fn ip_ranges_urls() {
        for url in ["https://ip-ranges.amazonaws.com/ip-ranges.json", "http://127.0.0.1:8080/ip-ranges.json"] {
            let c = config(&[("IP_RANGES", url)]).unwrap();
            assert_eq!(c.ranges, RangesSource::Url(url.into()));
            assert_eq!(c.ranges.to_string(), url);
        }
        for bad in ["https://", "http:///ip-ranges.json", "https://exa mple.com/ip-ranges.json"] {
            let e = config(&[("IP_RANGES", bad)]).unwrap_err().to_string();
            assert!(e.starts_with(&format!("IP_RANGES=`{bad}`")), "{e}");
        }
        // Anything else is still a path.
        assert_eq!(
            config(&[("IP_RANGES", "/opt/ip-ranges.json")]).unwrap().ranges,
            RangesSource::File("/opt/ip-ranges.json".into())
        );
        assert_eq!(config(&[]).unwrap().ranges, RangesSource::None);
    }
}
