//! Configuration from environment variables, read one way by every
//! function: values are trimmed, a variable set to the empty string counts
//! as unset (SAM passes empty parameters as empty strings), and a bad value
//! is an error naming the variable.

use std::fmt::Display;
use std::str::FromStr;

use dredge_core::ownership::TagPolicy;

/// `DREDGE_TAGS`: comma-separated tag keys kept on owners.
pub const TAGS_VAR: &str = "DREDGE_TAGS";
/// `DREDGE_APP_TAG`: the tag naming the app when there is no auto scaling
/// group; set but empty for none.
pub const APP_TAG_VAR: &str = "DREDGE_APP_TAG";

/// A variable that is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be set")]
    Missing { name: &'static str },
    #[error("{name}=`{value}`: {reason}")]
    Invalid { name: &'static str, value: String, reason: String },
}

impl ConfigError {
    pub fn invalid(name: &'static str, value: impl Into<String>, reason: impl Display) -> ConfigError {
        ConfigError::Invalid { name, value: value.into(), reason: reason.to_string() }
    }
}

/// Configuration variables, read through a lookup: the process environment
/// in Lambda ([`Vars::process`]), a map in tests.
pub struct Vars<F> {
    lookup: F,
}

/// The process environment's lookup.
pub type ProcessLookup = fn(&str) -> Option<String>;

impl Vars<ProcessLookup> {
    pub fn process() -> Vars<ProcessLookup> {
        Vars { lookup: |name| std::env::var(name).ok() }
    }
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub fn new(lookup: F) -> Vars<F> {
        Vars { lookup }
    }

    /// The value, trimmed, if set and not empty.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// Whether the variable is set at all, even to the empty string.
    pub fn is_set(&self, name: &str) -> bool {
        (self.lookup)(name).is_some()
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing { name })
    }

    /// The value parsed, or `default` when unset.
    pub fn parsed<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e: T::Err| ConfigError::invalid(name, v, e)),
        }
    }

    /// The tags kept on owners and the app tag (`DREDGE_TAGS`,
    /// `DREDGE_APP_TAG`), with [`TagPolicy`]'s defaults. A `DREDGE_APP_TAG`
    /// set to the empty string means no app tag.
    pub fn tag_policy(&self) -> TagPolicy {
        let tags = self.get(TAGS_VAR).unwrap_or_else(|| TagPolicy::DEFAULT_TAGS.to_owned());
        let app_tag = match self.get(APP_TAG_VAR) {
            Some(tag) => tag,
            None if self.is_set(APP_TAG_VAR) => String::new(),
            None => TagPolicy::DEFAULT_APP_TAG.to_owned(),
        };
        TagPolicy::from_keys(&tags, Some(&app_tag))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Vars::new(move |name| map.get(name).cloned())
    }

    #[test]
    fn values_are_trimmed_and_empty_is_unset() {
        let v = vars(&[("A", "  x "), ("E", ""), ("N", " 42 "), ("BAD", "lots")]);
        assert_eq!(v.get("A").as_deref(), Some("x"));
        assert_eq!(v.get("E"), None);
        assert!(v.is_set("E") && !v.is_set("nope"));
        assert_eq!(v.required("E"), Err(ConfigError::Missing { name: "E" }));
        assert_eq!(v.parsed("N", 0u32), Ok(42));
        assert_eq!(v.parsed("E", 7u32), Ok(7));
        let e = v.parsed("BAD", 0u32).unwrap_err();
        assert!(e.to_string().starts_with("BAD=`lots`: "), "{e}");
    }

    #[test]
    fn the_tag_policy_is_read_and_trimmed_like_everywhere_else() {
        assert_eq!(vars(&[]).tag_policy(), TagPolicy::default());
        let p = vars(&[(TAGS_VAR, " team, cost-center ,"), (APP_TAG_VAR, " service ")]).tag_policy();
        assert_eq!(p, TagPolicy::from_keys("team,cost-center", Some("service")));
        assert_eq!(p.app_tag.as_deref(), Some("service"));
        // Set but empty: no app tag.
        assert_eq!(vars(&[(APP_TAG_VAR, "")]).tag_policy().app_tag, None);
        assert_eq!(vars(&[(APP_TAG_VAR, "  ")]).tag_policy().app_tag, None);
    }
}
