//! The enricher's configuration, from environment variables.

use std::time::Duration;

use dredge_core::flowlog::{Format, DEFAULT_MAX_DECOMPRESSED};
use dredge_core::ownership::CacheConfig;

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
            let (bucket, key) = rest.split_once('/').ok_or_else(|| ConfigError::Invalid {
                name: "IP_RANGES",
                value: s.to_owned(),
                reason: "expected s3://bucket/key".into(),
            })?;
            return Ok(RangesSource::S3 { bucket: bucket.to_owned(), key: key.to_owned() });
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            // Checked here so a typo fails at config time, not after the fetch's retries.
            let invalid = |reason: String| ConfigError::Invalid { name: "IP_RANGES", value: s.to_owned(), reason };
            let uri: hyper::Uri = s.parse().map_err(|e: hyper::http::uri::InvalidUri| invalid(e.to_string()))?;
            if uri.host().is_none_or(str::is_empty) {
                return Err(invalid("the URL has no host".into()));
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be set")]
    Missing { name: &'static str },
    #[error("{name}=`{value}`: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
}

/// Everything the handler needs to know.
#[derive(Debug, Clone)]
pub struct EnricherConfig {
    /// Format of flow-log lines that no header line precedes.
    pub format: Format,
    pub max_decompressed: usize,
    /// Forward NODATA/SKIPDATA records (default: count them only).
    pub forward_status_records: bool,
    pub cache: CacheConfig,
    /// Attempts per PutRecords entry before the source record is reported
    /// as failed.
    pub put_attempts: u32,
    pub put_backoff: Duration,
    /// Prefix of dead-letter object keys.
    pub dead_letter_prefix: String,
    pub ranges: RangesSource,
}

impl Default for EnricherConfig {
    fn default() -> Self {
        EnricherConfig {
            format: Format::default_v2(),
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
            forward_status_records: false,
            cache: CacheConfig::default(),
            put_attempts: 5,
            put_backoff: Duration::from_millis(100),
            dead_letter_prefix: "rejected".into(),
            ranges: RangesSource::None,
        }
    }
}

fn parsed<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid { name, value: v, reason: e.to_string() }),
    }
}

impl EnricherConfig {
    /// Reads the variables documented in README.md through `get` (the
    /// process environment in Lambda; a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<EnricherConfig, ConfigError> {
        let d = EnricherConfig::default();
        let format = match get("FLOW_LOG_FORMAT").filter(|f| !f.trim().is_empty()) {
            Some(f) => Format::parse(&f).map_err(|e| ConfigError::Invalid {
                name: "FLOW_LOG_FORMAT",
                value: f.clone(),
                reason: e.to_string(),
            })?,
            None => d.format,
        };
        Ok(EnricherConfig {
            format,
            max_decompressed: parsed(&get, "MAX_DECOMPRESSED_BYTES", d.max_decompressed)?,
            forward_status_records: parsed(&get, "FORWARD_STATUS_RECORDS", d.forward_status_records)?,
            cache: CacheConfig {
                capacity: parsed(&get, "CACHE_CAPACITY", d.cache.capacity)?,
                ttl_seconds: parsed(&get, "CACHE_TTL_SECONDS", d.cache.ttl_seconds)?,
                freshness_seconds: parsed(&get, "CACHE_FRESHNESS_SECONDS", d.cache.freshness_seconds)?,
            },
            put_attempts: parsed(&get, "PUT_MAX_ATTEMPTS", d.put_attempts)?.max(1),
            put_backoff: Duration::from_millis(parsed(&get, "PUT_BACKOFF_MS", 100u64)?),
            dead_letter_prefix: get("DEAD_LETTER_PREFIX").unwrap_or(d.dead_letter_prefix),
            ranges: RangesSource::parse(&get("IP_RANGES").unwrap_or_default())?,
        })
    }

    pub fn from_env() -> Result<EnricherConfig, ConfigError> {
        EnricherConfig::from_lookup(|k| std::env::var(k).ok())
    }
}

/// A required variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or(ConfigError::Missing { name })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<EnricherConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        EnricherConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_and_overrides() {
        let c = config(&[]).unwrap();
        assert_eq!(c.format, Format::default_v2());
        assert!(!c.forward_status_records);
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
