//! The function's configuration, from environment variables.

use dredge_core::ownership::TagPolicy;

/// `OWNERSHIP_TABLE`: the DynamoDB table (required).
pub const TABLE_VAR: &str = "OWNERSHIP_TABLE";
/// `DREDGE_TAGS`: comma-separated tag keys kept on owners.
pub const TAGS_VAR: &str = "DREDGE_TAGS";
/// `DREDGE_APP_TAG`: the tag naming the app when there is no auto scaling
/// group; empty for none.
pub const APP_TAG_VAR: &str = "DREDGE_APP_TAG";
/// `RETENTION_DAYS`: how long ownership history is kept.
pub const RETENTION_VAR: &str = "RETENTION_DAYS";

pub const DEFAULT_TAGS: &str = "app,team";
pub const DEFAULT_APP_TAG: &str = "app";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub policy: TagPolicy,
    /// `None` keeps history forever.
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name}={value:?}: {why}")]
    Invalid { name: &'static str, value: String, why: &'static str },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let table = get(TABLE_VAR).map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        let table = table.ok_or(ConfigError::Missing(TABLE_VAR))?;
        let tags = get(TAGS_VAR).unwrap_or_else(|| DEFAULT_TAGS.to_owned());
        let app_tag = get(APP_TAG_VAR).unwrap_or_else(|| DEFAULT_APP_TAG.to_owned());
        let policy = TagPolicy::from_keys(&tags, Some(app_tag.trim()));
        let retention_days = match get(RETENTION_VAR).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => match v.parse::<u32>() {
                Ok(0) | Err(_) => {
                    return Err(ConfigError::Invalid {
                        name: RETENTION_VAR,
                        value: v,
                        why: "must be a whole number of days, at least 1",
                    })
                }
                Ok(days) => Some(days),
            },
        };
        Ok(Config { table, policy, retention_days })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[(TABLE_VAR, "dredge-ownership")]).unwrap();
        assert_eq!(c.table, "dredge-ownership");
        assert_eq!(c.policy, TagPolicy::default());
        assert_eq!(c.retention_days, None);
    }

    #[test]
    fn every_variable() {
        let c = config(&[
            (TABLE_VAR, "t"),
            (TAGS_VAR, "team, cost-center ,"),
            (APP_TAG_VAR, "service"),
            (RETENTION_VAR, "30"),
        ])
        .unwrap();
        assert_eq!(c.policy.keep, ["team", "cost-center"]);
        assert_eq!(c.policy.app_tag.as_deref(), Some("service"));
        assert_eq!(c.retention_days, Some(30));
        // An empty app tag means none.
        assert_eq!(config(&[(TABLE_VAR, "t"), (APP_TAG_VAR, "")]).unwrap().policy.app_tag, None);
    }

    #[test]
    fn errors() {
        assert_eq!(config(&[]).unwrap_err(), ConfigError::Missing(TABLE_VAR));
        assert_eq!(config(&[(TABLE_VAR, " ")]).unwrap_err(), ConfigError::Missing(TABLE_VAR));
        for bad in ["0", "-3", "ten"] {
            let err = config(&[(TABLE_VAR, "t"), (RETENTION_VAR, bad)]).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { name: RETENTION_VAR, .. }), "{bad}: {err}");
        }
    }
}
