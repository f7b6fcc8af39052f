//! Unix time in whole seconds: flow logs, CloudTrail and EventBridge all
//! resolve to the second.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

/// A time that is neither RFC 3339 nor Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither an RFC 3339 time nor Unix seconds")]
pub struct BadTime(pub String);

impl UnixTime {
    pub fn now() -> UnixTime {
        UnixTime(OffsetDateTime::now_utc().unix_timestamp())
    }

    /// RFC 3339 (`2024-05-01T12:00:00Z`, fractions dropped).
    pub fn parse_rfc3339(s: &str) -> Result<UnixTime, BadTime> {
        OffsetDateTime::parse(s, &Rfc3339).map(|t| UnixTime(t.unix_timestamp())).map_err(|_| BadTime(s.to_owned()))
    }

    /// RFC 3339 or Unix seconds, as the CLI accepts.
    pub fn parse_any(s: &str) -> Result<UnixTime, BadTime> {
        match s.parse::<i64>() {
            Ok(secs) => Ok(UnixTime(secs)),
            Err(_) => UnixTime::parse_rfc3339(s),
        }
    }

    pub fn seconds(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match OffsetDateTime::from_unix_timestamp(self.0).ok().and_then(|t| t.format(&Rfc3339).ok()) {
            Some(s) => f.write_str(&s),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_spellings() {
        assert_eq!(UnixTime::parse_any("1418530010"), Ok(UnixTime(1418530010)));
        assert_eq!(UnixTime::parse_any("2014-12-14T04:06:50Z"), Ok(UnixTime(1418530010)));
        assert_eq!(UnixTime::parse_any("2014-12-14T04:06:50.123Z"), Ok(UnixTime(1418530010)));
        assert!(UnixTime::parse_any("yesterday").is_err());
        assert_eq!(UnixTime(1418530010).to_string(), "2014-12-14T04:06:50Z");
    }
}
