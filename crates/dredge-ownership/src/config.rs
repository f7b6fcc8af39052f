//! The function's configuration, from environment variables (read by the
//! rules of `dredge_lambda::config`).

use dredge_core::ownership::TagPolicy;
pub use dredge_lambda::config::{ConfigError, APP_TAG_VAR, TAGS_VAR};
use dredge_lambda::Vars;

/// `OWNERSHIP_TABLE`: the DynamoDB table (required).
pub const TABLE_VAR: &str = "OWNERSHIP_TABLE";
/// `RETENTION_DAYS`: how long ownership history is kept.
pub const RETENTION_VAR: &str = "RETENTION_DAYS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    /// `DREDGE_TAGS`, `DREDGE_APP_TAG`.
    pub policy: TagPolicy,
    /// `None`: the store's default retention.
    pub retention_days: Option<u32>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::process())
    }

    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Config, ConfigError> {
        let retention_days = match vars.get(RETENTION_VAR) {
            None => None,
            Some(v) => match v.parse::<u32>() {
                Ok(0) | Err(_) => {
                    return Err(ConfigError::invalid(RETENTION_VAR, v, "must be a whole number of days, at least 1"))
                }
                Ok(days) => Some(days),
            },
        };
        Ok(Config { table: vars.required(TABLE_VAR)?, policy: vars.tag_policy(), retention_days })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_vars(&Vars::new(|name| map.get(name).cloned()))
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
        assert_eq!(config(&[]).unwrap_err(), ConfigError::Missing { name: TABLE_VAR });
        assert_eq!(config(&[(TABLE_VAR, " ")]).unwrap_err(), ConfigError::Missing { name: TABLE_VAR });
        for bad in ["0", "-3", "ten"] {
            let err = config(&[(TABLE_VAR, "t"), (RETENTION_VAR, bad)]).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { name: RETENTION_VAR, .. }), "{bad}: {err}");
        }
    }
}
