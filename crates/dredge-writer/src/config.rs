//! The writer's configuration, from environment variables (read by the
//! rules of `dredge_lambda::config`).

use dredge_lambda::config::ConfigError;
use dredge_lambda::Vars;

use crate::compact::CompactOptions;
use crate::layout::Layout;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// `DATA_BUCKET`: where staged and final objects go.
    pub data_bucket: String,
    /// `DATA_PREFIX` (default `flows`).
    pub layout: Layout,
    /// `DEAD_LETTER_BUCKET`, `DEAD_LETTER_PREFIX` (default `rejected`):
    /// lines that can never be written.
    pub dead_letter_bucket: String,
    pub dead_letter_prefix: String,
    /// `COMPACT_LATENESS` (default `15m`), `COMPACT_TARGET_BYTES` (default
    /// 128 MiB), `COMPACT_MAX_FLOW_IDS` (default 40 million).
    pub compact: CompactOptions,
}

impl WriterConfig {
    /// `default_bucket` stands in for a missing `DATA_BUCKET` (locally:
    /// `dredge-data`); `None` makes it required.
    pub fn from_vars<F: Fn(&str) -> Option<String>>(
        vars: &Vars<F>,
        default_bucket: Option<&str>,
    ) -> Result<WriterConfig, ConfigError> {
        let data_bucket = match (vars.get("DATA_BUCKET"), default_bucket) {
            (Some(b), _) => b,
            (None, Some(d)) => d.to_owned(),
            (None, None) => return Err(ConfigError::Missing { name: "DATA_BUCKET" }),
        };
        let prefix = vars.get("DATA_PREFIX").unwrap_or_else(|| "flows".into());
        let layout = Layout::new(&prefix)
            .ok_or_else(|| ConfigError::invalid("DATA_PREFIX", prefix.clone(), "letters, digits and -_./= only"))?;
        let mut compact = CompactOptions::default();
        if let Some(v) = vars.get("COMPACT_LATENESS") {
            compact.lateness_seconds = seconds(&v)
                .ok_or_else(|| ConfigError::invalid("COMPACT_LATENESS", v.clone(), "e.g. 900, 900s, 15m, 1h"))?;
        }
        compact.sizes.target_bytes = vars.parsed("COMPACT_TARGET_BYTES", compact.sizes.target_bytes)?;
        compact.max_flow_ids = vars.parsed("COMPACT_MAX_FLOW_IDS", compact.max_flow_ids)?.max(1);
        Ok(WriterConfig {
            data_bucket,
            layout,
            dead_letter_bucket: match default_bucket {
                Some(_) => vars.get("DEAD_LETTER_BUCKET").unwrap_or_else(|| "dredge-dead-letter".into()),
                None => vars.required("DEAD_LETTER_BUCKET")?,
            },
            dead_letter_prefix: vars.get("DEAD_LETTER_PREFIX").unwrap_or_else(|| "rejected".into()),
            compact,
        })
    }
}

/// Seconds from `900`, `900s`, `15m` or `1h`.
fn seconds(v: &str) -> Option<i64> {
    let (n, unit) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&v[..i], &v[i..]),
        None => (v, "s"),
    };
    let n: i64 = n.parse().ok()?;
    let unit = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    n.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)], default_bucket: Option<&str>) -> Result<WriterConfig, ConfigError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        WriterConfig::from_vars(&Vars::new(|k| map.get(k).map(|v| v.to_string())), default_bucket)
    }

    #[test]
    fn defaults_and_variables() {
        let c = config(&[], Some("dredge-data")).unwrap();
        assert_eq!((c.data_bucket.as_str(), c.layout.prefix()), ("dredge-data", "flows"));
        assert_eq!((c.compact.lateness_seconds, c.compact.sizes.target_bytes), (900, 128 << 20));
        let c = config(
            &[
                ("DATA_BUCKET", "b"),
                ("DATA_PREFIX", "net/flows"),
                ("COMPACT_LATENESS", "1h"),
                ("DEAD_LETTER_BUCKET", "d"),
            ],
            None,
        )
        .unwrap();
        assert_eq!((c.data_bucket.as_str(), c.layout.prefix(), c.compact.lateness_seconds), ("b", "net/flows", 3600));
        assert_eq!(config(&[], None).unwrap_err(), ConfigError::Missing { name: "DATA_BUCKET" });
        assert!(config(&[("DATA_PREFIX", "a b")], Some("x")).is_err());
        assert!(config(&[("COMPACT_LATENESS", "soon")], Some("x")).is_err());
        assert_eq!(
            (seconds("900"), seconds("15m"), seconds("2h"), seconds("5d")),
            (Some(900), Some(900), Some(7200), None)
        );
    }
}
